"""US states, DC and the territories: postal codes, and the spellings our data sources use for them.

The state classifier outputs a postal code (FL, GA, ...) or `UNKNOWN`. Sources spell names their own
way (`us_plates_by_state` writes HAWAI, MISSIPPI and CNMI; the plate generator writes "Ohio" or
"NEW YORK"; OpenALPR regions are `us-fl`); `state_code` turns any of them into a code or fails loudly.
"""

from __future__ import annotations

import re

UNKNOWN = "unknown"
"""What a read says when no state is confident enough (or the crop is not a plate)."""

FLORIDA = "FL"

STATE_NAMES: dict[str, str] = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "FL": "Florida", "GA": "Georgia",
    "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois", "IN": "Indiana", "IA": "Iowa", "KS": "Kansas",
    "KY": "Kentucky", "LA": "Louisiana", "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts",
    "MI": "Michigan", "MN": "Minnesota", "MS": "Mississippi", "MO": "Missouri", "MT": "Montana",
    "NE": "Nebraska", "NV": "Nevada", "NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico",
    "NY": "New York", "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma",
    "OR": "Oregon", "PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina",
    "SD": "South Dakota", "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont",
    "VA": "Virginia", "WA": "Washington", "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
    "DC": "District of Columbia", "AS": "American Samoa", "GU": "Guam", "MP": "Northern Mariana Islands",
    "PR": "Puerto Rico", "VI": "U.S. Virgin Islands",
}  # fmt: skip
"""Postal code -> name: the 50 states, DC and the five inhabited territories (56)."""

STATE_ABBREVIATIONS: dict[str, str] = {
    "ARIZ": "AZ", "CALIF": "CA", "COLO": "CO", "CONN": "CT", "KANS": "KS", "MASS": "MA", "MICH": "MI",
    "MINN": "MN", "MONT": "MT", "NEBR": "NE", "OKLA": "OK", "OREG": "OR", "PENNA": "PA", "TENN": "TN",
    "WASH": "WA",
}  # fmt: skip
"""The traditional abbreviations of four letters or more, printed on older plates (ARIZ, CONN, PENNA)."""

# Spellings of the sources that differ from STATE_NAMES (after upper-casing and collapsing
# punctuation): us_plates_by_state's MANIFEST and the usual short forms.
_ALIASES: dict[str, str] = {
    "HAWAI": "HI", "MISSIPPI": "MS", "CNMI": "MP", "WASHINGTON DC": "DC", "U S VIRGIN ISLANDS": "VI",
    "US VIRGIN ISLANDS": "VI", "VIRGIN ISLANDS": "VI", "WASHINGTON D C": "DC", "D C": "DC", "WASH DC": "DC",
    "USVI": "VI", "U S V I": "VI", "N MARIANA ISLANDS": "MP",
}  # fmt: skip
_BY_NAME: dict[str, str] = {re.sub(r"[^A-Z]+", " ", n.upper()).strip(): c for c, n in STATE_NAMES.items()}


_NAME_RUNS = frozenset(re.sub(r"[^A-Z]+", "", n.upper()) for n in STATE_NAMES.values())


def is_state_name(text: str) -> bool:
    """Whether a read (normalised: letters and digits only) is a state's name, such as NEWYORK."""
    return text in _NAME_RUNS


def state_code(name: str) -> str:
    """A postal code for a state name in any source's spelling, a postal code, or a `us-xx` region.

    ValueError names the value when it is none of these.
    """
    raw = name.strip()
    key = re.sub(r"[^A-Z]+", " ", raw.upper()).strip()
    if raw.lower().startswith("us-"):
        key = raw[3:].upper()
    if key in STATE_NAMES:
        return key
    code = _ALIASES.get(key) or _BY_NAME.get(key)
    if code is None:
        raise ValueError(f"{name!r} is not a US state, DC or territory name or postal code")
    return code


def format_regions(state: str, site: str | None = None) -> tuple[str, ...] | None:
    """The `plates.formats` regions whose formats the format prior prefers for a plate of `state`:
    Florida's own for FL, the generic US ones plus the state's own (`us-xx`) for another state. A plate
    of unknown state is taken for one of the `site` state's (`ocr.site_state`), with the generic US
    ones; with no site, the default ones (None: Florida's and the generic US ones)."""
    if state == FLORIDA:
        return ("us-fl",)
    if state in STATE_NAMES:
        return ("us", f"us-{state.lower()}")
    if site is None:
        return None
    return ("us-fl", "us") if site == FLORIDA else format_regions(site)


def site_regions(state: str, site: str | None) -> tuple[str, ...]:
    """The site state's own region (`us-ca`) for a plate of that state or of unknown state, else ():
    the formats a read may be turned into by one character its reader was unsure of
    (`ocr.base.apply_format_prior`). Only where a site names its state are all of its plates' formats
    taken as known; elsewhere a swap turned plates of a format the list lacks into one it has."""
    if site is None or state not in (site, UNKNOWN):
        return ()
    return (f"us-{site.lower()}",)
