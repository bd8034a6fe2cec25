"""PlateOCR: the ensemble's voting on hand-made reads, line picking, the real members offline, threads."""

from __future__ import annotations

import itertools
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from platepilot.config import OCRConfig, Settings
from platepilot.errors import PlatepilotError
from platepilot.ocr.cascade import CascadeOCR
from platepilot.ocr.crnn_service import CRNNOCRService
from platepilot.ocr.ctc import text_probabilities, text_probability
from platepilot.ocr.ensemble import MemberRead, char_vote, combine
from platepilot.ocr.lines import (
    ENLARGED_HEIGHT,
    LINE_MARGIN,
    SECOND_LOOK_SIDE,
    SMALL_CROP_HEIGHT,
    PlateLineFinder,
    cut_line,
    enlarged,
    pick_plate_rows,
)
from platepilot.ocr.models import BUNDLED_MODEL, make_engine
from platepilot.ocr.plate_ocr import PlateOCR, build_plate_ocr
from platepilot.ocr.views import GROW, margin_views, vote_views
from platepilot.plates.charset import CHARSET, fold
from platepilot.plates.formats import looks_like_serial
from platepilot.plates.synth import synth_sample
from platepilot.types import PlateRead


def _read(text: str, confidence: float, chars: tuple[float, ...] = (), engine: str = "m") -> PlateRead:
    return PlateRead(text, confidence, chars, engine, ((text, confidence),))


def _ctc(text: str, sure: float = 0.9, steps_per_char: int = 2) -> np.ndarray:
    """A (T, 37) CTC probability matrix that spells `text` with per-step confidence `sure`."""
    rows = []
    for ch in text:
        rows += [CHARSET.index(ch) + 1] * steps_per_char + [0]
    probs = np.full((len(rows), 1 + len(CHARSET)), (1 - sure) / len(CHARSET))
    probs[np.arange(len(rows)), rows] = sure
    return probs


# --- voting, on hand-made candidates -------------------------------------------------------------


def test_agreement_raises_confidence_above_every_member() -> None:
    read = combine(
        [MemberRead(_read("ABC1234", 0.7, engine="paddle")), MemberRead(_read("ABC1234", 0.6, engine="crnn"))]
    )
    assert read.text == "ABC1234" and read.engine == "plateocr"
    assert read.confidence == pytest.approx(1 - 0.3 * 0.4)
    assert read.format_match == "fl-dealer"


def test_one_members_two_reads_of_a_crop_are_not_two_members_agreeing() -> None:
    """PaddleOCR reads a crop's line and the whole crop: counted as two members, its 0.956 became 0.997 and
    its text got the agreement bonus twice."""
    line, whole = (
        MemberRead(_read("D8055L", 0.956, engine="paddle")),
        MemberRead(_read("D8055L", 0.929, engine="paddle")),
    )
    crnn = MemberRead(_read("8055L", 0.981, engine="crnn"))
    assert combine([line, whole], format_prior=False).confidence == pytest.approx(0.956)
    shares = dict(combine([line, whole, crnn], format_prior=False).candidates)
    assert shares["D8055L"] / shares["8055L"] == pytest.approx(0.956 / 0.981)  # one agreement bonus each


def test_disagreement_prefers_the_plate_shaped_text_among_near_equal_scores() -> None:
    slogan = MemberRead(_read("SUNSHINE", 0.8))  # no digit: not a plate
    plate = MemberRead(_read("ABC123", 0.6))
    assert combine([slogan, plate]).text == "ABC123"
    assert combine([slogan, plate], format_prior=False).text == "SUNSHINE"
    far_apart = MemberRead(_read("ABC123", 0.2))
    assert combine([slogan, far_apart]).text == "SUNSHINE"  # 0.2 < 0.5 x 0.8: not near-equal


def test_character_vote_takes_each_position_from_the_surer_member() -> None:
    a = _read("ABC1Z3", 0.8, (0.9, 0.9, 0.9, 0.9, 0.3, 0.9))
    b = _read("A8C123", 0.8, (0.9, 0.4, 0.9, 0.9, 0.9, 0.9))
    assert char_vote(a, b) == "ABC123"
    assert char_vote(a, _read("ABC12", 0.9)) is None  # lengths differ
    assert char_vote(a, a) is None


def test_ctc_members_score_each_others_reads_and_the_vote_can_win() -> None:
    # Each member misreads one character (its two steps) and is unsure there; each is sure of the rest.
    paddle = _ctc("ABC1Z3")
    paddle[12:14, :] = 0.0
    paddle[12:14, [CHARSET.index("2") + 1, CHARSET.index("Z") + 1]] = [0.45, 0.55]
    crnn = _ctc("A8C123")
    crnn[3:5, :] = 0.0
    crnn[3:5, [CHARSET.index("B") + 1, CHARSET.index("8") + 1]] = [0.45, 0.55]
    members = [
        MemberRead(_read("ABC1Z3", 0.8, (0.9, 0.9, 0.9, 0.9, 0.55, 0.9)), paddle),
        MemberRead(_read("A8C123", 0.8, (0.9, 0.55, 0.9, 0.9, 0.9, 0.9)), crnn),
    ]
    read = combine(members)
    assert read.text == "ABC123"
    assert read.candidates[0][0] == "ABC123" and {t for t, _ in read.candidates} >= {"ABC1Z3", "A8C123"}
    assert sum(c for _, c in read.candidates) <= 1.0 + 1e-9
    assert read.char_confidences == (0.9, 0.9, 0.9, 0.9, 0.9, 0.9)


