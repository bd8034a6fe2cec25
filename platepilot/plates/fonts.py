"""Fonts for synthetic plates: freely licensed condensed faces installed as PyPI wheels (fontpkg-*).

US plate lettering is a condensed, monospaced, uniform-stroke sans (FLORIDA.md); no freely licensed
font matches Florida's unpublished face, so the renderer mixes several condensed faces and squeezes
them. Every face here is SIL OFL 1.1 (each wheel's metadata.json says so; `font_licences()` reads it),
which allows use and redistribution; none is copied into this repository.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import fontpkg
from PIL import ImageFont

from platepilot.errors import PlatepilotError


@dataclass(frozen=True)
class FontFace:
    """A family at one weight; `variable` faces need their weight axis set after loading."""

    family: str
    weight: int


# Plate characters: bold/semibold condensed faces closest to embossed plate lettering.
PLATE_FACES: tuple[FontFace, ...] = (
    FontFace("Barlow Condensed", 500),
    FontFace("Barlow Condensed", 600),
    FontFace("Roboto Condensed", 500),
    FontFace("Roboto Condensed", 700),
    FontFace("Oswald", 400),
    FontFace("Oswald", 500),
    FontFace("Archivo Narrow", 600),
    FontFace("PT Sans Narrow", 700),
    FontFace("Saira Condensed", 500),
    FontFace("Fira Sans Condensed", 500),
    FontFace("IBM Plex Sans Condensed", 500),
    FontFace("Overpass", 600),
    FontFace("Bebas Neue", 400),
)
# Small print: state names, slogans, counties, web addresses (a wider, lighter mix).
CAPTION_FACES: tuple[FontFace, ...] = (
    FontFace("Barlow Condensed", 700),
    FontFace("Roboto Condensed", 400),
    FontFace("Fira Sans Condensed", 400),
    FontFace("PT Sans Narrow", 400),
    FontFace("Overpass", 400),
)


@cache
def _font_path(face: FontFace) -> Path:
    try:
        return Path(fontpkg.path(face.family, weight=face.weight, nearest=True))
    except fontpkg.FontpkgError as exc:
        slug = face.family.lower().replace(" ", "-")
        raise PlatepilotError(f"font {face.family!r} is missing: pip install fontpkg-{slug}") from exc


@cache
def load_font(face: FontFace, size: int) -> ImageFont.FreeTypeFont:
    """The face at `size` pixels (cached: rendering asks for the same few sizes again and again)."""
    path = _font_path(face)
    font = ImageFont.truetype(str(path), size)
    if "[" in path.name:  # a variable font: pick the weight on its wght axis
        axes = font.get_variation_axes()
        font.set_variation_by_axes(
            [float(face.weight if bytes(a.get("name", b"")) == b"Weight" else a["default"] or 0) for a in axes]
        )
    return font


def font_licences() -> dict[str, str]:
    """Family -> licence id, read from each installed wheel's metadata (for docs and the contact sheet)."""
    out: dict[str, str] = {}
    for face in PLATE_FACES + CAPTION_FACES:
        meta = _font_path(face).parent.parent / "metadata.json"
        out[face.family] = json.loads(meta.read_text())["license"] if meta.exists() else "unknown"
    return out
