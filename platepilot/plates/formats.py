"""Plate formats: which serial layouts exist, where each comes from, and whether a text matches one.

A pattern is written in OpenALPR's notation: `@` a letter, `#` a digit, `[A-Z]`-style classes for one
position, and a space where the plate shows a gap between character groups (Florida's orange graphic,
a dash or a state emblem). Texts are matched without the gap: `normalize("ABC D12") == "ABCD12"`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import cache, cached_property, lru_cache

import numpy as np
from rapidfuzz.distance import Hamming

from platepilot.plates.charset import DIGITS, LETTERS, fold
from platepilot.plates.states import is_state_name


class PlateKind(StrEnum):
    STANDARD = "standard"
    SPECIALTY = "specialty"
    PERSONALIZED = "personalized"
    DEALER = "dealer"
    TEMPORARY = "temporary"


@dataclass(frozen=True)
class PlateFormat:
    """One serial layout: `name` is unique, `region` an ISO-like code (us-fl, us), `source` cites it."""

    name: str
    pattern: str
    region: str
    kind: PlateKind
    source: str

    @cached_property
    def regex(self) -> re.Pattern[str]:
        return re.compile("^" + "".join(_regex_token(tok) for tok in _tokens(self.pattern)) + "$")

    @property
    def groups(self) -> tuple[int, ...]:
        """Character counts of the groups the plate prints apart, e.g. (3, 3) for `@@@ ###`."""
        return tuple(len(_tokens(group)) for group in self.pattern.split(" "))

    def matches(self, text: str) -> bool:
        return self.regex.match(text) is not None

    @cached_property
    def position_chars(self) -> tuple[str, ...]:
        """The characters each position allows, e.g. ("A..Z", "0..9") for `@#`."""
        return tuple(_token_chars(tok) for tok in _tokens(self.pattern))

    @cached_property
    def folded_position_chars(self) -> tuple[frozenset[str], ...]:
        """`position_chars` with O read as 0 and I as 1 (`fold`)."""
        return tuple(frozenset(fold(chars)) for chars in self.position_chars)

    def sample(self, rng: np.random.Generator) -> str:
        """A random text of this format (no gaps), drawn uniformly per position."""
        return "".join(chars[int(rng.integers(len(chars)))] for chars in self.position_chars)


def _tokens(pattern: str) -> list[str]:
    """Split a pattern into one token per character position (spaces dropped)."""
    return re.findall(r"\[[^\]]+\]|[@#*A-Z0-9]", pattern)


def _token_chars(token: str) -> str:
    if token == "@":
        return LETTERS
    if token == "#":
        return DIGITS
    if token == "*":
        return DIGITS + LETTERS
    if token.startswith("["):
        body = token[1:-1]
        chars = ""
        for a, b in re.findall(r"(\w)(?:-(\w))?", body):
            chars += "".join(chr(c) for c in range(ord(a), ord(b or a) + 1))
        return chars
    return token


def _regex_token(token: str) -> str:
    return "[" + re.escape(_token_chars(token)) + "]"


_WIKI_FL = "Wikipedia, 'Vehicle registration plates of Florida' (serial formats, era not stated)"
_OPENALPR = "openalpr runtime_data/postprocess/us.patterns (fl)"
_OPENALPR_US = "openalpr runtime_data/postprocess/us.patterns (us catch-alls)"
_FLORIDA_MD = "shared/FLORIDA.md, 'Common other-state shapes'"
_ASSUMED = "assumed layout: no published serial format found (FLORIDA.md); keep loose"

_DEFAULT_FORMATS: tuple[PlateFormat, ...] = (
    # Florida passenger plates, current and legacy (six characters in two groups around the graphic).
    PlateFormat("fl-abc-d12", "@@@ @##", "us-fl", PlateKind.STANDARD, _WIKI_FL + "; " + _OPENALPR),
    PlateFormat("fl-a12-3bc", "@## #@@", "us-fl", PlateKind.STANDARD, _WIKI_FL),
    PlateFormat("fl-12a-bcd", "##@ @@@", "us-fl", PlateKind.STANDARD, _WIKI_FL),
    PlateFormat("fl-123-4ab", "### #@@", "us-fl", PlateKind.STANDARD, _WIKI_FL),
    PlateFormat("fl-ab1-2cd", "@@# #@@", "us-fl", PlateKind.STANDARD, _WIKI_FL),
    PlateFormat("fl-a12-34b", "@## ##@", "us-fl", PlateKind.STANDARD, _WIKI_FL),
    PlateFormat("fl-abc-123", "@@@ ###", "us-fl", PlateKind.STANDARD, _WIKI_FL),
    PlateFormat("fl-1234-gh", "#### [GH]@", "us-fl", PlateKind.STANDARD, _OPENALPR),
    PlateFormat("fl-123-hyy", "### [H-Y]@@", "us-fl", PlateKind.STANDARD, _OPENALPR),
    PlateFormat("fl-a123-bc", "@### @@", "us-fl", PlateKind.STANDARD, _OPENALPR),
    PlateFormat("fl-a12-bcd", "@## @@@", "us-fl", PlateKind.STANDARD, _OPENALPR),
    # Florida specialty plates carry shorter serials beside the design's artwork.
    PlateFormat("fl-specialty-1234a", "#### @", "us-fl", PlateKind.SPECIALTY, _ASSUMED),
    PlateFormat("fl-specialty-a1234", "@ ####", "us-fl", PlateKind.SPECIALTY, _ASSUMED),
    PlateFormat("fl-specialty-12ab", "## @@", "us-fl", PlateKind.SPECIALTY, _ASSUMED),
    # Dealer and temporary (paper) tags.
    PlateFormat("fl-dealer", "@@@ ####", "us-fl", PlateKind.DEALER, _ASSUMED),
    PlateFormat("fl-temporary", "@######", "us-fl", PlateKind.TEMPORARY, _ASSUMED),
    PlateFormat("fl-temporary-digits", "########", "us-fl", PlateKind.TEMPORARY, _ASSUMED),
    # Common out-of-state shapes seen on Florida roads.
    PlateFormat("us-abc-1234", "@@@ ####", "us", PlateKind.STANDARD, _FLORIDA_MD + " (GA, NY, OH, PA, TX, ...)"),
    PlateFormat("us-1abc234", "#@@@###", "us", PlateKind.STANDARD, _FLORIDA_MD + " (CA)"),
    PlateFormat("us-1234abc", "#### @@@", "us", PlateKind.STANDARD, _FLORIDA_MD + " (KS)"),
    PlateFormat("us-ab-12345", "@@ #####", "us", PlateKind.STANDARD, _FLORIDA_MD + " (CT, IL)"),
    PlateFormat("us-1ab2345", "#@@####", "us", PlateKind.STANDARD, _FLORIDA_MD + " (MD)"),
    PlateFormat("us-abc12d", "@@@ ##@", "us", PlateKind.STANDARD, _FLORIDA_MD + " (AR)"),
    PlateFormat("us-a12bcd", "@## @@@", "us", PlateKind.STANDARD, _FLORIDA_MD + " (NJ)"),
    PlateFormat("us-abc-123", "@@@ ###", "us", PlateKind.STANDARD, _OPENALPR_US),
    PlateFormat("us-123-abc", "### @@@", "us", PlateKind.STANDARD, _OPENALPR_US),
)

# Other states' own serial layouts, from OpenALPR's per-state list (Florida's are above, curated; its
# patterns with a `?` wildcard are left out). They apply only to a plate whose state is known
# (`plates.states.format_regions`): many are loose (Delaware's `###`), so they are not in the default set.
_OPENALPR_STATES = "openalpr runtime_data/postprocess/us.patterns (per state)"
_STATE_PATTERNS = """
al #@##@## ##@##@# @@##### #####@@ #@####@ ##@###@ ##@#@#@
ak @@@###
as ####
az @@@#### ###@@@
ar ###@@@ @@@###
ca #@@@### #@##### #####@# ###@@@
co ###@@@ @@#### @@@### @@@####
ct #@@@@# ###@@@ ##### ###### @### @@### @@####
de ###### ##### #### ###
dc @@#### ######
ga @@@#### ####@@@ ####@@ #####[Q]@ ###@@@
gu @@#### @@@#### @@@###@
hi [A-HJKNMPR-Z]@@###
id @###### #@##### #@@#### #@@@### [A]#####[T] [A]@####[T] #[A]####[T] #[A]@###[T] [BU]####
id ####[BEFGHIJKLMNPRSTUXYZ] ##[S][A][S] #@@#[S] [J]@### #####[BCS] ###@[E] ##@@[E] #####
il @###### ##### ###### @@#### @@@### @##### ####### ####@ #####@
in ###@ ###@@ ###@@@ ####
ia @@@### ###@@@ ####@@
ks ###@@@ @@@###
ky ###@@@
la @@@###
me ####@@ ###@@ ##@@ ###@@@
ms @@@@@# @@@### ##[W]##
md #@@@## #[AB]#### @@@### ###[AB][A-N][A-MY] [AB][A-E][A-Y]##@ #####[ABCY] @#####
ma ###@@# #@@### #@@@## ###### ###@@@ ####@@ ##@@##
mi @@@#### #@@@##
mn ###@@@ @@@###
mo @@#@#@ ###@@@ #@@##@
mt ######[A] #####@ ####@
ne #@#### #@@### ##@### ##@@##
nv ###@@@ @##### @@#### @@@###
nh ###### ####### @@@###
nj @##@@@ @@@##@ @@###@ @@@####
nm @@@### ###@@@ @@### @###
ny @@@#### @@@### #@@### @#@### @###@@ @@###@
nc @@@####
nd @@@###
mp @@@###
oh @@@#### @@##@@
ok ###@@@
or ###@@@ @@@###
pa @@@####
pr @@@###
ri @@### ###### #####
sc @@@### ####@@
sd #@@### ##@### ##@@## ##@@@#
tn ###@@@
tx @@@#### @##@@@ ###@@@ @@@### @@#@###
ut @###@@ ###@# ###@@@ @@@###
vt @@@### ###@### ##[B]##
vi @@@###
va @@@#### [J-Z]@@#### @@@### @@#### ####@@ #####[JY]
wa ###@@@ @@@####
wv [1-9DON]@@### [1-9DON]@####
wy ###### ####### ##### ####@ ###@@ ##@@@
"""


def _state_formats(table: str) -> tuple[PlateFormat, ...]:
    """One format per (state, pattern) line entry of `table`, named `xx-<pattern>` (`ca-#@#####`)."""
    formats: dict[str, PlateFormat] = {}
    for line in table.split("\n"):
        if line.strip():
            state, *patterns = line.split()
            for pattern in patterns:
                name = f"{state}-{pattern}"
                formats[name] = PlateFormat(name, pattern, f"us-{state}", PlateKind.STANDARD, _OPENALPR_STATES)
    return tuple(formats.values())


DEFAULT_REGIONS = ("us-fl", "us")
"""The formats that apply to a plate of unknown state: Florida's and the common out-of-state shapes."""

