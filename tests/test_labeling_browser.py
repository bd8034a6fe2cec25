"""The labeling page in real headless Chromium (Debian `chromium`, driven by Playwright).

Each test starts the guide's command (`scripts/ocr/label_crops.py`) on a free port in a subprocess,
with the working directory holding `output/crops`, and stops it (Ctrl+Q in the page, or terminate).
Set PLATEPILOT_SCREENSHOT=docs/img/labeling_page.png to refresh the documentation's screenshot.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

import cv2
import numpy as np
import pytest
from pageserver import PageServer, chromium, started
from playwright.sync_api import Browser, Page, expect

from platepilot.store.labels import latest_labels
from platepilot.store.provenance import append_records, make_record

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
LABELS = "data/ocr_training/labels.txt"
DAY = "2024-05-01"
Crops = list[tuple[np.ndarray, str]]


def key(i: int) -> str:
    return f"output/crops/{DAY}/CAM1_track{i}.jpg"


class Server(PageServer):
    """`label_crops.py` running in `cwd`; `url` is what it printed."""

    def __init__(self, cwd: Path, *extra: str) -> None:
        cmd = [sys.executable, str(ROOT / "scripts/ocr/label_crops.py"), "--crops-dir", "output/crops",
               "--output", LABELS, "--port", "0", "--no-browser", *extra]  # fmt: skip
        super().__init__(cmd, cwd)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


@pytest.fixture()
def work(tmp_path: Path, synth_crops: Crops) -> Path:
    folder = tmp_path / "output" / "crops" / DAY
    folder.mkdir(parents=True)
    for i in range(6):
        cv2.imwrite(str(folder / f"CAM1_track{i}.jpg"), synth_crops[i][0])
    return tmp_path


@pytest.fixture()
def start(work: Path) -> Iterator[Callable[..., Server]]:
    with started(partial(Server, work)) as start:
        yield start


@pytest.fixture()
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1200, "height": 860})
    yield context.new_page()
    context.close()


def open_page(page: Page, url: str, rel: str | None = None) -> None:
    page.goto(url)
    if rel is not None:
        expect_crop(page, rel)


def expect_crop(page: Page, rel: str) -> None:
    expect(page.locator("#crop")).to_have_attribute("data-rel", rel)


def labels(work: Path) -> dict[str, str]:
    path = work / LABELS
    return {k: v.text for k, v in latest_labels(path).items()} if path.exists() else {}


def _labelled_first(work: Path, count: int) -> None:
    """labels.txt with the first `count` crops labelled ABC120, ABC121, ..."""
    (work / LABELS).parent.mkdir(parents=True)
    (work / LABELS).write_text("".join(f"{key(i)}\tABC12{i}\n" for i in range(count)))


def wait_for(predicate: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_type_enter_escape_and_refused_characters(work: Path, start: Callable[..., Server], page: Page) -> None:
    server = start()
    open_page(page, server.url, f"{DAY}/CAM1_track0.jpg")
    page.keyboard.type("abc-")
    expect(page.locator("#hint")).to_contain_text('"-" refused')
    expect(page.locator("#text")).to_have_text("ABC")
    page.keyboard.type("12x")
    page.keyboard.press("Backspace")
    page.keyboard.type("3")
    page.keyboard.press("Enter")
    expect_crop(page, f"{DAY}/CAM1_track1.jpg")
    assert (work / LABELS).read_text() == f"{key(0)}\tABC123\n"
    expect(page.locator("#last-line")).to_contain_text("ABC123")
    page.keyboard.press("Escape")
    expect_crop(page, f"{DAY}/CAM1_track2.jpg")
    assert labels(work) == {key(0): "ABC123", key(1): "__SKIP__"}
    expect(page.locator("#done")).to_have_text("2")
    expect(page.locator("#total")).to_have_text("6")


def test_bracket_goes_back_and_appends_a_correction(work: Path, start: Callable[..., Server], page: Page) -> None:
    server = start()
    open_page(page, server.url, f"{DAY}/CAM1_track0.jpg")
    page.keyboard.type("AAA111")
    page.keyboard.press("Enter")
    expect_crop(page, f"{DAY}/CAM1_track1.jpg")
    page.keyboard.press("[")
    expect_crop(page, f"{DAY}/CAM1_track0.jpg")
    expect(page.locator("#text")).to_have_text("AAA111")
    page.keyboard.press("Backspace")
    page.keyboard.type("2")
    page.keyboard.press("Enter")
    expect_crop(page, f"{DAY}/CAM1_track1.jpg")  # forward again to where we were
    lines = (work / LABELS).read_text().splitlines()
    assert lines == [f"{key(0)}\tAAA111", f"{key(0)}\tAAA112"]
    assert labels(work) == {key(0): "AAA112"}


def test_q_and_s_are_characters_and_ctrl_q_quits(work: Path, start: Callable[..., Server], page: Page) -> None:
    server = start()
    open_page(page, server.url, f"{DAY}/CAM1_track0.jpg")
    page.keyboard.type("qs12")
    expect(page.locator("#text")).to_have_text("QS12")
    page.keyboard.press("Shift+Q")
    page.keyboard.press("S")
    expect(page.locator("#text")).to_have_text("QS12QS")
    assert server.proc.poll() is None
    page.keyboard.press("Enter")
    expect_crop(page, f"{DAY}/CAM1_track1.jpg")
    page.keyboard.type("ab12")
    page.keyboard.press("Control+q")  # saves the typed text, then stops the server
    assert server.wait() == 0
    assert labels(work) == {key(0): "QS12QS", key(1): "AB12"}
    expect(page.locator("#empty")).to_contain_text("Stopped")
    assert any("stopped; 2 saved" in line for line in server.proc.stdout or [])


def test_restart_shows_only_unlabeled_crops(work: Path, start: Callable[..., Server], page: Page) -> None:
    first = start()
    open_page(page, first.url, f"{DAY}/CAM1_track0.jpg")
    for text in ("ABC123", "DEF456"):
        page.keyboard.type(text)
        page.keyboard.press("Enter")
    expect_crop(page, f"{DAY}/CAM1_track2.jpg")
    page.keyboard.press("Control+q")
    assert first.wait() == 0
    second = start()
    open_page(page, second.url, f"{DAY}/CAM1_track2.jpg")
    expect(page.locator("#done")).to_have_text("2")


def test_a_reloaded_page_shows_the_crop_it_held(work: Path, start: Callable[..., Server], page: Page) -> None:
    """A reload was a new page to the server: the crop on screen stayed reserved for the old one for 5
    minutes, and the reloaded page skipped it."""
    server = start()
    open_page(page, server.url, f"{DAY}/CAM1_track0.jpg")
    page.reload()
    expect_crop(page, f"{DAY}/CAM1_track0.jpg")


def test_new_crops_appear_without_restart(
    work: Path, start: Callable[..., Server], page: Page, synth_crops: Crops
) -> None:
    _labelled_first(work, 5)
    server = start()
    open_page(page, server.url, f"{DAY}/CAM1_track5.jpg")
    page.keyboard.press("Escape")
    expect(page.locator("#empty")).to_contain_text("All crops are labeled")
    late = work / "output" / "crops" / "2024-05-02"
    late.mkdir()
    cv2.imwrite(str(late / "CAM2_track1.jpg"), synth_crops[9][0])
    expect_crop(page, "2024-05-02/CAM2_track1.jpg")
    expect(page.locator("#meta")).to_contain_text("CAM2")


def test_path_traversal_is_refused(work: Path, start: Callable[..., Server], page: Page) -> None:
    secret = work / "output" / "secret.jpg"
    shutil.copy(work / "output" / "crops" / DAY / "CAM1_track0.jpg", secret)
    server = start()
    open_page(page, server.url)
    ok = page.request.get(server.url + f"crops/{DAY}/CAM1_track0.jpg")
    assert ok.status == 200 and ok.headers["content-type"] == "image/jpeg"
    for path in ("crops/..%2Fsecret.jpg", "crops/%2e%2e/secret.jpg", f"crops/{DAY}%2F..%2F..%2Fsecret.jpg"):
        assert page.request.get(server.url + path).status == 404, path
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection("127.0.0.1", parts.port, timeout=10)
    conn.request("GET", "/crops/../secret.jpg")  # sent as is: browsers would normalise the dots away
    assert conn.getresponse().status == 404
    conn.close()


def test_two_pages_labeling_at_once_lose_nothing(work: Path, start: Callable[..., Server], browser: Browser) -> None:
    server = start()
    one, two = browser.new_context(), browser.new_context()
    try:
        a, b = one.new_page(), two.new_page()
        a.goto(server.url)
        b.goto(server.url)
        expect(a.locator("#crop")).to_have_attribute("data-rel", re.compile("track"))
        expect(b.locator("#crop")).to_have_attribute("data-rel", re.compile("track"))
        assert a.get_attribute("#crop", "data-rel") != b.get_attribute("#crop", "data-rel")
        for round_ in range(3):  # both type and press Enter, interleaved, without waiting for each other
            shown = [p.get_attribute("#crop", "data-rel") for p in (a, b)]
            a.keyboard.type(f"AAA{round_}11")
            b.keyboard.type(f"BBB{round_}22")
            a.keyboard.press("Enter")
            b.keyboard.press("Enter")
            if round_ < 2:  # each page types its next label once its own next crop is up, as a person does
                for p, rel in zip((a, b), shown, strict=True):
                    expect(p.locator("#crop")).not_to_have_attribute("data-rel", rel or "")
        wait_for(lambda: len(labels(work)) == 6)
        expect(a.locator("#empty")).to_contain_text("All crops are labeled")
        expect(b.locator("#empty")).to_contain_text("All crops are labeled")
    finally:
        one.close()
        two.close()
    lines = (work / LABELS).read_text().splitlines()
    assert len(lines) == 6 and len({line.split("\t")[0] for line in lines}) == 6
    assert sorted(line.split("\t")[1] for line in lines) == sorted(
        [f"AAA{r}11" for r in range(3)] + [f"BBB{r}22" for r in range(3)]
    )


def test_review_mode_walks_suspicious_first(work: Path, start: Callable[..., Server], page: Page) -> None:
    (work / LABELS).parent.mkdir(parents=True)
    (work / LABELS).write_text(f"{key(0)}\tABC123\n{key(1)}\tPARKING\n{key(2)}\tDEF456\n")
    server = start("--review")
    open_page(page, server.url, f"{DAY}/CAM1_track1.jpg")
    expect(page.locator("#reasons")).to_contain_text("sign text")
    expect(page.locator("#mode")).to_have_text("review")
    expect(page.locator("#text")).to_have_text("PARKING")
    page.keyboard.press("Escape")  # not a plate: skip it
    expect_crop(page, f"{DAY}/CAM1_track0.jpg")
    page.keyboard.press("Enter")  # confirmed as is: nothing appended
    expect_crop(page, f"{DAY}/CAM1_track2.jpg")
    page.keyboard.press("[")
    expect_crop(page, f"{DAY}/CAM1_track0.jpg")
    page.keyboard.type("ABC128")  # typing replaces the saved text
    page.keyboard.press("Enter")
    expect_crop(page, f"{DAY}/CAM1_track2.jpg")
    lines = (work / LABELS).read_text().splitlines()
    assert lines[:3] == [f"{key(0)}\tABC123", f"{key(1)}\tPARKING", f"{key(2)}\tDEF456"]  # history kept
    assert lines[3:] == [f"{key(1)}\t__SKIP__", f"{key(0)}\tABC128"]


def test_a_stale_tab_never_undoes_another_tabs_correction(
    work: Path, start: Callable[..., Server], browser: Browser
) -> None:
    """Both tabs show ABC123 in review; one corrects it to FIXED1, then the other confirms the ABC123 it
    still shows: that appended ABC123 again and the fix was lost."""
    (work / LABELS).parent.mkdir(parents=True)
    (work / LABELS).write_text(f"{key(0)}\tABC123\n")
    server = start("--review")
    one, two = browser.new_context(), browser.new_context()
    try:
        a, b = one.new_page(), two.new_page()
        open_page(a, server.url, f"{DAY}/CAM1_track0.jpg")
        open_page(b, server.url, f"{DAY}/CAM1_track0.jpg")
        a.keyboard.type("FIXED1")
        a.keyboard.press("Enter")
        wait_for(lambda: labels(work) == {key(0): "FIXED1"})
        b.keyboard.press("Enter")
        expect(b.locator("#hint")).to_contain_text("was labelled FIXED1 meanwhile")
        expect(b.locator("#text")).to_have_text("FIXED1")  # shown again, as it is now
    finally:
        one.close()
        two.close()
    assert (work / LABELS).read_text().splitlines() == [f"{key(0)}\tABC123", f"{key(0)}\tFIXED1"]


def test_bracket_on_the_end_screen_shows_the_crop_labelled_last(
    work: Path, start: Callable[..., Server], page: Page
) -> None:
    """`[` from "All crops are labeled" skipped the last crop and went to the one before it."""
    _labelled_first(work, 4)
    server = start()
    open_page(page, server.url, f"{DAY}/CAM1_track4.jpg")
    page.keyboard.type("XYZ4")
    page.keyboard.press("Enter")
    expect_crop(page, f"{DAY}/CAM1_track5.jpg")
    page.keyboard.type("XYZ5")
    page.keyboard.press("Enter")
    expect(page.locator("#empty")).to_contain_text("All crops are labeled")
    page.keyboard.press("[")
    expect_crop(page, f"{DAY}/CAM1_track5.jpg")
    expect(page.locator("#text")).to_have_text("XYZ5")


def test_remote_host_needs_the_printed_token(work: Path, start: Callable[..., Server], page: Page) -> None:
    server = start("--host", "0.0.0.0")
    assert "token=" in server.url
    bare = server.local_url().split("?")[0]
    assert page.request.get(bare + "api/next").status == 401
    open_page(page, server.local_url(), f"{DAY}/CAM1_track0.jpg")  # the token becomes a cookie
    assert "token" not in page.url
    page.keyboard.type("TOK123")
    page.keyboard.press("Enter")
    expect_crop(page, f"{DAY}/CAM1_track1.jpg")
    assert labels(work) == {key(0): "TOK123"}


def test_screenshot_of_a_suggestion(
    work: Path, start: Callable[..., Server], page: Page, tmp_path: Path, synth_crops: Crops
) -> None:
    """The page with a pre-label suggestion and a previous save: the picture in docs/labeling.md."""
    now = datetime(2024, 5, 1, 21, tzinfo=UTC)
    truth = synth_crops[1][1]
    suggestion = truth.translate(str.maketrans("OIBS", "0185")) if set(truth) & set("OIBS") else truth[::-1]
    append_records(work / LABELS, [make_record(key(1), suggestion, "crnn", 0.83, False, now)])
    server = start()
    page.set_viewport_size({"width": 1200, "height": 800})
    open_page(page, server.url, f"{DAY}/CAM1_track0.jpg")
    page.keyboard.type(synth_crops[0][1])
    page.keyboard.press("Enter")
    expect_crop(page, f"{DAY}/CAM1_track1.jpg")
    expect(page.locator("#source")).to_contain_text("suggestion by crnn (83%)")
    expect(page.locator("#text")).to_have_text(suggestion)
    page.keyboard.type("-")  # show the refusal hint too
    page.wait_for_function("document.getElementById('crop').complete")
    shot = tmp_path / "labeling_page.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    target = os.environ.get("PLATEPILOT_SCREENSHOT")
    if target:
        shutil.copy(shot, ROOT / target)
