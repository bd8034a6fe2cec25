"""The dashboard in real headless Chromium (Debian `chromium`, driven by Playwright), against the real
`platepilot dashboard` in a subprocess on a free port, over an events database the test writes.

Set PLATEPILOT_SCREENSHOT=docs/img/dashboard.png to refresh the documentation's screenshot.
"""

from __future__ import annotations

import http.client
import os
import re
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import cv2
import numpy as np
import pytest
import sqlalchemy as sa
from pageserver import PageServer, chromium, started
from pg import PgCluster, new_database
from playwright.sync_api import APIResponse, Browser, Page, Route, expect

from platepilot.pipeline.stats import CameraStats
from platepilot.pipeline.stats_file import StatsFile
from platepilot.store.events import EventIds, EventStore, PlateEvent
from platepilot.watch.lists import load_watchlists

pytestmark = [pytest.mark.slow, pytest.mark.browser]

DAY = "2026-12-01"
HOSTILE = "<img src=x onerror=window.pwned=1>"
CONFIG = """cameras:
  - id: CAM1
  - id: CAM2
output:
  stats_file: output/stats.json
"""
WATCHLISTS = """lists:
  stolen:
    entries:
      - plate: ABC1234
        note: reported stolen
"""


class Dashboard(PageServer):
    """`platepilot dashboard` running in `cwd`; `url` is what it printed."""

    def __init__(self, cwd: Path, *extra: str) -> None:
        cmd = [sys.executable, "-m", "platepilot.cli", "dashboard", "--port", "0", "--no-browser", *extra]
        super().__init__(cmd, cwd, "dashboard")