FORMATS: tuple[PlateFormat, ...] = _DEFAULT_FORMATS + _state_formats(_STATE_PATTERNS)
FORMATS_BY_NAME: dict[str, PlateFormat] = {f.name: f for f in FORMATS}

# FLORIDA.md: personalised plates hold 2-7 characters; the generic US rule allows up to 8, and no US
# plate holds more (a longer read is a caption or a sign: MYFLORIDACOM). The runtime's floor for short
# reads (fragments of badges and tail lights) is a setting, `ocr.min_plate_chars`.
PERSONALIZED_MAX = 7
MAX_PLATE_CHARS = 8
GENERIC_US = re.compile(rf"^(?=.*\d)[A-Z0-9]{{1,{MAX_PLATE_CHARS}}}$")


def matching_formats(text: str, regions: tuple[str, ...] | None = None) -> list[PlateFormat]:
    """Every named format of `regions` (`DEFAULT_REGIONS` for None) that `text` (normalised) matches,
    Florida first."""
    return list(_matching_formats(text, regions))


@lru_cache(maxsize=1 << 14)
def _matching_formats(text: str, regions: tuple[str, ...] | None) -> tuple[PlateFormat, ...]:
    """Cached: a reader asks of every candidate text of every crop, a vote of the same texts again, and
    each ask tries every state's format (a twentieth of the CRNN's decoding time before the cache)."""
    return tuple(f for f in region_formats(regions) if f.matches(text))