def test_a_read_no_state_issues_gives_way_to_a_format_no_member_offered() -> None:
    # Both members take a blurred California 4 for an L; at the first character each still gives the 4 two
    # thirds of the L's probability. LRAR512 fits no state's format, 4RAR512 (#@@@###) does.
    def blurred() -> np.ndarray:
        probs = _ctc("LRAR512")
        probs[0:2, :] = 0.0
        probs[0:2, [CHARSET.index("L") + 1, CHARSET.index("4") + 1]] = [0.6, 0.4]
        return probs

    members = [MemberRead(_read("LRAR512", 0.8), blurred()), MemberRead(_read("LRAR512", 0.8), blurred())]
    read = combine(members)
    assert read.text == "4RAR512" and read.format_match == "us-1abc234"
    assert combine(members, format_prior=False).text == "LRAR512"
    # a text some state issues is kept: Mississippi's @@@@@#
    sure = [MemberRead(_read("LRARE5", 0.8), _ctc("LRARE5")), MemberRead(_read("LRARE5", 0.8), _ctc("LRARE5"))]
    assert combine(sure).text == "LRARE5"


def test_empty_reads_give_an_empty_read() -> None:
    read = combine([MemberRead(_read("", 0.0)), MemberRead(_read("", 0.0))])
    assert (read.text, read.confidence, read.candidates) == ("", 0.0, ())


def test_text_probability_matches_the_spelled_text() -> None:
    probs = _ctc("AA1")
    assert 0.9**9 < text_probability(probs, CHARSET, "AA1") < 1.0  # the best path, plus the others
    assert text_probability(probs, CHARSET, "A1") < 0.01  # the blank between the As is confident
    assert text_probability(probs, CHARSET, "a") == 0.0


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (np.zeros((0, 6)), None),
        (np.array([[5, 10, 90, 40, 0.9, 0]]), None),  # one line: read the whole crop
        (np.array([[5, 10, 40, 40, 0.9, 0], [50, 12, 95, 41, 0.9, 0]]), None),  # one row, two pieces
        (np.array([[20, 2, 80, 12, 0.9, 0], [5, 20, 95, 60, 0.9, 0], [10, 66, 90, 76, 0.8, 0]]), (20, 60)),
        (np.array([[20, -3, 80, 30, 0.9, 0], [5, 40, 95, 90.5, 0.9, 0]]), (40, 80)),  # clipped to the crop
    ],
)
def test_the_plate_line_is_the_tallest_of_several_rows(lines: np.ndarray, expected: tuple[int, int] | None) -> None:
    assert pick_plate_rows(lines, 80) == expected


# --- the CRNN alone: two more framings of an unsure read ----------------------------------------------


def test_scored_together_a_stack_of_views_gives_each_views_own_probability() -> None:
    stack = np.stack([_ctc("4COV126", 0.9), _ctc("4CQV126", 0.6), _ctc("4COV126", 0.5)])
    together = text_probabilities(stack, CHARSET, ["4COV126"])[0]
    assert together == pytest.approx([text_probability(p, CHARSET, "4COV126") for p in stack], rel=1e-12)
    assert together[0] > 0.9**21 and together[0] > together[2] > together[1]  # the sure spelling first


def test_texts_scored_together_each_get_their_own_probability() -> None:
    stack = np.stack([_ctc("4COV126", 0.9), _ctc("4CQV126", 0.6)])
    # every kind of text side by side: the read, near misses, a repeat, one char, empty, unspellable, too long
    texts = ["4COV126", "4CQV126", "4COV12", "4COOV126", "4", "", "4cov126", "4COV126" * 5]
    together = text_probabilities(stack, CHARSET, texts)
    assert together.shape == (len(texts), 2)
    for text, row in zip(texts, together, strict=True):
        assert row == pytest.approx([text_probability(p, CHARSET, text) for p in stack], rel=1e-12, abs=1e-300)
    assert together[0, 0] > together[1, 0] and together[1, 1] > together[0, 1]
    assert not together[6:].any()  # a lower-case or a too-long text cannot be spelled


def test_the_forward_algorithm_sums_every_path_that_spells_the_text() -> None:
    probs = np.random.default_rng(1).dirichlet(np.full(1 + len(CHARSET), 0.3), size=3)  # T = 3 steps
    for text in ("", "A", "AA", "AB", "ABC"):
        total = 0.0
        for path in itertools.product(range(1 + len(CHARSET)), repeat=3):
            kept = [c for i, c in enumerate(path) if c and (i == 0 or c != path[i - 1])]
            if "".join(CHARSET[c - 1] for c in kept) == text:
                total += float(np.prod(probs[np.arange(3), list(path)]))
        assert text_probability(probs, CHARSET, text) == pytest.approx(total, rel=1e-9)