class Road:
    """The events database and crops of a working folder, written as the runtime writes them."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.store = EventStore(f"sqlite:///{work}/output/events.db")
        self.crops = work / "output" / "crops" / DAY
        self.crops.mkdir(parents=True, exist_ok=True)
        self.track = 0

    def add(self, text: str, camera: str = "CAM1", name: str | None = None, when: float | None = None,
            candidates: tuple[tuple[str, float], ...] = (), state: str = "unknown") -> int:  # fmt: skip
        self.track += 1
        crop = self.crops / f"{name or f'{camera}_track{self.track}'}.jpg"
        image = np.full((48, 160, 3), 235, np.uint8)
        cv2.putText(image, text[:8], (6, 34), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (40, 90, 10), 2)
        assert cv2.imwrite(str(crop), image)
        seen = time.time() if when is None else when
        rel = str(crop.relative_to(self.work))
        self.store.add(PlateEvent(camera, self.track, seen, seen + 2, text, 0.91, candidates or ((text, 0.91),), rel,
                                  "crnn", "v9", 3, None, state))  # fmt: skip
        with self.store.engine.connect() as conn:
            return int(conn.execute(sa.text("SELECT max(id) FROM plate_events")).scalar() or 0)

    def set_state(self, event_id: int, state: str) -> None:
        """The state column another version of the runtime writes (added here when this one has none)."""
        with self.store.engine.begin() as conn:
            columns = {row[1] for row in conn.execute(sa.text("PRAGMA table_info(plate_events)"))}
            if "state" not in columns:
                conn.execute(sa.text("ALTER TABLE plate_events ADD COLUMN state VARCHAR(8)"))
            conn.execute(sa.text("UPDATE plate_events SET state = :s WHERE id = :i"), {"s": state, "i": event_id})


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


@pytest.fixture()
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.on("dialog", lambda dialog: pytest.fail(f"a dialog opened: {dialog.message}"))
    yield page
    context.close()


@pytest.fixture()
def work(tmp_path: Path) -> Path:
    (tmp_path / "platepilot.yaml").write_text(CONFIG)
    (tmp_path / "watchlists.yaml").write_text(WATCHLISTS)
    return tmp_path


@pytest.fixture()
def road(work: Path) -> Iterator[Road]:
    road = Road(work)
    yield road
    road.store.close()


@pytest.fixture()
def start(work: Path) -> Iterator[Callable[..., Dashboard]]:
    with started(partial(Dashboard, work)) as start:
        yield start


def row(page: Page, where: str, event_id: int) -> object:
    return page.locator(f"#{where} .read[data-id='{event_id}']")


def test_the_live_feed_shows_a_new_read_within_a_second(
    road: Road, start: Callable[..., Dashboard], page: Page
) -> None:
    old = road.add("XYZ999", when=time.time() - 60)
    server = start()
    page.goto(server.url)
    expect(row(page, "feed", old)).to_be_visible()  # type: ignore[arg-type]
    expect(page.locator("#feed-state")).to_have_text("live")
    added = time.monotonic()
    new = road.add("A8C1234", camera="CAM2", candidates=(("A8C1234", 0.7), ("ABC1234", 0.2)))
    road.set_state(new, "FL")
    fresh = page.locator(f"#feed .read[data-id='{new}']")
    fresh.wait_for(timeout=5000)
    latency = time.monotonic() - added
    assert latency < 1.0, f"the read took {latency:.2f} s to appear"
    assert page.locator("#feed .read").first.get_attribute("data-id") == str(new)  # newest on top
    expect(fresh).to_have_class(re.compile(r"\bblock\b"))
    expect(fresh.locator(".hit")).to_have_text(
        "BLOCK stolen: ABC1234 (reported stolen) · exact via candidate #2 (ABC1234)"
    )
    expect(fresh.locator(".plate")).to_have_text("A8C1234")
    expect(fresh.locator(".cam")).to_have_text("CAM2")
    expect(fresh.locator(".conf")).to_have_text("0.91")
    assert fresh.locator("img").evaluate("img => img.decode().then(() => img.naturalWidth)") == 160
    # the state column is read when the database has one (the row was written before it was set: the
    # vehicle page reads it again)
    fresh.click()
    expect(page.locator("#vehicle dl")).to_contain_text("FL")
    expect(page.locator("#vehicle")).to_contain_text("ABC1234")  # the fused candidates
    expect(page.locator("#vehicle")).to_contain_text("3 accepted reads were fused")
    if os.environ.get("PLATEPILOT_SCREENSHOT"):
        for text in ("HOME123", "FWW452", "ABC1234"):
            road.add(text)
        page.goto(server.url + "#/live")
        page.locator("#feed .read").nth(4).wait_for()
        page.screenshot(path=os.environ["PLATEPILOT_SCREENSHOT"])


def test_search_finds_a_misread_plate_by_fuzzy_match_and_exports_it(
    road: Road, start: Callable[..., Dashboard], page: Page
) -> None:
    noon = datetime(2026, 12, 1, 12, 0).timestamp()
    ids = {text: road.add(text, camera=cam, when=noon + i * 600)
           for i, (text, cam) in enumerate([("ABC1284", "CAM1"), ("XYZ999", "CAM1"), ("A8C1234", "CAM2")])}  # fmt: skip
    server = start()
    page.goto(server.url + "#/search")
    page.fill("#q-plate", "abc 1234")
    page.click("#search-go")
    expect(page.locator("#search-count")).to_have_text("2 reads")
    expect(row(page, "results", ids["ABC1284"])).to_be_visible()  # type: ignore[arg-type]
    expect(row(page, "results", ids["A8C1234"])).to_be_visible()  # type: ignore[arg-type]
    page.select_option("#q-camera", "CAM2")
    page.click("#search-go")
    expect(page.locator("#search-count")).to_have_text("1 reads")
    page.select_option("#q-camera", "")
    page.fill("#q-plate", "")
    page.fill("#q-since", "2026-12-01T12:05:00")
    page.fill("#q-until", "2026-12-01T12:15:00")
    page.click("#search-go")
    expect(page.locator("#search-count")).to_have_text("1 reads")
    expect(row(page, "results", ids["XYZ999"])).to_be_visible()  # type: ignore[arg-type]
    page.fill("#q-plate", "ABC1234")
    page.fill("#q-since", "")
    page.fill("#q-until", "")
    page.click("#search-go")
    expect(page.locator("#search-count")).to_have_text("2 reads")
    csv = page.request.get(server.url.rstrip("/") + page.locator("#export").get_attribute("href"))  # type: ignore[operator]
    lines = csv.text().splitlines()
    assert csv.headers["content-type"].startswith("text/csv") and lines[0].startswith("\ufeffcamera_id,track_id")
    assert lines[0].endswith(",device_id,event_id")  # a byte-order mark (Excel: UTF-8), and which device's event
    assert sorted(line.split(",")[4] for line in lines[1:]) == ["A8C1234", "ABC1284"]


def test_editing_the_watchlist_takes_effect(
    work: Path, road: Road, start: Callable[..., Dashboard], page: Page
) -> None:
    server = start()
    page.goto(server.url + "#/watchlists")
    expect(page.locator("#lists")).to_contain_text("stolen · block · 1 entries")
    page.fill("#wl-list", "stolen")
    page.fill("#wl-regex", "QRW(")
    page.click("#wl-add")
    expect(page.locator("#wl-error")).to_contain_text("lists.stolen.entries[1].regex: bad regex 'QRW('")
    assert load_watchlists(work / "watchlists.yaml", ["CAM1", "CAM2"]).lists["stolen"].entries[-1].plate == "ABC1234"
    page.fill("#wl-regex", "")
    page.fill("#wl-plate", "qrw 661")
    page.fill("#wl-note", "owes tolls")
    page.fill("#wl-cameras", "CAM1")
    page.fill("#wl-state", "florida")
    page.click("#wl-add")
    expect(page.locator("#lists")).to_contain_text("stolen · block · 2 entries")
    expect(page.locator("#lists tr", has_text="QRW661")).to_contain_text("FL")
    saved = load_watchlists(work / "watchlists.yaml", ["CAM1", "CAM2"]).lists["stolen"].entries[-1]
    assert (saved.plate, saved.note, saved.cameras, saved.state) == ("QRW661", "owes tolls", ("CAM1",), "FL")
    assert sorted(p.name for p in work.iterdir() if "watchlists" in p.name) == ["watchlists.yaml"]  # no temp left
    page.goto(server.url + "#/live")
    expect(page.locator("#feed-state")).to_have_text("live")
    hit, other_camera = road.add("QRW661", state="FL"), road.add("QRW661", camera="CAM2", state="FL")
    unread, georgia = road.add("QRW661"), road.add("QRW661", state="GA")
    expect(page.locator(f"#feed .read[data-id='{hit}'] .hit")).to_have_text("BLOCK stolen: QRW661 (owes tolls) · exact")
    expect(page.locator(f"#feed .read[data-id='{unread}'] .hit")).to_have_text(
        "BLOCK stolen: QRW661 (owes tolls) · exact, state unknown"
    )
    for other in (other_camera, georgia):
        expect(page.locator(f"#feed .read[data-id='{other}']")).not_to_have_class(re.compile(r"\bblock\b"))
    page.goto(server.url + "#/watchlists")  # remove it again
    page.locator("#lists tr", has_text="QRW661").get_by_role("button", name="remove").click()
    expect(page.locator("#lists")).to_contain_text("stolen · block · 1 entries")
    (work / "watchlists.yaml").write_text(WATCHLISTS + "      - plate: LATE1\n")  # an edit by hand meanwhile
    page.fill("#wl-list", "stolen")
    page.fill("#wl-plate", "ZZZ1")
    page.click("#wl-add")
    expect(page.locator("#wl-error")).to_contain_text("changed since this page loaded it")
    assert [e.plate for e in load_watchlists(work / "watchlists.yaml", ["CAM1"]).lists["stolen"].entries] == [
        "ABC1234", "LATE1"]  # fmt: skip
    broken = WATCHLISTS + "      - plate: NEW0001\n      - regex: 'BAD('\n"  # a hand edit that does not load
    (work / "watchlists.yaml").write_text(broken)
    page.reload()
    expect(page.locator("#lists")).to_contain_text("stolen · block · 2 entries")  # the last lists that loaded
    page.fill("#wl-list", "stolen")
    page.fill("#wl-plate", "ZZZ2")
    page.click("#wl-add")
    expect(page.locator("#wl-error")).to_contain_text("does not load; fix it by hand first")
    assert (work / "watchlists.yaml").read_text() == broken  # saving the page's lists would have undone it


def test_a_reload_answered_after_a_save_does_not_undo_it(
    work: Path, road: Road, start: Callable[..., Dashboard], page: Page
) -> None:
    """Opening the watchlists tab reloads them; a removal clicked before that reload answers must stay
    removed on the page (the stale answer once re-drew the old list over it)."""
    server = start()
    page.goto(server.url + "#/watchlists")
    expect(page.locator("#lists")).to_contain_text("stolen · block · 1 entries")
    page.goto(server.url + "#/live")
    held: list[tuple[Route, APIResponse]] = []

    def hold_loads(route: Route) -> None:  # the server answers the reload now; the page gets it later
        if route.request.method == "GET":
            held.append((route, route.fetch()))
        else:
            route.continue_()

    page.route("**/api/watchlists", hold_loads)
    page.goto(server.url + "#/watchlists")
    expect(page.locator("#lists")).to_contain_text("stolen · block · 1 entries")  # drawn before the reload
    for _ in range(100):  # until the server has answered the reload, before the removal
        if held:
            break
        page.wait_for_timeout(50)
    page.locator("#lists tr", has_text="ABC1234").get_by_role("button", name="remove").click()
    expect(page.locator("#lists")).to_contain_text("stolen · block · 0 entries")
    assert not load_watchlists(work / "watchlists.yaml", ["CAM1"]).lists["stolen"].entries
    ((route, stale),) = held
    with page.expect_response(lambda r: r.request.method == "GET" and "/api/watchlists" in r.url):
        route.fulfill(response=stale)  # the reload, answered before the removal, lands after it
    page.wait_for_timeout(300)  # time to draw it: `expect` alone could pass before a stale draw
    expect(page.locator("#lists")).to_contain_text("stolen · block · 0 entries")


def test_two_quick_removals_both_stay_removed(work: Path, start: Callable[..., Dashboard], page: Page) -> None:
    """Two removes clicked before the first save answered: both sent the same version, the second was
    refused and its error wiped by the first's answer, so one entry silently came back."""
    (work / "watchlists.yaml").write_text(WATCHLISTS + "      - plate: LATE1\n")
    server = start()
    page.goto(server.url + "#/watchlists")
    expect(page.locator("#lists")).to_contain_text("stolen · block · 2 entries")
    held: list[Route] = []
    page.route(
        "**/api/watchlists", lambda route: held.append(route) if route.request.method == "POST" else route.continue_()
    )
    page.locator("#lists tr", has_text="ABC1234").get_by_role("button", name="remove").click()
    page.locator("#lists tr", has_text="LATE1").get_by_role("button", name="remove").click()
    for _ in range(2):  # each save answered in turn, the first only after both clicks
        for _ in range(100):  # the page's events run while it waits
            if held:
                break
            page.wait_for_timeout(50)
        held.pop(0).continue_()
    expect(page.locator("#lists")).to_contain_text("stolen · block · 0 entries")
    assert not load_watchlists(work / "watchlists.yaml", ["CAM1"]).lists["stolen"].entries
    expect(page.locator("#wl-error")).to_be_hidden()