@cache
def region_formats(regions: tuple[str, ...] | None = None) -> tuple[PlateFormat, ...]:
    """The named formats of `regions` (`DEFAULT_REGIONS` for None: a plate of unknown state), Florida first.
    Cached: every read's format prior asks, and FORMATS holds every state's."""
    return tuple(f for f in FORMATS if f.region in (regions or DEFAULT_REGIONS))


def _folded_alternatives(formats: tuple[PlateFormat, ...]) -> re.Pattern[str]:
    """One regex for every format's layout, O/I folded to 0/1: a single match instead of one per format."""
    layouts = {"".join(f"[{re.escape(''.join(sorted(chars)))}]" for chars in f.folded_position_chars) for f in formats}
    return re.compile("^(?:" + "|".join(sorted(layouts)) + ")$")


_ANY_FORMAT_FOLDED = _folded_alternatives(FORMATS)


def fits_some_state(text: str) -> bool:
    """Whether `text` fits a named format of any region (Florida's, the common US shapes or any state's own,
    such as California's commercial `#@#####`), O and 0, I and 1 read as one character (`fold`: many
    plates print them alike, so `3U0A792` is California's `3UOA792`). A text that fits none cannot be a
    standard plate anywhere."""
    return _ANY_FORMAT_FOLDED.match(fold(text)) is not None


