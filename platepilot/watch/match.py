"""Matching one plate event against the watchlists, once, after fusion.

Each of the event's texts (the fused text first, then its other top candidates) is tried against
every entry: a plate entry matches exactly, folded (O/0, I/1, B/8, S/5 read as one character), or
within `match_distance` edits of the folded texts; a regex entry must match a whole text. Plate
entries are looked up in dicts and scanned by rapidfuzz in C, so a thousand entries cost well under
a millisecond per event; regexes are tried one by one. Every hit says how it matched.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from platepilot.config import WatchEntry, WatchKind, WatchlistFile, parse_hours
from platepilot.plates.charset import fold_confusable
from platepilot.plates.states import UNKNOWN
from platepilot.store.events import PlateEvent

_HOW_ORDER = {"exact": 0, "regex": 0, "folded": 1, "distance": 2}


@dataclass(frozen=True, slots=True)
class WatchHit:
    """One entry an event matched: `how` is exact, folded, distance (`distance` edits) or regex;
    `candidate` is the 1-based rank of the text that matched (1: the event's own text); `state` is
    the event's (`unknown` when not read)."""

    list_name: str
    entry: WatchEntry
    kind: WatchKind
    how: str
    distance: int
    candidate: int
    text: str
    state: str = UNKNOWN

    @property
    def reason(self) -> str:
        """`exact`, `folded`, `distance 1`, `regex`, plus ` via candidate #2 (ABC1284)` when not the read itself,
        plus `, state unknown` when the entry names a state the event's state could not confirm."""
        what = f"distance {self.distance}" if self.how == "distance" else self.how
        what = what if self.candidate == 1 else f"{what} via candidate #{self.candidate} ({self.text})"
        return f"{what}, state unknown" if self.entry.state is not None and self.state == UNKNOWN else what

    def rank(self) -> tuple[int, int, int, int]:
        """Smaller is better: higher priority, a closer match, an earlier candidate."""
        return (-self.entry.priority, _HOW_ORDER[self.how], self.distance, self.candidate)

    def to_json(self) -> dict[str, Any]:
        return {
            "list": self.list_name,
            "kind": self.kind,
            "entry": self.entry.model_dump(mode="json", exclude_none=True),
            "reason": self.reason,
            "matched_text": self.text,
        }


@dataclass(frozen=True, slots=True)
class _Entry:
    list_name: str
    entry: WatchEntry
    kind: WatchKind
    cameras: frozenset[str]
    hours: tuple[tuple[int, int], ...]

    def active(self, camera: str, minute: int | None, state: str) -> bool:
        """Whether the entry applies at `camera`, at `minute` of the local day (None: a time that cannot be
        placed, which no `hours` window holds), to a plate of `state`."""
        if self.cameras and camera not in self.cameras:
            return False
        if self.entry.state is not None and state not in (self.entry.state, UNKNOWN):
            return False
        if not self.hours:
            return True
        return minute is not None and any(_within(minute, start, end) for start, end in self.hours)


def _within(minute: int, start: int, end: int) -> bool:
    return start <= minute < end if start < end else minute >= start or minute < end


class Matcher:
    """The compiled watchlists; `match` is thread-safe (read only)."""

    def __init__(self, lists: WatchlistFile, match_distance: int = 1) -> None:
        self.match_distance = match_distance
        self.size = 0
        self._exact: dict[str, list[_Entry]] = {}
        self._folded: dict[str, list[_Entry]] = {}
        self._regex: list[tuple[re.Pattern[str], _Entry]] = []
        for name, watchlist in lists.lists.items():
            for entry in watchlist.entries:
                compiled = _Entry(name, entry, entry.kind or watchlist.kind, frozenset(entry.cameras),
                                  tuple(parse_hours(h) for h in entry.hours))  # fmt: skip
                self.size += 1
                if entry.plate is not None:
                    self._exact.setdefault(entry.plate, []).append(compiled)
                    self._folded.setdefault(fold_confusable(entry.plate), []).append(compiled)
                elif entry.regex is not None:
                    self._regex.append((re.compile(entry.regex, re.IGNORECASE), compiled))  # reads are upper case
        self._folded_keys = list(self._folded)

    def match(self, texts: Sequence[str], camera: str, minute: int | None, state: str = UNKNOWN) -> list[WatchHit]:
        """Entries active on `camera` at `minute` (after local midnight) for a plate of `state` that any
        of `texts` (best candidate first) matches, best first; one hit per entry, the closest."""
        best: dict[int, WatchHit] = {}
        for rank, text in enumerate(texts, start=1):
            for entry, how, distance in self._text_hits(text):
                if entry.active(camera, minute, state):
                    hit = WatchHit(entry.list_name, entry.entry, entry.kind, how, distance, rank, text, state)
                    if id(entry) not in best or hit.rank() < best[id(entry)].rank():
                        best[id(entry)] = hit
        return sorted(best.values(), key=WatchHit.rank)

    def match_event(self, event: PlateEvent) -> list[WatchHit]:
        """`match` on the event's text, then its other candidates (fusion keeps its top 5), at its camera,
        local time first seen and state."""
        texts = [event.text, *(t for t, _ in event.candidates if t != event.text)]
        try:
            seen = datetime.fromtimestamp(event.first_seen)
        except (ValueError, OverflowError, OSError):  # a time no calendar holds (a row from a broken clock)
            return self.match(texts, event.camera_id, None, event.state)
        return self.match(texts, event.camera_id, seen.hour * 60 + seen.minute, event.state)

    def _text_hits(self, text: str) -> list[tuple[_Entry, str, int]]:
        """(entry, how, distance) of every entry `text` matches, whatever its camera and hours."""
        hits = [(e, "exact", 0) for e in self._exact.get(text, ())]
        folded = fold_confusable(text)
        hits += [(e, "folded", 0) for e in self._folded.get(folded, ()) if e.entry.plate != text]
        if self.match_distance and self._folded_keys:
            near = process.extract(folded, self._folded_keys, scorer=Levenshtein.distance,
                                   score_cutoff=self.match_distance, limit=None)  # fmt: skip
            hits += [(e, "distance", int(d)) for key, d, _ in near if d for e in self._folded[key]]
        hits += [(e, "regex", 0) for pattern, e in self._regex if pattern.fullmatch(text)]
        return hits
