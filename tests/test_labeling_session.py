"""The labeling session without a browser: queue, leases, saves, review order, pre-labels, HTTP guard."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from platepilot.cli import app as cli_app
from platepilot.config import Settings
from platepilot.errors import PlatepilotError
from platepilot.labeling.app import create_app
from platepilot.labeling.crops import crop_meta, list_crops, safe_crop_file, scan_crops
from platepilot.labeling.prelabel import prelabel_crops
from platepilot.labeling.session import LabelSession
from platepilot.ocr.crnn_service import CRNNOCRService
from platepilot.store.labels import latest_labels
from platepilot.store.provenance import append_records, latest_prelabels, make_record, unverified_paths
from platepilot.types import SKIP

Crops = list[tuple[np.ndarray, str]]
NOW = datetime(2024, 5, 1, 12, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.t = 1_714_564_800.0

    def __call__(self) -> float:
        return self.t


def make_crops(root: Path, crops: Crops, n: int, day: str = "2024-05-01") -> list[str]:
    folder = root / day
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        cv2.imwrite(str(folder / f"CAM1_track{i}.jpg"), crops[i][0])
    return [f"{day}/CAM1_track{i}.jpg" for i in range(n)]


@pytest.fixture()
def work(tmp_path: Path, synth_crops: Crops, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp_path as the working directory with output/crops holding 5 crops (the guide's layout)."""
    monkeypatch.chdir(tmp_path)
    make_crops(tmp_path / "output" / "crops", synth_crops, 5)
    return tmp_path


CROPS = Path("output/crops")
LABELS = Path("data/ocr_training/labels.txt")


def test_crop_meta_and_listing(work: Path) -> None:
    assert crop_meta("2024-05-01/CAM2_track17.jpg") == (crop_meta("2024-05-01/CAM2_track17.jpg"))
    meta = crop_meta("2024-05-01/CAM2_track17.jpg")
    assert (meta.camera, meta.date, meta.track) == ("CAM2", "2024-05-01", 17)
    assert crop_meta("misc/photo.png").camera is None
    (CROPS / "2024-05-01" / ".CAM1_track9.jpg.tmp").write_bytes(b"x")
    (CROPS / "2024-05-01" / "CAM1_track10.tmp.jpg").write_bytes(b"x")
    cv2.imwrite(str(CROPS / "2024-05-01" / "CAM1_track10.jpg"), np.zeros((20, 60, 3), np.uint8))
    listed = list_crops(CROPS)
    assert listed[-2:] == ["2024-05-01/CAM1_track4.jpg", "2024-05-01/CAM1_track10.jpg"]  # natural order


@pytest.mark.parametrize(
    "rel",
    ["../secret.jpg", "../../etc/passwd", "/etc/passwd", "2024-05-01/../../secret.jpg", "", "2024-05-01",
     "x" * 300 + ".jpg"],  # a name too long for the file system
)  # fmt: skip
def test_safe_crop_file_refuses_escapes(work: Path, rel: str) -> None:
    cv2.imwrite(str(work / "output" / "secret.jpg"), np.zeros((8, 8, 3), np.uint8))
    assert safe_crop_file(CROPS, rel) is None


def test_safe_crop_file_refuses_symlink_out(work: Path) -> None:
    cv2.imwrite(str(work / "secret.jpg"), np.zeros((8, 8, 3), np.uint8))
    (CROPS / "link.jpg").symlink_to(work / "secret.jpg")
    assert safe_crop_file(CROPS, "link.jpg") is None
    assert safe_crop_file(CROPS, "2024-05-01/CAM1_track0.jpg") is not None