def format_variants(text: str, regions: tuple[str, ...] | None = None) -> list[str]:
    """Every text one character from `text` that fits a named format of `regions` (`DEFAULT_REGIONS` for
    None) where `text` breaks it at that one position: `4RAR512`, `8RAR512`, ... for `LRAR512` (`#@@@###`).
    The readers score them; which one, if any, is likely is theirs to say."""
    variants: dict[str, None] = {}
    for plate_format in region_formats(regions):
        allowed = plate_format.position_chars
        if len(allowed) != len(text):
            continue
        wrong = [i for i, (char, chars) in enumerate(zip(text, allowed, strict=True)) if char not in chars]
        if len(wrong) == 1:
            i = wrong[0]
            variants.update((text[:i] + char + text[i + 1 :], None) for char in allowed[i])
    return list(variants)


def match_format(text: str, regions: tuple[str, ...] | None = None) -> str | None:
    """The name of the first format of `regions` (`DEFAULT_REGIONS` for None) `text` matches, else
    `us-generic`, else None.

    `us-generic` is the generic US rule: 1-8 characters with at least one digit. Texts with no digit
    (RESERVED, EXIT) match nothing, which is how sign text is told from plates.
    """
    named = matching_formats(text, regions)
    if named:
        return named[0].name
    if GENERIC_US.match(text):
        return "us-generic"
    return None


def is_plausible_plate(text: str) -> bool:
    return match_format(text) is not None


# FLORIDA.md: the top line of a Florida plate reads "MyFlorida.com", the bottom one "Sunshine State",
# "In God We Trust" or the county name. A crop that holds only a caption line reads as letters.
CAPTIONS = ("MYFLORIDACOM", "SUNSHINESTATE", "INGODWETRUST")
MIN_CAPTION_RUN = 4