def test_margin_views_grow_and_cut_every_side_and_are_never_empty() -> None:
    crop = np.random.default_rng(0).integers(0, 255, (50, 100, 3), np.uint8)
    grown, cut = margin_views(crop)
    dx, dy = round(GROW[0] * 100), round(GROW[1] * 50)
    assert grown.shape == (50 + 2 * dy, 100 + 2 * dx, 3)
    assert np.array_equal(grown[dy:-dy, dx:-dx], crop)
    assert np.array_equal(cut, crop[dy // 2 : 50 - dy // 2, dx // 2 : 100 - dx // 2])
    for h, w in [(1, 1), (2, 3), (40, 1)]:
        assert all(view.size for view in margin_views(np.zeros((h, w, 3), np.uint8)))


def test_the_views_vote_out_a_character_one_framing_misread() -> None:
    first = MemberRead(_read("4CQV126", 0.8), _ctc("4CQV126", 0.6))
    others = [MemberRead(_read("4COV126", 0.9), _ctc("4COV126", 0.9)) for _ in range(2)]
    voted = vote_views([first, *others], format_prior=True, engine="crnn")
    assert voted.text == "4COV126" and voted.engine == "crnn"
    # three framings by one network are not independent readers: no noisy-or above the surest view
    assert 0.0 < voted.confidence <= 0.9
    assert voted.char_confidences == (voted.confidence,) * 7


def test_views_that_agree_leave_the_read_as_it_was() -> None:
    first = MemberRead(_read("ABC1234", 0.7, (0.7,) * 7), _ctc("ABC1234", 0.7))
    others = [MemberRead(_read("ABC1234", 0.95), _ctc("ABC1234", 0.95)) for _ in range(2)]
    assert vote_views([first, *others], format_prior=True, engine="crnn") is first.read


def test_only_unsure_reads_of_the_crnn_alone_are_read_again(monkeypatch: pytest.MonkeyPatch) -> None:
    crops = [cv2.GaussianBlur(synth_sample(5, i).image, (0, 0), 1.0 + 0.3 * i) for i in range(12)]
    plain = CRNNOCRService(BUNDLED_MODEL, views_below=0.0).read(crops)
    below = 0.99
    unsure = [i for i, read in enumerate(plain) if read.text and read.confidence < below]
    assert unsure and len(unsure) < len(crops)  # the blur ladder gives both kinds
    service = CRNNOCRService(BUNDLED_MODEL, views_below=below)
    read_crops: list[int] = []
    probabilities = service.probabilities
    monkeypatch.setattr(service, "probabilities", lambda batch: read_crops.append(len(batch)) or probabilities(batch))
    reads = service.read(crops)
    assert sum(read_crops) == len(crops) + 2 * len(unsure)
    sure = [i for i in range(len(crops)) if i not in unsure]
    assert [reads[i] for i in sure] == [plain[i] for i in sure]
    assert Settings().ocr.views_below == below
    with pytest.raises(ValueError, match="views_below"):
        OCRConfig(views_below=1.5)


# --- configuration --------------------------------------------------------------------------------


def test_members_are_validated_in_config() -> None:
    assert OCRConfig(plateocr_members=("easyocr",)).plateocr_members == ("easyocr",)
    for bad in ((), ("paddle", "paddle"), ("tesseract",)):
        with pytest.raises(ValueError, match="plateocr_members"):
            OCRConfig(plateocr_members=bad)  # type: ignore[arg-type]


def test_a_missing_member_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "easyocr", None)  # import easyocr -> ImportError
    with pytest.raises(PlatepilotError, match=r"easyocr is not installed: pip install 'platepilot\[ensemble\]'"):
        build_plate_ocr(["paddle", "easyocr"], None)
    with pytest.raises(PlatepilotError, match="unknown PlateOCR member 'tesseract'"):
        build_plate_ocr(["tesseract"], None)
    with pytest.raises(PlatepilotError, match="at least one member"):
        PlateOCR([])


class _Scripted:
    """A member that reads every crop as `text`, and records which regions it was asked for."""

    def __init__(self, name: str, text: str) -> None:
        self.name, self.text, self.rows_seen = name, text, []

    def read_member(self, image: np.ndarray, rows: tuple[int, int] | None) -> list[MemberRead]:
        self.rows_seen.append(rows)
        return [MemberRead(_read(self.text, 0.8, engine=self.name))]


def test_plate_ocr_combines_its_members_and_refuses_bad_crops() -> None:
    members = [_Scripted("a", "ABC123"), _Scripted("b", "ABC123"), _Scripted("c", "XYZ")]
    engine = PlateOCR(members)
    grey = np.full((20, 60), 200, np.uint8)
    reads = engine.read([np.zeros((20, 60, 3), np.uint8), grey])
    assert [(r.text, r.engine) for r in reads] == [("ABC123", "plateocr")] * 2
    assert reads[0].confidence == pytest.approx(1 - 0.2 * 0.2)
    assert members[0].rows_seen == [None, None]  # no line finder: whole crops
    with pytest.raises(PlatepilotError, match=r"^image 1: expected a non-empty uint8 array, got float64"):
        engine.read([grey, np.zeros((20, 60, 3))])
    with pytest.raises(PlatepilotError, match="image 0: expected a non-empty uint8 array"):
        engine.read([np.zeros((0, 0, 3), np.uint8)])


# --- the real members, offline ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def plates() -> list[tuple[np.ndarray, str]]:
    """Clean synthetic whole plates: most show a state name or web address and a slogan around the serial."""
    clean = [synth_sample(7, i, camera=False) for i in range(8)]
    return [(s.image, s.text) for s in clean]


@pytest.fixture(scope="module")
def ensemble() -> PlateOCR:
    """The default ensemble (PP-OCRv6 + the bundled CRNN), warmed up."""
    engine = build_plate_ocr(Settings().ocr.plateocr_members, BUNDLED_MODEL)
    engine.warmup()
    return engine


def _right(reads: list[PlateRead], truths: list[str]) -> int:
    """Reads equal to the truth with O/0 and I/1 folded: several of these plate fonts print them alike."""
    return sum(fold(r.text) == fold(t) for r, t in zip(reads, truths, strict=True))


@pytest.mark.slow
@pytest.mark.parametrize(("name", "floor"), [("paddle", 6), ("crnn", 7)])  # some plates carry art and decoys
def test_each_onnx_member_reads_synthetic_plates(name: str, floor: int, plates: list[tuple[np.ndarray, str]]) -> None:
    engine = make_engine(name, None, Settings())
    engine.warmup()
    reads = engine.read([image for image, _ in plates])
    assert _right(reads, [text for _, text in plates]) >= floor, [r.text for r in reads]
    assert all(r.engine == name and 0.0 <= r.confidence <= 1.0 for r in reads)


def _printed(text: str) -> np.ndarray:
    image = np.full((64, 260, 3), 255, np.uint8)
    cv2.putText(image, text, (12, 48), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (20, 20, 20), 4, cv2.LINE_AA)
    return image


@pytest.mark.slow
def test_easyocr_member_reads_printed_text_and_joins_the_ensemble(plates: list[tuple[np.ndarray, str]]) -> None:
    # EasyOCR reads the synthetic plate fonts poorly (as it reads real plates: docs/plateocr.md), so
    # its own check is on plainly printed text; then it must take its place in an ensemble.
    engine = make_engine("easyocr", None, Settings())
    reads = engine.read([_printed("ABC123"), _printed("7KX 402")])
    assert [(r.text, r.engine) for r in reads] == [("ABC123", "easyocr"), ("7KX402", "easyocr")]
    assert all(0.3 < r.confidence <= 1.0 for r in reads)
    trio = build_plate_ocr(["paddle", "easyocr", "crnn"], BUNDLED_MODEL)
    image, text = plates[0]
    whole_plate = trio.member_reads(image)  # Paddle reads one view, or two when it finds a plate line
    engines = [m.read.engine for m in whole_plate]
    assert engines[-2:] == ["easyocr", "crnn"] and set(engines[:-2]) == {"paddle"}
    assert [m.probs is not None for m in whole_plate] == [True] * (len(engines) - 2) + [False, True]
    assert _right(trio.read([image]), [text]) == 1


@pytest.mark.slow
def test_ensemble_reads_synthetic_plates_at_least_as_well_as_its_members(
    ensemble: PlateOCR, plates: list[tuple[np.ndarray, str]]
) -> None:
    reads = ensemble.read([image for image, _ in plates])
    assert _right(reads, [text for _, text in plates]) >= 7, [r.text for r in reads]
    assert all(r.engine == "plateocr" and r.candidates and r.candidates[0][1] <= 1.0 for r in reads)
    assert all(r.text in {t for t, _ in r.candidates} for r in reads)


@pytest.mark.slow
def test_four_threads_read_what_one_thread_reads(ensemble: PlateOCR, plates: list[tuple[np.ndarray, str]]) -> None:
    images = [image for image, _ in plates] * 2
    sequential = [ensemble.read([image])[0] for image in images]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(lambda image: ensemble.read([image])[0], images))
    assert [_key(r) for r in threaded] == [_key(r) for r in sequential]
    assert len({r.text for r in sequential}) == len(plates)  # really different crops