def test_a_refused_request_says_why_in_words(start: Callable[..., Dashboard], page: Page) -> None:
    """A validation error's detail is a list: the page showed "[object Object]"."""
    server = start()
    page.goto(server.url + "#/vehicle/abc")
    error = page.locator("#vehicle .error")
    expect(error).to_contain_text("event_id")
    expect(error).not_to_contain_text("object Object")


def test_hostile_crop_names_and_texts_stay_text(road: Road, start: Callable[..., Dashboard], page: Page) -> None:
    evil = road.add("ABC1234", name=HOSTILE)
    with road.store.engine.begin() as conn:  # a text no reader returns, written by hand
        conn.execute(sa.text("UPDATE plate_events SET text = :t WHERE id = :i"), {"t": "<b>X</b>", "i": evil})
    server = start()
    page.goto(server.url + "#/search")
    page.click("#search-go")
    shown = page.locator(f"#results .read[data-id='{evil}']")
    expect(shown.locator(".plate")).to_have_text("<b>X</b>")
    assert (
        shown.locator("img").evaluate("img => img.decode().then(() => img.naturalWidth)") == 160
    )  # the file is served
    shown.click()
    expect(page.locator("#vehicle")).to_contain_text(f"{HOSTILE}.jpg")
    assert page.locator("b").count() == 0 and page.locator("img[src='x']").count() == 0
    assert page.evaluate("window.pwned") is None


