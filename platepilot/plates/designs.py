"""Plate designs: what a plate looks like before a camera sees it, sampled from a seeded generator.

What was matched (public photos and descriptions, FLORIDA.md):
- Florida standard (since 2003): white field fading to a pale orange/green tint, six dark green
  characters in two groups of three, an orange-blossom graphic (two oranges, leaves) between the groups
  that is not a character, "MyFlorida.com" on top and "Sunshine State" or a county name below.
- Florida legacy (1991-2002): same layout, "FLORIDA" in bold green capitals on top, the orange graphic.
- Florida specialty plates: a full-width coloured picture, dark characters, a shorter serial, the
  design's name below; about 12% of Florida vehicles (FLORIDA.md).
- Dealer/temporary tags: paper printed in black, "TEMPORARY" and an expiry line, a wider serial.
- Out-of-state: light or dark fields, blue/black/red/white characters, a state name on top (often in a
  script or serif face), a slogan below, a dash, dot or emblem between groups, stickers in the corners.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from platepilot.plates.fonts import CAPTION_FACES, PLATE_FACES, FontFace
from platepilot.plates.formats import FORMATS, PlateFormat, PlateKind
from platepilot.plates.states import FLORIDA, state_code

Color = tuple[int, int, int]  # BGR


class Family(StrEnum):
    FL_STANDARD = "fl_standard"
    FL_LEGACY = "fl_legacy"
    FL_SPECIALTY = "fl_specialty"
    TEMPORARY = "temporary"
    OUT_OF_STATE = "out_of_state"


class Separator(StrEnum):
    NONE = "none"
    ORANGE = "orange"
    DASH = "dash"
    DOT = "dot"
    EMBLEM = "emblem"


@dataclass(frozen=True)
class PlateDesign:
    """Everything the renderer needs; `groups` splits `text` into the groups printed apart."""

    family: Family
    text: str
    groups: tuple[int, ...]
    face: FontFace
    caption_face: FontFace
    background: Color
    background_2: Color
    ink: Color
    caption_ink: Color
    top_text: str
    bottom_text: str
    separator: Separator
    squeeze: float
    char_height: float
    emboss: bool
    border: bool
    stickers: int
    bolts: bool
    frame: bool
    blobs: int
    stroke_glyphs: int  # 0: the font's own 4 and W; 1-3: a California-style stroke variant (render.py)
    decoys: int
    artwork: bool

    @property
    def state(self) -> str:
        """The issuing state's postal code: FL for Florida's families, else the state name it prints."""
        return state_code(self.top_text) if self.family is Family.OUT_OF_STATE else FLORIDA


FAMILY_WEIGHTS: dict[Family, float] = {
    Family.FL_STANDARD: 0.34,
    Family.FL_LEGACY: 0.08,
    Family.FL_SPECIALTY: 0.12,
    Family.TEMPORARY: 0.06,
    Family.OUT_OF_STATE: 0.40,
}
FL_GREEN: Color = (50, 90, 10)
STATES = (
    "GEORGIA",
    "Ohio",
    "Tennessee",
    "NEW YORK",
    "Michigan",
    "Pennsylvania",
    "Louisiana",
    "ALABAMA",
    "North Carolina",
    "TEXAS",
    "California",
    "Virginia",
    "Illinois",
    "New Jersey",
    "Indiana",
    "Kentucky",
    "South Carolina",
    "Maryland",
    "Massachusetts",
    "Arizona",
    "Colorado",
    "Minnesota",
    "Wisconsin",
)
SLOGANS = (
    "Sunshine State",
    "In God We Trust",
    "Peach State",
    "Empire State",
    "Volunteer State",
    "Land of Lincoln",
    "First in Flight",
    "Garden State",
    "Lone Star State",
    "dmv.ca.gov",
    "Pure Michigan",
    "Birthplace of Aviation",
    "Sweet Home Alabama",
    "visitPA.com",
    "Sportsman's Paradise",
    "",
)
COUNTIES = (
    "Miami-Dade",
    "Broward",
    "Palm Beach",
    "Hillsborough",
    "Orange",
    "Pinellas",
    "Duval",
    "Lee",
    "Polk",
    "Brevard",
    "Volusia",
    "Pasco",
    "Seminole",
    "Sarasota",
    "Manatee",
    "Collier",
    "Marion",
    "Lake",
    "Osceola",
    "Escambia",
    "St. Lucie",
    "Leon",
    "Alachua",
    "Okaloosa",
    "Monroe",
)
SPECIALTY_NAMES = (
    "Save the Manatee",
    "Protect the Panther",
    "Sea Turtle",
    "Florida State",
    "University of Florida",
    "Miami Dolphins",
    "Tampa Bay Rays",
    "Endless Summer",
    "Choose Life",
    "Support Education",
    "Florida Everglades",
    "Go Fishing",
    "Share the Road",
    "Salt Life",
    "Agriculture",
)
DARK_INKS: tuple[Color, ...] = ((20, 20, 20), (110, 40, 20), (140, 50, 10), (30, 30, 140), (60, 20, 40))


def sample_design(rng: np.random.Generator) -> PlateDesign:
    """A random plate design with its text; every random choice comes from `rng`."""
    families = list(FAMILY_WEIGHTS)
    probs = np.array([FAMILY_WEIGHTS[f] for f in families])
    family = families[int(rng.choice(len(families), p=probs / probs.sum()))]
    fmt = _sample_format(family, rng)
    text = fmt.sample(rng) if fmt else _personalized_text(rng)
    groups = fmt.groups if fmt else _split_groups(len(text), rng)
    base = dict(
        text=text,
        groups=groups,
        face=PLATE_FACES[int(rng.integers(len(PLATE_FACES)))],
        caption_face=CAPTION_FACES[int(rng.integers(len(CAPTION_FACES)))],
        squeeze=float(rng.uniform(0.72, 1.08)),
        char_height=float(rng.uniform(0.40, 0.56)),
        emboss=bool(rng.random() < 0.6),
        border=bool(rng.random() < 0.5),
        stickers=int(rng.integers(0, 3)),
        bolts=bool(rng.random() < 0.6),
        frame=bool(rng.random() < 0.35),
        # California-style open-top 4 and low-middle W (no free font draws them; built from strokes).
        stroke_glyphs=int(rng.integers(1, 4)) if rng.random() < 0.35 else 0,
        # Small characters beside the serial (stacked letters, month stickers) that are not part of it.
        decoys=int(rng.integers(1, 4)) if rng.random() < 0.3 else 0,
        # Pictorial art beside the serial (seals, animals, flags), as on many states' plates.
        artwork=bool(rng.random() < 0.3),
    )
    return _FAMILY_STYLE[family](rng, base)


def _sample_format(family: Family, rng: np.random.Generator) -> PlateFormat | None:
    if rng.random() < 0.08:  # personalised plates in every family
        return None
    if family in (Family.FL_STANDARD, Family.FL_LEGACY):
        pool = [f for f in FORMATS if f.region == "us-fl" and f.kind is PlateKind.STANDARD]
    elif family is Family.FL_SPECIALTY:
        pool = [f for f in FORMATS if f.region == "us-fl" and f.kind is not PlateKind.TEMPORARY]
    elif family is Family.TEMPORARY:
        pool = [f for f in FORMATS if f.kind in (PlateKind.TEMPORARY, PlateKind.DEALER)]
    else:
        pool = [f for f in FORMATS if f.region == "us"]
    return pool[int(rng.integers(len(pool)))]


def _personalized_text(rng: np.random.Generator) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    n = int(rng.integers(2, 8))
    return "".join(alphabet[int(i)] for i in rng.integers(0, len(alphabet), n))


def _split_groups(n: int, rng: np.random.Generator) -> tuple[int, ...]:
    if n < 4 or rng.random() < 0.4:
        return (n,)
    cut = int(rng.integers(2, n - 1))
    return (cut, n - cut)


def _jitter(color: Color, rng: np.random.Generator, amount: int = 25) -> Color:
    c = np.clip(np.array(color) + rng.integers(-amount, amount + 1, 3), 0, 255)
    return (int(c[0]), int(c[1]), int(c[2]))


def _light(rng: np.random.Generator) -> Color:
    return _jitter((235, 235, 235), rng, 20)


def _fl_standard(rng: np.random.Generator, base: dict) -> PlateDesign:
    bottom = COUNTIES[int(rng.integers(len(COUNTIES)))] if rng.random() < 0.5 else "Sunshine State"
    if rng.random() < 0.2:
        bottom = "In God We Trust"
    top = "MyFlorida.com"
    if rng.random() < 0.7:  # current plates print both lines in bold capitals
        top, bottom = top.upper(), bottom.upper()
    return PlateDesign(
        family=Family.FL_STANDARD, background=_light(rng), background_2=_jitter((200, 225, 245), rng),
        ink=_jitter(FL_GREEN, rng, 20), caption_ink=_jitter(FL_GREEN, rng, 20), top_text=top,
        bottom_text=bottom, separator=Separator.ORANGE, blobs=0, **base,
    )  # fmt: skip


def _fl_legacy(rng: np.random.Generator, base: dict) -> PlateDesign:
    return PlateDesign(
        family=Family.FL_LEGACY, background=_light(rng), background_2=_light(rng),
        ink=_jitter(FL_GREEN, rng, 20), caption_ink=_jitter(FL_GREEN, rng, 20), top_text="FLORIDA",
        bottom_text=COUNTIES[int(rng.integers(len(COUNTIES)))] if rng.random() < 0.6 else "Sunshine State",
        separator=Separator.ORANGE, blobs=0, **base,
    )  # fmt: skip


def _fl_specialty(rng: np.random.Generator, base: dict) -> PlateDesign:
    return PlateDesign(
        family=Family.FL_SPECIALTY, background=_light(rng),
        background_2=_jitter(tuple(int(v) for v in rng.integers(60, 255, 3)), rng),  # type: ignore[arg-type]
        ink=DARK_INKS[int(rng.integers(len(DARK_INKS)))], caption_ink=DARK_INKS[int(rng.integers(5))],
        top_text="Florida" if rng.random() < 0.7 else "MyFlorida.com",
        bottom_text=SPECIALTY_NAMES[int(rng.integers(len(SPECIALTY_NAMES)))],
        separator=Separator.EMBLEM if rng.random() < 0.5 else Separator.NONE, blobs=int(rng.integers(2, 6)),
        **base,
    )  # fmt: skip


def _temporary(rng: np.random.Generator, base: dict) -> PlateDesign:
    base = {**base, "border": True, "emboss": False, "bolts": False, "stickers": 0}
    return PlateDesign(
        family=Family.TEMPORARY, background=_jitter((235, 240, 240), rng, 15),
        background_2=_jitter((215, 225, 230), rng, 15), ink=_jitter((25, 25, 25), rng, 15),
        caption_ink=_jitter((25, 25, 25), rng, 15), top_text="FLORIDA  TEMPORARY",
        bottom_text=f"EXPIRES {int(rng.integers(1, 13)):02d}/{int(rng.integers(1, 29)):02d}/2026",
        separator=Separator.NONE, blobs=0, **base,
    )  # fmt: skip


def _out_of_state(rng: np.random.Generator, base: dict) -> PlateDesign:
    dark_field = rng.random() < 0.15
    if dark_field:
        background = _jitter((90, 40, 10), rng, 30) if rng.random() < 0.6 else _jitter((30, 30, 30), rng, 20)
        ink = _jitter((235, 235, 235), rng, 15) if rng.random() < 0.7 else _jitter((40, 200, 240), rng, 20)
    else:
        background = _light(rng) if rng.random() < 0.85 else _jitter((190, 225, 240), rng, 25)
        ink = DARK_INKS[int(rng.integers(len(DARK_INKS)))]
    caption = _jitter((40, 40, 200), rng, 30) if rng.random() < 0.4 else DARK_INKS[int(rng.integers(5))]
    separators = (Separator.NONE, Separator.DASH, Separator.DOT, Separator.EMBLEM)
    return PlateDesign(
        family=Family.OUT_OF_STATE, background=background,
        background_2=_jitter(background, rng, 40), ink=_jitter(ink, rng, 10), caption_ink=caption,
        top_text=STATES[int(rng.integers(len(STATES)))], bottom_text=SLOGANS[int(rng.integers(len(SLOGANS)))],
        separator=separators[int(rng.integers(len(separators)))], blobs=int(rng.integers(0, 3)), **base,
    )  # fmt: skip


_FAMILY_STYLE = {
    Family.FL_STANDARD: _fl_standard,
    Family.FL_LEGACY: _fl_legacy,
    Family.FL_SPECIALTY: _fl_specialty,
    Family.TEMPORARY: _temporary,
    Family.OUT_OF_STATE: _out_of_state,
}