@pytest.mark.slow
def test_the_cascade_sends_only_the_crnns_unsure_reads_to_plateocr(
    ensemble: PlateOCR, plates: list[tuple[np.ndarray, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    crnn = make_engine("crnn", None, Settings())
    noise = np.random.default_rng(3).integers(0, 255, (40, 120, 3), np.uint8)
    images = [image for image, _ in plates] + [cv2.blur(image, (9, 1)) for image, _ in plates[:4]] + [noise]
    alone = crnn.read(images)
    sure = float(np.median([r.confidence for r in alone]))
    unsure = [i for i, r in enumerate(alone) if not r.text or r.confidence < sure]
    asked: list[np.ndarray] = []
    plate_ocr_read = ensemble.read
    monkeypatch.setattr(ensemble, "read", lambda crops: asked.extend(crops) or plate_ocr_read(crops))
    reads = CascadeOCR(crnn, ensemble, sure).read(images)
    assert 0 < len(asked) == len(unsure) < len(images)
    assert all(a is images[i] for a, i in zip(asked, unsure, strict=True))
    by_plate_ocr = plate_ocr_read([images[i] for i in unsure])
    for i, (read, first) in enumerate(zip(reads, alone, strict=True)):
        assert read == (by_plate_ocr[unsure.index(i)] if i in unsure else first)
        assert read.engine == ("plateocr" if i in unsure else "crnn")
    asked.clear()
    CascadeOCR(crnn, ensemble, 0.0).read(images)  # only reads with no text at all still go on
    assert len(asked) == sum(not r.text for r in alone)


def test_the_line_finder_finds_a_crops_lines_once_and_the_cascades_readers_share_it(
    plates: list[tuple[np.ndarray, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine("cascade", None, Settings(), whole_plates=True)
    assert isinstance(engine, CascadeOCR)
    finder = engine.first._lines  # type: ignore[attr-defined]
    assert finder is not None and engine.then._lines is finder  # type: ignore[attr-defined]
    runs: list[int] = []
    detect = finder._detector.lines
    monkeypatch.setattr(finder._detector, "lines", lambda image, side=None: runs.append(1) or detect(image, side))
    crop = _on_car(plates[0][0], 0)
    first = finder.lines(crop)
    assert len(first) >= 2 and not first.flags.writeable  # handed out again, so nobody may change it
    assert finder.lines(crop.copy()) is first and len(runs) == 1  # the same pixels: found once
    assert len(finder.lines(crop, 256)) and len(runs) == 2  # another scale is another search
    other = crop.copy()
    other[0, 0] ^= 1  # one pixel differs
    finder.lines(other)
    assert len(runs) == 3


def test_auto_reads_with_the_cascade_of_the_bundled_crnn_unless_a_crnn_is_deployed() -> None:
    settings = Settings(ocr=OCRConfig(cascade_sure=0.95))
    engine = make_engine("auto", None, settings)
    assert isinstance(engine, CascadeOCR) and engine.sure == 0.95 and isinstance(engine.then, PlateOCR)
    assert isinstance(engine.first, CRNNOCRService) and engine.first.model_path == BUNDLED_MODEL
    assert isinstance(make_engine("cascade", None, settings), CascadeOCR)
    with pytest.raises(ValueError, match="cascade_sure"):
        OCRConfig(cascade_sure=1.5)


def _key(read: PlateRead) -> tuple[str, float, tuple[tuple[str, float], ...]]:
    return read.text, round(read.confidence, 6), tuple((t, round(c, 6)) for t, c in read.candidates)


def test_make_engine_builds_the_configured_ensemble(tmp_path: Path) -> None:
    settings = Settings(ocr=OCRConfig(engine="plateocr", plateocr_members=("paddle", "crnn")))
    engine = make_engine("plateocr", None, settings)
    assert isinstance(engine, PlateOCR) and [m.name for m in engine.members] == ["paddle", "crnn"]
    with pytest.raises(PlatepilotError, match="unknown OCR engine 'tesseract'"):
        make_engine("tesseract", None, settings)


def _on_car(plate: np.ndarray, seed: int) -> np.ndarray:
    """A plate as a whole-plate detector boxes it: small, on a bumper, in a dealer frame's text, soft."""
    small = cv2.resize(plate, (90, round(90 * plate.shape[0] / plate.shape[1])), interpolation=cv2.INTER_AREA)
    height = small.shape[0] + 60
    crop = np.full((height, 160, 3), np.random.default_rng(seed).integers(40, 90, 3), np.uint8)
    crop[26 : 26 + small.shape[0], 35:125] = small
    cv2.putText(crop, "AUTONATION", (35, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (230, 230, 230), 1)
    cv2.putText(crop, "STEVENS CREEK", (25, height - 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (230, 230, 230), 1)
    return cv2.GaussianBlur(crop, (3, 3), 0)


@pytest.mark.slow
def test_line_crop_reads_whole_plate_crops_with_surroundings(
    plates: list[tuple[np.ndarray, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    loose = [_on_car(image, i) for i, (image, _) in enumerate(plates)]
    truths = [text for _, text in plates]
    whole = build_plate_ocr(Settings().ocr.plateocr_members, BUNDLED_MODEL)
    cut = build_plate_ocr(Settings().ocr.plateocr_members, BUNDLED_MODEL, line_crop=True)
    read_whole, read_cut = whole.read(loose), cut.read(loose)
    assert _right(read_cut, truths) >= 7, [r.text for r in read_cut]
    # a reader of tight crops looks at an unsure crop cut to its line too, so it reads these as well ...
    assert _right(read_whole, truths) >= 7, [r.text for r in read_whole]
    monkeypatch.setattr("platepilot.ocr.plate_ocr.LINE_LOOK_BELOW", 0.0)
    band_only = whole.read(loose)  # ... which it did not, reading them in the plate line's band only
    assert _right(read_cut, truths) > _right(band_only, truths), [r.text for r in band_only]
    bumper = np.full((90, 176, 3), 70, np.uint8)  # a false box: no text line, so no read at all
    assert cut.read([bumper])[0].text == "" and cut.read([bumper])[0].confidence == 0.0
    crnn_whole, crnn_cut = (make_engine("crnn", None, Settings(), whole_plates=w) for w in (False, True))
    reads = crnn_cut.read([*loose, bumper])  # in one batch: the crop with no line keeps its place
    assert _right(reads[:-1], truths) > _right(crnn_whole.read(loose), truths), [r.text for r in reads]
    assert reads[-1].text == "" and reads[-1].engine == "crnn"


@pytest.mark.parametrize("tilt", [-12.0, 0.0, 3.0, 12.0])
def test_a_tilted_line_is_cut_levelled(tilt: float) -> None:
    """A dark bar 200 x 30 px tilted as the text detector reports it (axis-aligned bounds + tilt) is cut
    along itself from 5 degrees (all bar, the line's size plus the margin); a near-level one is cut as
    it lies (its bounds)."""
    image = np.full((300, 400, 3), 255, np.uint8)
    corners = cv2.boxPoints(((200.0, 150.0), (200.0, 30.0), tilt))
    cv2.fillPoly(image, [np.round(corners).astype(np.int32)], (0, 0, 0))
    line = np.array([*corners.min(axis=0), *corners.max(axis=0), 0.9, tilt], np.float32)
    cut = cut_line(image, line)
    if abs(tilt) >= 5:
        assert cut.shape[:2] == (round(30 * (1 + 2 * LINE_MARGIN[1])), round(200 * (1 + 2 * LINE_MARGIN[0])))
        assert (cut[:, 12:-12] < 60).mean() > 0.97  # the bar fills it, but for the margin at its ends
    else:
        assert abs(cut.shape[1] - (line[2] - line[0]) * (1 + 2 * LINE_MARGIN[0])) <= 2


def test_plates_on_a_rolled_camera_are_read_levelled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Synthetic plates rotated 12 degrees either way, read by the CRNN through the line finder: levelled,
    about as many as level ones; cut as they lie (levelling off), far fewer."""
    samples = [synth_sample(5, i) for i in range(40)]
    reader = CRNNOCRService(BUNDLED_MODEL, lines=PlateLineFinder())

    def right(angle: float) -> int:
        reads = reader.read([_rotated(s.image, angle) for s in samples])
        return sum(r.text == s.text for r, s in zip(reads, samples, strict=True))

    level = right(0.0)
    levelled = [right(12.0), right(-12.0)]
    monkeypatch.setattr("platepilot.ocr.lines.LEVEL_FROM_DEG", float("inf"))
    as_they_lie = [right(12.0), right(-12.0)]
    assert level >= 26 and min(levelled) >= level - 6, (level, levelled)
    assert all(a + 8 <= b for a, b in zip(as_they_lie, levelled, strict=True)), (as_they_lie, levelled)


def _rotated(image: np.ndarray, angle: float) -> np.ndarray:
    """`image` on a replicated border a fifth of its width, rotated `angle` degrees about its centre."""
    pad = image.shape[1] // 5
    big = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    matrix = cv2.getRotationMatrix2D((big.shape[1] / 2, big.shape[0] / 2), angle, 1.0)
    return cv2.warpAffine(big, matrix, big.shape[1::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def test_whole_plate_detectors_get_a_line_cropping_reader() -> None:
    settings = Settings(ocr=OCRConfig(engine="plateocr"))
    assert make_engine("plateocr", None, settings, whole_plates=True).line_crop is True  # type: ignore[attr-defined]
    auto = make_engine("auto", None, settings, whole_plates=True)
    assert isinstance(auto, CascadeOCR) and auto.then.line_crop is True  # type: ignore[attr-defined]
    assert make_engine("plateocr", None, settings, whole_plates=False).line_crop is False  # type: ignore[attr-defined]
    no_lines = Settings(ocr=OCRConfig(engine="plateocr", plateocr_lines=False))
    assert make_engine("plateocr", None, no_lines, whole_plates=True).line_crop is False  # type: ignore[attr-defined]
    with pytest.raises(PlatepilotError, match="only with a line finder"):
        PlateOCR([_Scripted("a", "ABC123")], line_crop=True)


def test_the_line_margin_grows_or_shrinks_the_cut(plates: list[tuple[np.ndarray, str]]) -> None:
    crop = _on_car(plates[0][0], 0)
    shapes = {m: PlateLineFinder(margin=m).line_crops(crop)[0].shape[:2] for m in ((0.0, -0.1), (0.0, 0.0), (0.1, 0.2))}
    (h_in, w_in), (h0, w0), (h_out, w_out) = shapes.values()
    assert h_in < h0 < h_out and w_in == w0 < w_out < crop.shape[1]


class _ByRegion:
    """A member that reads the whole crop as `whole` and each line cut from it as the next of `lines`."""

    def __init__(self, whole_shape: tuple[int, ...], lines: list[str], whole: str) -> None:
        self.name, self.whole_shape, self.lines, self.whole = "r", whole_shape, list(lines), whole

    def read_member(self, image: np.ndarray, rows: tuple[int, int] | None) -> list[MemberRead]:
        text = self.whole if image.shape == self.whole_shape else self.lines.pop(0)
        return [MemberRead(_read(text, 0.9, engine=self.name))]


def _three_lines() -> np.ndarray:
    crop = np.full((150, 300, 3), 235, np.uint8)
    for text, y, scale in (("17", 60, 1.8), ("NEW YORK", 100, 1.0), ("FIRST IN", 135, 0.7)):
        cv2.putText(crop, text, (40, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (30, 30, 30), 2)
    return crop


@pytest.mark.parametrize(
    ("lines", "whole", "expected"),
    [
        (["ABC123", "X", "Y"], "WHOLE1", "ABC123"),  # the tallest line reads like a serial
        (["17", "ABC123", "Y"], "WHOLE1", "ABC123"),  # a sticker's number: the next line
        (["17", "NEWYORK", "FIRSTINFLIGHT"], "FHT65W", "FHT65W"),  # no line does: the whole crop
        (["17", "NEWYORK", "FIRSTINFLIGHT"], "SUNSHINESTATE", "17"),  # nor the crop: the tallest line
    ],
)
def test_a_whole_plate_crop_reads_the_first_line_that_reads_like_a_serial(
    lines: list[str], whole: str, expected: str
) -> None:
    crop = _three_lines()
    finder = PlateLineFinder()
    assert len(finder.lines(crop)) == 3
    engine = PlateOCR([_ByRegion(crop.shape, lines, whole)], finder, line_crop=True)
    assert engine.read([crop])[0].text == expected


class _TwoScales:
    """A line finder whose lines are `first` at its own scale and `second` at its second look's."""

    def __init__(self, first: list[np.ndarray], second: list[np.ndarray], second_side: int | None = 256) -> None:
        self.first, self.second, self.second_side = first, second, second_side
        self.sides: list[int | None] = []

    def lines(self, image: np.ndarray, max_side: int | None = None) -> np.ndarray:
        """One stand-in line whose score says the scale it was found at (0: the finder's own)."""
        return np.array([[0, 0, image.shape[1], image.shape[0], max_side or 0, 0]], np.float32)

    def cut_lines(self, image: np.ndarray, found: np.ndarray) -> list[np.ndarray]:
        side = int(found[0, 4]) or None
        self.sides.append(side)
        return self.first if side is None else self.second

    def line_crops(self, image: np.ndarray, max_side: int | None = None) -> list[np.ndarray]:
        return self.cut_lines(image, self.lines(image, max_side))


class _ByValue:
    """A member that reads a crop by its top-left pixel value: value -> (text, confidence)."""

    name = "v"

    def __init__(self, reads: dict[int, tuple[str, float]]) -> None:
        self.reads = reads

    def read_member(self, image: np.ndarray, rows: tuple[int, int] | None) -> list[MemberRead]:
        text, confidence = self.reads.get(int(image[0, 0, 0]), ("", 0.0))
        return [MemberRead(_read(text, confidence, (confidence,) * len(text), self.name))]


def _tile(value: int) -> np.ndarray:
    return np.full((20, 80, 3), value, np.uint8)


@pytest.mark.parametrize(
    ("first", "second", "expected", "looks"),
    [
        ([1], [2], "ABC123", [None]),  # sure at the first look: no second look
        ([3], [2], "XYZ789", [None, 256]),  # unsure: the surer second look wins
        ([], [2], "XYZ789", [None, 256]),  # no line at the first look
        ([3], [4], "LMN456", [None, 256]),  # the second look is less sure: the first stays
    ],
)
def test_an_unsure_whole_plate_crop_gets_a_second_look_at_another_scale(
    first: list[int], second: list[int], expected: str, looks: list[int | None]
) -> None:
    reads = {1: ("ABC123", 0.99), 2: ("XYZ789", 0.97), 3: ("LMN456", 0.6), 4: ("QRS321", 0.5)}
    finder = _TwoScales([_tile(v) for v in first], [_tile(v) for v in second])
    engine = PlateOCR([_ByValue(reads)], finder, line_crop=True)  # type: ignore[arg-type]
    assert engine.read([_tile(9)])[0].text == expected
    assert finder.sides == looks
    once = _TwoScales([_tile(3)], [_tile(2)], second_side=None)
    assert PlateOCR([_ByValue(reads)], once, line_crop=True).read([_tile(9)])[0].text == "LMN456"  # type: ignore[arg-type]
    assert once.sides == [None]


@pytest.mark.parametrize(
    ("crop", "expected", "line_looks"),
    [
        (1, "ABC123", []),  # sure in the band: no look at the line
        (3, "XYZ789", [None]),  # unsure in the band: the line, surer, wins
        (4, "QRS321", [None, 256]),  # the line is read less surely (both of its looks): the band's read stays
    ],
)
def test_an_unsure_tight_crop_is_also_read_cut_to_its_line(
    crop: int, expected: str, line_looks: list[int | None]
) -> None:
    reads = {1: ("ABC123", 0.999), 2: ("XYZ789", 0.97), 3: ("LMN456", 0.6), 4: ("QRS321", 0.5), 5: ("KLM987", 0.4)}
    finder = _TwoScales([_tile(2 if crop == 3 else 5)], [_tile(5)])
    engine = PlateOCR([_ByValue(reads)], finder)  # type: ignore[arg-type]
    assert engine.read([_tile(crop)])[0].text == expected
    assert finder.sides == line_looks


def test_the_line_finder_looks_at_another_scale(plates: list[tuple[np.ndarray, str]]) -> None:
    crop = _on_car(plates[0][0], 0)
    finder = PlateLineFinder()
    assert finder.second_side == SECOND_LOOK_SIDE != 320
    at_320, at_second = finder.line_crops(crop), finder.line_crops(crop, finder.second_side)
    assert at_320 and at_second  # the plate line is found at both scales, cut from the crop's own pixels
    assert abs(at_320[0].shape[0] - at_second[0].shape[0]) <= 0.25 * at_320[0].shape[0]


def test_what_reads_like_a_serial() -> None:
    assert all(map(looks_like_serial, ["ABC123", "FHT65W", "4XEK968", "ABC"]))
    assert not any(map(looks_like_serial, ["17", "NEWYORK", "FLORIDA", "MYFLOR", "FIRSTINFLIGHT", "TOYOTA", ""]))


def test_behind_a_whole_plate_detector_both_readers_skip_a_sticker_taller_than_the_serial() -> None:
    crop = np.full((150, 320, 3), 235, np.uint8)
    cv2.putText(crop, "17", (20, 70), cv2.FONT_HERSHEY_SIMPLEX, 2.2, (30, 30, 30), 4)  # the tallest line
    cv2.putText(crop, "KDX 492", (110, 110), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (30, 30, 30), 3)
    # read whole, the crop gives the sticker's text (the bundled v11 also picks up a character of the serial)
    assert make_engine("crnn", None, Settings(), whole_plates=False).read([crop])[0].text.startswith("17")
    for engine in ("crnn", "plateocr"):
        assert make_engine(engine, None, Settings(), whole_plates=True).read([crop])[0].text == "KDX492", engine


def test_a_small_whole_plate_crop_is_enlarged_before_it_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whole-plate crops 36 and 42 px tall (a plate about 30 px wide in the frame) read better enlarged,
    bicubic, than read at their own pixels, by PlateOCR and by the CRNN alone; a crop already tall enough
    is left as it is."""
    tall = np.zeros((SMALL_CROP_HEIGHT, 90, 3), np.uint8)
    assert enlarged(tall) is tall and enlarged(tall[:24]).shape == (ENLARGED_HEIGHT, 300, 3)
    samples = [synth_sample(7, i, camera=False) for i in range(16)]
    small = []
    for height in (36, 42):
        for i, sample in enumerate(samples):
            crop = _on_car(sample.image, i)
            scale = height / crop.shape[0]
            small.append(cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA))
    truths = [s.text for s in samples] * 2
    cut = build_plate_ocr(Settings().ocr.plateocr_members, BUNDLED_MODEL, line_crop=True)
    crnn = make_engine("crnn", None, Settings(), whole_plates=True)
    read_enlarged = _right(cut.read(small), truths)
    crnn_enlarged = _right(crnn.read(small), truths)
    monkeypatch.setattr("platepilot.ocr.lines.SMALL_CROP_HEIGHT", 0)
    read_plain = _right(cut.read(small), truths)
    assert read_enlarged > read_plain and read_enlarged >= 0.85 * len(small), (read_enlarged, read_plain)
    assert crnn_enlarged > _right(crnn.read(small), truths), crnn_enlarged


@pytest.mark.slow
def test_a_huge_photo_of_a_plate_reads_as_the_plate_does(
    ensemble: PlateOCR, plates: list[tuple[np.ndarray, str]]
) -> None:
    """A 4,400 px wide photo was deblurred whole by PP-OCRv6's member: 13.7 s and 1.85 GB. It is read scaled
    down, as a plate of an ordinary size is read."""
    import cv2

    for image, _ in plates[:3]:
        blurred = cv2.blur(image, (1, 5))  # soft, so that the members deblur it
        huge = cv2.resize(blurred, None, fx=4400 / image.shape[1], fy=4400 / image.shape[1])
        assert ensemble.read([huge])[0].text == ensemble.read([blurred])[0].text