def test_path_traversal_is_refused(work: Path, road: Road, start: Callable[..., Dashboard], page: Page) -> None:
    inside = road.add("ABC1234")
    outside = road.add("XYZ999")
    secret = work / "output" / "secret.jpg"
    (road.crops / f"CAM1_track{road.track}.jpg").rename(secret)
    with road.store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE plate_events SET crop_path = :p WHERE id = :i"), {"p": str(secret), "i": outside})
    server = start()
    page.goto(server.url)
    assert page.request.get(server.url + f"crop/{inside}").headers["content-type"] == "image/jpeg"
    assert page.request.get(server.url + f"crop/{outside}").status == 404  # a row naming a file elsewhere
    expect(page.locator(f"#feed .read[data-id='{outside}'] img")).to_be_hidden()
    for path in (
        "crop/..%2Fsecret.jpg",
        "static/..%2F..%2Fdashboard%2Fapp.py",
        "static/%2e%2e/app.py",
        f"crop/{10**20}",
        f"api/event/{10**20}",
        "api/events?plate=" + "A" * 2000 + "&fuzzy=1",
    ):
        assert page.request.get(server.url + path).status in (400, 404, 422), path  # fmt: skip
    conn = http.client.HTTPConnection("127.0.0.1", urlsplit(server.url).port, timeout=10)
    conn.request("GET", "/static/../app.py")  # sent as is: browsers would normalise the dots away
    assert conn.getresponse().status == 404
    conn.close()


