"""Plate formats and the charset: real plates match, sign text does not, sampled texts match their format."""

from __future__ import annotations

import numpy as np
import pytest

from platepilot.plates.charset import CHARSET, fold, is_valid_text, normalize
from platepilot.plates.formats import (
    FORMATS,
    FORMATS_BY_NAME,
    PlateFormat,
    fits_some_state,
    format_variants,
    is_caption,
    is_plausible_plate,
    is_vehicle_make,
    looks_like_serial,
    match_format,
    matching_formats,
)
from platepilot.plates.states import format_regions

FLORIDA_PLATES = ["7164HF", "W772UQ", "I404MY", "615KPI", "H507VU", "707YCC", "981XXH", "N788BY"]
OUT_OF_STATE_PLATES = ["4YTD483", "ABC1234", "1AB2345"]
SIGNS = ["RESERVED", "EXIT", "PARKING", "SUITE", ""]


@pytest.mark.parametrize("text", FLORIDA_PLATES)
def test_real_florida_plates_match_a_florida_format(text: str) -> None:
    assert matching_formats(text, regions=("us-fl",))
    assert match_format(text) is not None
    assert FORMATS_BY_NAME[str(match_format(text))].region == "us-fl"


@pytest.mark.parametrize("text", OUT_OF_STATE_PLATES)
def test_out_of_state_plates_match_something(text: str) -> None:
    assert is_plausible_plate(text)


def test_california_shape_is_named() -> None:
    assert [f.name for f in matching_formats("4YTD483")] == ["us-1abc234"]


@pytest.mark.parametrize("text", SIGNS)
def test_sign_text_matches_nothing(text: str) -> None:
    assert matching_formats(text) == []
    assert match_format(text) is None
    assert not is_plausible_plate(text)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("abc-d12 ", "ABCD12"),
        ("ABC D12", "ABCD12"),
        (" w7.72·uq ", "W772UQ"),
        ("FL*123?", "FL123"),
        ("", ""),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize(("text", "expected"), [("O1I0", "0110"), ("I404MY", "1404MY"), ("ABC", "ABC")])
def test_fold(text: str, expected: str) -> None:
    assert fold(text) == expected


@pytest.mark.parametrize(
    ("text", "valid"),
    [("ABC123", True), ("", False), ("abc123", False), ("AB-12", False), ("ÄB1", False), ("AB 12", False)],
)
def test_is_valid_text(text: str, valid: bool) -> None:
    assert is_valid_text(text) is valid


def test_charset_is_digits_then_letters() -> None:
    assert CHARSET == "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def test_format_names_are_unique() -> None:
    assert len(FORMATS_BY_NAME) == len(FORMATS)


@pytest.mark.parametrize("plate_format", FORMATS, ids=lambda f: f.name)
def test_sampled_texts_match_their_format(plate_format: PlateFormat) -> None:
    rng = np.random.default_rng(1234)
    for _ in range(50):
        text = plate_format.sample(rng)
        assert plate_format.matches(text), text
        assert len(text) == sum(plate_format.groups)
        assert is_valid_text(text)
        assert plate_format in matching_formats(text, (plate_format.region,))


def test_a_states_own_formats_apply_only_to_its_plates() -> None:
    # California's commercial plates (#@#####): no default format, so an unknown plate's prior ignores them
    assert matching_formats("6F55687") == []
    assert [f.name for f in matching_formats("6F55687", format_regions("CA"))] == ["ca-#@#####"]
    assert matching_formats("6F55687", format_regions("FL")) == []
    assert match_format("6F55687") == "us-generic"
    # loose state formats (Delaware's ###) stay out of the default set
    assert matching_formats("123") == [] and matching_formats("123", format_regions("DE"))


@pytest.mark.parametrize(
    ("text", "caption"),
    [
        ("MYFLOR", True),
        ("FLORIDA", True),
        ("SUNSHINE", True),
        ("GODWE", True),
        ("FLA", False),
        ("MYFL0R", False),
        ("ABC123", False),
        ("JOHNNY", False),
        ("MYFLORT", True),
        ("FLORIDX", True),
        ("FLRX", False),
        ("MYFLAXYZ", False),
    ],
)
def test_caption_runs_are_told_from_plates(text: str, caption: bool) -> None:
    assert is_caption(text) is caption


@pytest.mark.parametrize(
    ("text", "make"),
    [("TOYOTA", True), ("TOVOTA", True), ("KIA", True), ("KIB", False), ("HONDA", True), ("HOND4", False),
     ("T0YOTA", False), ("ABC123", False)],
)  # fmt: skip
def test_vehicle_makes_are_not_serials(text: str, make: bool) -> None:
    # a badge or a dealer frame's make; from six letters on, one misread letter (short vanity plates stay)
    assert is_vehicle_make(text) is make
    assert looks_like_serial(text) is not make


def test_a_text_no_state_issues_has_format_variants_one_character_away() -> None:
    # a blurred California 4 read as L: no US plate starts with four letters
    assert not fits_some_state("LRAR512") and fits_some_state("4RAR512") and fits_some_state("5N30048")
    assert fits_some_state("3U0A792") and not fits_some_state("5A0G2Q0")  # O and 0 are one glyph; Q is not
    variants = format_variants("LRAR512")
    assert "4RAR512" in variants and "LRA1512" in variants  # #@@@### and @@@####
    assert all(matching_formats(v) and sum(a != b for a, b in zip(v, "LRAR512", strict=True)) == 1 for v in variants)
    assert format_variants("ONEOFME") == []  # a personalised plate is several characters from any format
    assert "4VAH764" in format_variants("LVAH764", ("us-ca",))
    assert "4VAH764" not in format_variants("LVAH764", ("us-fl",))