def test_symlinked_crops_are_skipped_and_named_once(work: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A link out of the folder cannot be served and one inside is labeled as its target: either would
    leave the session stuck on it, so both are skipped, and said once."""
    cv2.imwrite(str(work / "secret.jpg"), np.zeros((8, 8, 3), np.uint8))
    (CROPS / "2024-05-01" / "CAM1_track0.jpg").unlink()
    (CROPS / "2024-05-01" / "CAM1_track0.jpg").symlink_to(work / "secret.jpg")  # first in order, were it listed
    (CROPS / "inside.jpg").symlink_to((CROPS / "2024-05-01" / "CAM1_track1.jpg").resolve())
    clock = Clock()
    session = LabelSession(CROPS, LABELS, clock=clock)
    rels: list[str] = []
    with caplog.at_level("WARNING", logger="platepilot"):
        while len(rels) < 10 and (item := session.next_item("a")) is not None:
            session.save(item.rel, "ABC123")
            rels.append(item.rel)
            clock.t += 1
    assert rels == [f"2024-05-01/CAM1_track{i}.jpg" for i in (1, 2, 3, 4)]
    warnings = [r.getMessage() for r in caplog.records if "symlinks" in r.getMessage()]
    assert len(warnings) == 1 and "skipped 2 crops (first: '2024-05-01/CAM1_track0.jpg'): symlinks" in warnings[0]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_the_label_server_prints_its_summary_on_sigterm_as_on_sigint(work: Path, sig: signal.Signals) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "platepilot.cli", "label", "--crops-dir", str(CROPS), "--output", str(LABELS),
         "--no-browser"],
        cwd=work, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        while "open http" not in (line := proc.stdout.readline()):
            assert line, f"the server did not start: {proc.stderr.read() if proc.stderr else ''}"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert out.splitlines()[-1].startswith("stopped; 0 saved this run, 0/5 done")


def test_label_skip_and_correct(work: Path) -> None:
    session = LabelSession(CROPS, LABELS, clock=Clock())
    first = session.next_item("a")
    assert first is not None and first.rel == "2024-05-01/CAM1_track0.jpg" and first.current is None
    assert first.key == "output/crops/2024-05-01/CAM1_track0.jpg"
    assert session.save(first.rel, "ABC123").line == f"{first.key}\tABC123"
    second = session.next_item("a")
    assert second is not None and second.rel.endswith("track1.jpg")
    session.save(second.rel, SKIP)
    again = session.item(first.rel)
    assert again.current == "ABC123"
    assert session.save(first.rel, "ABC123").line == ""  # unchanged: nothing appended
    session.save(first.rel, "ABC128")
    lines = LABELS.read_text().splitlines()
    assert lines == [f"{first.key}\tABC123", f"{second.key}\t{SKIP}", f"{first.key}\tABC128"]
    with pytest.raises(PlatepilotError, match="A-Z and 0-9"):
        session.save(first.rel, "abc-1")
    with pytest.raises(PlatepilotError, match="not a crop"):
        session.save("../secret.jpg", "ABC123")
    progress = session.progress()
    assert (progress["done"], progress["total"], progress["saved"]) == (2, 5, 4)


def test_leases_keep_two_pages_apart_and_lapse(work: Path) -> None:
    clock = Clock()
    session = LabelSession(CROPS, LABELS, clock=clock, lease_s=60)
    a, b = session.next_item("a"), session.next_item("b")
    assert a is not None and b is not None and a.rel != b.rel
    clock.t += 61
    c = session.next_item("c")
    assert c is not None and c.rel == a.rel  # a's lease lapsed


def test_restart_shows_only_new_and_new_crops_appear(work: Path, synth_crops: Crops) -> None:
    session = LabelSession(CROPS, LABELS, clock=Clock())
    for _ in range(5):
        item = session.next_item("a")
        assert item is not None
        session.save(item.rel, "ABC123")
    assert session.next_item("a") is None
    assert LabelSession(CROPS, LABELS).next_item("b") is None
    make_crops(CROPS, synth_crops, 1, day="2024-05-02")
    import platepilot.labeling.session as session_module

    session._scanned_at -= session_module.RESCAN_S  # skip the once-a-second rescan wait
    item = session.next_item("a")
    assert item is not None and item.rel == "2024-05-02/CAM1_track0.jpg"


def test_labels_written_with_other_path_spellings_count_as_done(work: Path) -> None:
    LABELS.parent.mkdir(parents=True)
    absolute = (work / CROPS / "2024-05-01" / "CAM1_track0.jpg").as_posix()
    LABELS.write_text(f"{absolute}\tABC123\n./output/crops/2024-05-01/CAM1_track1.jpg\tDEF456\n")
    item = LabelSession(CROPS, LABELS).next_item("a")
    assert item is not None and item.rel.endswith("track2.jpg")


def _prelabel(key: str, text: str, conf: float) -> None:
    append_records(LABELS, [make_record(key, text, "crnn", conf, False, NOW)])


def test_review_order_suspicious_first_then_unverified(work: Path) -> None:
    keys = [f"output/crops/2024-05-01/CAM1_track{i}.jpg" for i in range(5)]
    LABELS.parent.mkdir(parents=True)
    LABELS.write_text(f"{keys[0]}\tABC123\n{keys[1]}\tPARKING\n{keys[2]}\tDEF456\n")
    _prelabel(keys[2], "DEF456", 0.7)  # accepted pre-label nobody checked
    _prelabel(keys[3], "GHI789", 0.4)  # only a suggestion
    _prelabel(keys[4], "JKL012", 0.9)
    session = LabelSession(CROPS, LABELS, review=True)
    order, after = [], None
    while (item := session.next_item("a", after)) is not None:
        order.append((item.rel[-10:], item.current, item.suggestion.text if item.suggestion else None))
        after = item.rel
    assert order == [
        ("track1.jpg", "PARKING", None),
        ("track3.jpg", None, "GHI789"),
        ("track2.jpg", "DEF456", "DEF456"),
        ("track4.jpg", None, "JKL012"),
        ("track0.jpg", "ABC123", None),
    ]
    first = session.next_item("a")
    assert first is not None and {r.code for r in first.reasons} == {"sign_word", "no_digits"}
    session.save(first.rel, SKIP)
    assert latest_labels(LABELS)[keys[1]].text == SKIP
    assert LABELS.read_text().count(keys[1]) == 2  # appended, history kept
    assert unverified_paths(LABELS, {k: v.text for k, v in latest_labels(LABELS).items()}) == {keys[2]}


def test_prelabel_with_a_real_engine(work: Path, tiny_model: Path) -> None:
    engine = CRNNOCRService(tiny_model)
    LABELS.parent.mkdir(parents=True)
    LABELS.write_text("output/crops/2024-05-01/CAM1_track0.jpg\tABC123\n")
    (CROPS / "2024-05-01" / "CAM1_track9.jpg").write_bytes(b"")  # unreadable: reported, not fatal
    result = prelabel_crops(CROPS, LABELS, engine, batch_size=2)
    assert (result.read, result.already_labeled, result.already_read) == (4, 1, 0)
    assert [rel for rel, _ in result.unreadable] == ["2024-05-01/CAM1_track9.jpg"]
    assert LABELS.read_text() == "output/crops/2024-05-01/CAM1_track0.jpg\tABC123\n"  # untouched
    records = latest_prelabels(LABELS)
    assert len(records) == 4 and all(r.engine == "crnn" and not r.verified for r in records.values())
    assert all(r.confidence is not None and 0 <= r.confidence <= 1 for r in records.values())
    again = prelabel_crops(CROPS, LABELS, engine)
    assert (again.read, again.already_read) == (0, 4)
    item = LabelSession(CROPS, LABELS).next_item("a")
    assert item is not None and item.suggestion is not None
    assert item.suggestion.text == records[item.key].text
    accepted = prelabel_crops(CROPS, LABELS, engine, redo=True, accept_above=0.0)
    valid = [r for r in latest_prelabels(LABELS).values() if r.text]
    assert accepted.accepted == len(valid)
    assert len(LABELS.read_text().splitlines()) == 1 + len(valid)


def test_a_crop_labels_txt_cannot_name_is_left_out_not_the_whole_batch(work: Path, tiny_model: Path) -> None:
    """A crop name holding a tab refused the batch's accepted labels (and stopped the labeling page on it);
    one that is not UTF-8 made every /api/next a 500."""
    day = CROPS / "2024-05-01"
    image = (day / "CAM1_track0.jpg").read_bytes()
    (day / "h tab\tname.jpg").write_bytes(image)
    (day / os.fsdecode(b"caf\xe9.jpg")).write_bytes(image)  # a Latin-1 name, as some cameras write
    crops, skipped = scan_crops(CROPS)
    assert len(skipped) == 2 and all("\t" not in c and "caf" not in c for c in crops)
    result = prelabel_crops(CROPS, LABELS, CRNNOCRService(tiny_model), batch_size=8, accept_above=0.0)
    assert result.read == 5 and result.unreadable == () and result.accepted == len(LABELS.read_text().splitlines()) > 0


def test_prelabel_command_line(work: Path, tiny_model: Path) -> None:
    args = ["prelabel", "--crops-dir", str(CROPS), "--output", str(LABELS), "--model", str(tiny_model)]
    result = CliRunner().invoke(cli_app, args)
    assert result.exit_code == 0, result.output
    assert "5 crops pre-labeled by crnn" in result.output
    assert Path(str(LABELS) + ".meta.jsonl").is_file() and not LABELS.exists()
    unknown = CliRunner().invoke(cli_app, [*args, "--engine", "tesseract"])
    assert unknown.exit_code == 1 and "unknown OCR engine 'tesseract'" in str(unknown.exception)
    assert "PlateOCR" in CliRunner().invoke(cli_app, ["prelabel", "--help"]).output
    assert Settings().ocr.engine == "auto"


def test_other_web_sites_can_neither_frame_nor_call_the_pages(work: Path) -> None:
    """A hidden frame under a decoy button removed a watchlist entry; ten <img src=/api/next> on another
    site reserved every crop. Opening a page from a link stays allowed."""
    session = LabelSession(CROPS, LABELS)
    local = TestClient(create_app(session), base_url="http://127.0.0.1:8000")
    page = local.get("/")
    assert (
        page.headers["x-frame-options"] == "DENY"
        and "frame-ancestors 'none'" in page.headers["content-security-policy"]
    )
    cross = {"sec-fetch-site": "cross-site", "sec-fetch-mode": "no-cors", "sec-fetch-dest": "image"}
    assert local.get("/api/next?client=evil1", headers=cross).status_code == 403
    assert local.get("/", headers={"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate"}).status_code == 200
    body = {"client": "a", "rel": "2024-05-01/CAM1_track0.jpg", "text": "ABC123"}
    assert local.post("/api/save", json=body, headers={"origin": "http://evil.example"}).status_code == 403
    assert local.post("/api/save", json=body, headers={"origin": "http://127.0.0.1:8000"}).status_code == 200
    assert local.get("/api/next?client=a", headers={"sec-fetch-site": "same-origin"}).status_code == 200
    proxied = {"origin": "https://lpr.example.com", "sec-fetch-site": "same-origin"}  # a proxy kept Host
    assert local.post("/api/save", json=body, headers=proxied).status_code == 200
    forwarded = {"origin": "https://lpr.example.com", "x-forwarded-host": "lpr.example.com"}  # no Sec-Fetch-*
    assert local.post("/api/save", json=body, headers=forwarded).status_code == 200
    other_loopback = TestClient(create_app(session), base_url="http://127.0.0.2:8000")
    assert other_loopback.get("/").status_code == 200  # a server bound to 127.0.0.2 was refused everything


def test_two_token_servers_on_one_host_keep_their_own_cookie(work: Path) -> None:
    """One cookie name for every port: opening the labeling app logged the dashboard out."""
    session = LabelSession(CROPS, LABELS)
    first = TestClient(create_app(session, token="first"), base_url="http://10.0.0.5:8000")
    second = TestClient(create_app(session, token="second"), base_url="http://10.0.0.5:8001")
    first.get("/?token=first")
    second.get("/?token=second")
    assert len({*first.cookies.keys(), *second.cookies.keys()}) == 2
    assert first.get("/api/next?client=a").status_code == 200 and second.get("/api/next?client=b").status_code == 200


def test_http_guard_traversal_and_token(work: Path) -> None:
    session = LabelSession(CROPS, LABELS)
    local = TestClient(create_app(session), base_url="http://127.0.0.1:8000")
    assert local.get("/crops/2024-05-01/CAM1_track0.jpg").status_code == 200
    assert local.get("/crops/..%2F..%2Fsecret.jpg").status_code == 404
    assert local.get("/crops/%2e%2e/%2e%2e/etc/passwd").status_code == 404
    assert local.get("/static/../app.py").status_code == 404
    assert local.get("/", headers={"host": "evil.example:8000"}).status_code == 403
    form = local.post("/api/save", content=b"rel=x&text=y", headers={"content-type": "text/plain"})
    assert form.status_code == 415
    remote = TestClient(create_app(session, token="s3cret"), base_url="http://10.0.0.5:8000")
    assert remote.get("/api/next").status_code == 401
    assert remote.get("/api/next?token=wrong").status_code == 401
    assert remote.get("/?token=s3cret").status_code == 200  # sets the cookie
    assert remote.get("/api/next?client=a").status_code == 200
    body = {"client": "a", "rel": "2024-05-01/CAM1_track0.jpg", "text": "ABC123"}
    assert remote.post("/api/save", json=body).json()["line"].endswith("\tABC123")
    bad = remote.post("/api/save", json={**body, "text": "abc 1"})
    assert bad.status_code == 400 and "A-Z" in bad.json()["detail"]


def test_a_server_that_cannot_listen_says_whether_the_port_or_the_host_is_wrong() -> None:
    """A host that is no address of this machine was reported as a port in use."""
    from platepilot.labeling.server import bind

    taken = bind("127.0.0.1", 0)
    try:
        port = taken.getsockname()[1]
        with pytest.raises(PlatepilotError, match=rf"port {port} on 127.0.0.1 is in use"):
            bind("127.0.0.1", port)
    finally:
        taken.close()
    with pytest.raises(PlatepilotError, match=r"cannot listen on 999\.1\.1\.1: .*; check --host"):
        bind("999.1.1.1", 0)


def test_an_unreadable_subfolder_leaves_out_its_crops_only(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`lost+found` (root only) on a crops disk made every /api/next a 500 and `ocr FOLDER` read nothing."""
    real_scandir = os.scandir
    locked = CROPS / "lost+found"
    locked.mkdir()

    def scandir(path: str) -> object:
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    crops, _ = scan_crops(CROPS)
    assert len(crops) == 5 and LabelSession(CROPS, LABELS).next_item("a") is not None


def test_a_label_written_before_its_crop_arrives_counts_once_it_does(work: Path) -> None:
    """The session kept each path's resolution for good: a label copied in before its crop stayed apart."""
    LABELS.parent.mkdir(parents=True)
    late = CROPS / "2024-05-02" / "CAM1_track9.jpg"
    LABELS.write_text(f"{os.path.relpath(late, LABELS.parent)}\tLATE99\n")  # relative to labels.txt's folder
    session = LabelSession(CROPS, LABELS)
    assert session.progress()["done"] == 0
    late.parent.mkdir()
    late.write_bytes((CROPS / "2024-05-01" / "CAM1_track0.jpg").read_bytes())
    session._scanned_at = -1e9  # the page rescans the folder every second
    session.save("2024-05-01/CAM1_track1.jpg", "ABC123")  # a save re-reads labels.txt
    assert session.item("2024-05-02/CAM1_track9.jpg").current == "LATE99"


def test_a_pending_label_never_beats_a_later_line_for_its_crop(work: Path) -> None:
    LABELS.parent.mkdir(parents=True)
    late = CROPS / "2024-05-02" / "CAM1_track9.jpg"
    absolute = late.resolve()
    LABELS.write_text(f"{os.path.relpath(late, LABELS.parent)}\tOLD111\n")  # waits for its crop
    session = LabelSession(CROPS, LABELS)
    session.progress()
    late.parent.mkdir()
    late.write_bytes((CROPS / "2024-05-01" / "CAM1_track0.jpg").read_bytes())
    with LABELS.open("a") as handle:  # the same crop under another spelling, later: it wins
        handle.write(f"{absolute}\tNEW222\n")
    assert session.item("2024-05-02/CAM1_track9.jpg").current == "NEW222"


def test_labels_rewritten_by_hand_or_compacted_are_read_again(work: Path) -> None:
    session = LabelSession(CROPS, LABELS)
    session.save("2024-05-01/CAM1_track0.jpg", "ABC123")
    session.save("2024-05-01/CAM1_track1.jpg", "XYZ789")
    assert session.progress()["done"] == 2
    text = LABELS.read_text()
    LABELS.write_text(text.replace("ABC123", "ABC124"))  # an editor, in place: same size, other bytes
    assert session.item("2024-05-01/CAM1_track0.jpg").current == "ABC124"
    kept = LABELS.read_text().splitlines()[1] + "\n"
    tmp = LABELS.with_name("labels.tmp")
    tmp.write_text(kept)
    tmp.replace(LABELS)  # compaction: another file, shorter
    assert session.item("2024-05-01/CAM1_track0.jpg").current is None
    assert session.progress()["done"] == 1
    LABELS.unlink()
    assert session.progress()["done"] == 0


def test_pre_labels_appended_while_the_page_runs_are_shown(work: Path) -> None:
    session = LabelSession(CROPS, LABELS)
    assert session.item("2024-05-01/CAM1_track2.jpg").suggestion is None
    LABELS.parent.mkdir(parents=True, exist_ok=True)
    record = make_record(str(CROPS / "2024-05-01" / "CAM1_track2.jpg"), "PRE123", "crnn", 0.7, False, NOW)
    append_records(LABELS, [record])  # a pre-label run writes only the sidecar
    suggestion = session.item("2024-05-01/CAM1_track2.jpg").suggestion
    assert suggestion is not None and suggestion.text == "PRE123"


def test_the_crop_scanner_lists_a_changed_folder_again_and_an_unchanged_one_from_memory(
    work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from platepilot.labeling import crops as crops_module

    old, new = CROPS / "2024-05-01", CROPS / "2024-05-02"
    new.mkdir()
    past = datetime(2024, 5, 1, tzinfo=UTC).timestamp()
    for folder in (old, new, CROPS):
        os.utime(folder, (past, past))
    scanner = crops_module.CropScanner(CROPS)
    assert len(scanner.scan()[0]) == 5
    listed: list[str] = []
    real_scandir = os.scandir
    monkeypatch.setattr(crops_module.os, "scandir", lambda p: listed.append(str(p)) or real_scandir(p))
    assert len(scanner.scan()[0]) == 5 and listed == []  # nothing changed: no folder listed again
    (new / "CAM1_track10.jpg").write_bytes((old / "CAM1_track0.jpg").read_bytes())
    (new / "CAM1_track9.jpg").write_bytes((old / "CAM1_track0.jpg").read_bytes())
    found, _ = scanner.scan()
    assert listed == [str(new)] and found[-2:] == ["2024-05-02/CAM1_track9.jpg", "2024-05-02/CAM1_track10.jpg"]
    os.utime(new, (past, past))
    scanner.scan()
    # a crop added within the folder's clock tick: its time looks unchanged
    (new / "CAM1_track11.jpg").write_bytes((old / "CAM1_track0.jpg").read_bytes())
    os.utime(new, (past, past))
    assert "2024-05-02/CAM1_track11.jpg" not in scanner.scan()[0]  # a folder untouched for SETTLE_S is trusted
    monkeypatch.setattr(crops_module, "SETTLE_S", 10 * 365 * 86_400.0)
    assert "2024-05-02/CAM1_track11.jpg" in scanner.scan()[0]  # one changed lately is listed again