def test_off_loopback_the_printed_token_is_needed(road: Road, start: Callable[..., Dashboard], page: Page) -> None:
    event = road.add("ABC1234")
    server = start("--host", "0.0.0.0")
    assert "token=" in server.url
    bare = server.local_url().split("?")[0]
    for path in ("", "api/events", "api/feed", f"crop/{event}", "api/watchlists"):
        assert page.request.get(bare + path).status == 401, path
    page.goto(server.local_url())  # the token becomes a cookie
    expect(page.locator(f"#feed .read[data-id='{event}']")).to_be_visible()
    expect(page.locator("#feed-state")).to_have_text("live")  # the event stream carries the cookie
    assert "token" not in page.url


def test_camera_stats_come_from_the_running_pipeline(work: Path, road: Road, start: Callable[..., Dashboard],
                                                     page: Page) -> None:  # fmt: skip
    stats = CameraStats("CAM1", processed=300, detect_seconds=15.0, ocr_reads=20, ocr_seconds=2.4, queue_depth=3,
                        dropped=7, skipped=40, events=2, started=time.monotonic() - 20)  # fmt: skip
    StatsFile(work / "output" / "stats.json").write([stats, CameraStats("CAM2", error="cannot open rtsp://cam2")],
                                                    time.time())  # fmt: skip
    road.add("ABC1234")
    road.add("XYZ999", when=time.time() - 7200)  # not in the last hour
    server = start()
    page.goto(server.url + "#/cameras")
    expect(page.locator("#stats-state")).to_have_text("live")
    cells = page.locator("#stats tr[data-camera='CAM1'] td")
    expect(cells).to_have_text(["CAM1", "15.0", "1", "3", "50", "120", "7", "40", "2", "running"])
    expect(page.locator("#stats tr[data-camera='CAM2'] td").last).to_have_text("cannot open rtsp://cam2")


def test_a_fleet_database_shows_and_filters_by_device(work: Path, start: Callable[..., Dashboard], page: Page) -> None:
    """The dashboard over the collector's PostgreSQL: two devices with the same camera id stay apart."""
    cluster = PgCluster()
    cluster.start()
    try:
        url = new_database(cluster, "fleet")
        now = time.time()
        for device, text in (("north", "NRT111"), ("south", "STH222")):
            store = EventStore(url, None, EventIds(device, "r1"))
            store.add(PlateEvent("CAM1", 1, now, now + 2, text, 0.9, ((text, 0.9),), "", "crnn", "v9", 3))
            store.close()
        with (work / "platepilot.yaml").open("a") as config:
            config.write(f"  events_db_url: {url}\n")
        server = start()
        page.goto(server.url + "#/search")
        page.click("#search-go")
        expect(page.locator("#search-count")).to_have_text("2 reads")
        rows = page.locator("#results .read")
        expect(rows.filter(has_text="NRT111").locator(".cam")).to_have_text("north · CAM1")
        expect(rows.filter(has_text="STH222").locator(".cam")).to_have_text("south · CAM1")
        page.fill("#q-device", "south")
        page.click("#search-go")
        expect(page.locator("#search-count")).to_have_text("1 reads")
        expect(rows.locator(".plate")).to_have_text("STH222")
        assert "device=south" in (page.locator("#export").get_attribute("href") or "")
        rows.first.click()
        expect(page.locator("#vehicle dl")).to_contain_text("devicesouth")
    finally:
        cluster.remove()