CAPTION_FUZZY_RUN = 6  # runs this long may hold one misread letter (MYFLORT)


def is_caption(text: str) -> bool:
    """Whether `text` (normalised) is a run of a plate's caption line, such as MYFLOR, not a serial.

    Only digit-free runs of at least `MIN_CAPTION_RUN` letters count, so short vanity plates stay;
    from `CAPTION_FUZZY_RUN` letters on, one letter may differ."""
    if len(text) < MIN_CAPTION_RUN or not text.isalpha():
        return False
    misreads = 1 if len(text) >= CAPTION_FUZZY_RUN else 0
    return any(
        Hamming.distance(text, caption[i : i + len(text)], score_cutoff=misreads) <= misreads
        for caption in CAPTIONS
        for i in range(len(caption) - len(text) + 1)
    )


MIN_SERIAL_CHARS = 3
"""Fewer characters read from a line are taken for a fragment (a sticker's number, a badge)."""


VEHICLE_MAKES = frozenset({
    "ACURA", "AUDI", "BENTLEY", "BMW", "BUICK", "CADILLAC", "CHEVY", "CHRYSLER", "DODGE", "FERRARI", "FIAT", "FORD",
    "GENESIS", "GMC", "HONDA", "HUMMER", "HYUNDAI", "INFINITI", "ISUZU", "JAGUAR", "JEEP", "KIA", "LEXUS", "LINCOLN",
    "MASERATI", "MAZDA", "MERCEDES", "MERCURY", "MINI", "NISSAN", "PLYMOUTH", "PONTIAC", "POLESTAR", "PORSCHE", "RAM",
    "RIVIAN", "SAAB", "SATURN", "SCION", "SUBARU", "SUZUKI", "TESLA", "TOYOTA", "VOLVO",
})  # fmt: skip
"""Makes of up to eight letters (a longer text is no plate anyway) sold in the US, the discontinued ones
still on the road among them, that a dealer frame or a trunk badge beside the plate spells (`TOYOTA` made
events on real approach clips, a `PLYMOUTH` badge one on a folder of UCSD's photos); a vanity plate
spelling one is rarer than those."""


def is_vehicle_make(text: str) -> bool:
    """Whether a read (normalised) is a make in `VEHICLE_MAKES`; from `CAPTION_FUZZY_RUN` letters on,
    one letter may differ (a badge read `TOVOTA`)."""
    if text in VEHICLE_MAKES:
        return True
    if len(text) < CAPTION_FUZZY_RUN or not text.isalpha():
        return False
    return any(len(make) == len(text) and Hamming.distance(text, make, score_cutoff=1) <= 1 for make in VEHICLE_MAKES)


def is_plate_surround(text: str) -> bool:
    """Whether a read (normalised) is text around a serial, not a serial: a caption run, a state's name
    or a vehicle make."""
    return is_caption(text) or is_state_name(text) or is_vehicle_make(text)


STANDARD_MIN_CHARS = 4


def is_standard_label(text: str) -> bool:
    """Whether a label is a standard-issue serial for scoring: at least STANDARD_MIN_CHARS characters
    with a digit. Vanity words (`NTGUILTY`), placeholders (`0`, `SAMPLE`) and short fragments (`548`)
    are not; the data sets keep them, and their README asks for standard-plate accuracy beside the
    overall one. Some vanity plates carry a digit (`GR8DAY`) and count as standard here."""
    return len(text) >= STANDARD_MIN_CHARS and any(ch.isdigit() for ch in text)


def looks_like_serial(text: str) -> bool:
    """Whether a line's read (normalised) could be a plate's serial: 3-8 characters, not text around one."""
    return MIN_SERIAL_CHARS <= len(text) <= MAX_PLATE_CHARS and not is_plate_surround(text)
