"""The watchlists file: loading it (one clear line naming a bad entry), writing it atomically, and
following its changes while the runtime or the dashboard runs.

A change that does not load (bad YAML, a bad regex, an unknown camera, the file gone) is logged once
and the lists that were live stay live, so a typo never switches alerts off.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection
from pathlib import Path

import yaml
from pydantic import ValidationError

from platepilot.config import WatchConfig, WatchlistFile, _validation_summary, read_yaml
from platepilot.errors import PlatepilotError
from platepilot.store.atomic import FileVersion, file_version, write_text_atomically
from platepilot.watch.match import Matcher

log = logging.getLogger(__name__)


def parse_watchlists(text: str, cameras: Collection[str], where: str = "watchlists") -> WatchlistFile:
    """The lists in YAML `text`; every problem is one PlatepilotError line naming `where` and the entry."""
    return validate_watchlists(read_yaml(text, Path(where)), cameras, where)


def validate_watchlists(data: object, cameras: Collection[str], where: str) -> WatchlistFile:
    """The lists in parsed YAML or JSON `data` (None: none); PlatepilotError naming the first bad entry."""
    if not isinstance(data, dict | None):
        raise PlatepilotError(f"{where}: the top level must be a mapping with `lists:`, not {type(data).__name__}")
    try:
        lists = WatchlistFile.model_validate(data or {})
    except ValidationError as exc:
        raise PlatepilotError(f"{where}: {_validation_summary(exc)}") from None
    check_cameras(lists, cameras, where)
    return lists


def check_cameras(lists: WatchlistFile, cameras: Collection[str], where: str) -> None:
    """PlatepilotError naming the first entry that names a camera not in `cameras` (the configured ones)."""
    for name, watchlist in lists.lists.items():
        for i, entry in enumerate(watchlist.entries):
            unknown = sorted(set(entry.cameras) - set(cameras))
            if unknown:
                raise PlatepilotError(
                    f"{where}: lists.{name}.entries[{i}] ({entry.label}): unknown camera {', '.join(unknown)} "
                    f"(configured: {', '.join(sorted(cameras))})"
                )


def load_watchlists(path: Path, cameras: Collection[str]) -> WatchlistFile:
    """The lists in `path`; a missing file is no lists."""
    if not path.exists():
        return WatchlistFile()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlatepilotError(f"{path}: cannot read the watchlists: {exc}") from None
    return parse_watchlists(text, cameras, str(path))


def dump_watchlists(lists: WatchlistFile) -> str:
    return yaml.safe_dump(lists.model_dump(mode="json", exclude_defaults=True), sort_keys=False, allow_unicode=True)


def save_watchlists(path: Path, lists: WatchlistFile) -> None:
    """Write `lists` to `path` atomically (temp file in the same folder, then rename), keeping the file's
    permissions (a new file gets 0644), so that a runtime under another user can still read it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(path, dump_watchlists(lists))
    except OSError as exc:
        raise PlatepilotError(f"{path}: cannot write the watchlists: {exc}") from None


class LiveWatchlists:
    """The watchlists of `config.file`, reloaded when the file changes (checked on each `matcher()` call).

    Loading at construction raises PlatepilotError (a bad file at start is an error); later a bad
    version is logged once and the previous lists stay live.
    """

    def __init__(self, config: WatchConfig, cameras: Collection[str]) -> None:
        self.path, self.cameras, self.match_distance = config.file, tuple(cameras), config.match_distance
        self._lock = threading.Lock()
        self.version = file_version(self.path)
        self.lists = load_watchlists(self.path, self.cameras)
        self.loaded = self.version  # the version `lists` came from (`version` may be a newer one that failed)
        self._matcher = Matcher(self.lists, self.match_distance)
        self.error: str | None = None

    def matcher(self) -> Matcher:
        """The matcher of the newest version of the file that loaded."""
        version = file_version(self.path)
        with self._lock:
            if version != self.version:
                self.version = version
                self._reload()
            return self._matcher

    def shown(self) -> tuple[WatchlistFile, FileVersion, str | None]:
        """(the live lists, the file version they were loaded from, why a newer version did not load), read
        together after a reload check: a page saving what it was shown names the version it was shown."""
        self.matcher()
        with self._lock:
            return self.lists, self.loaded, self.error

    def _reload(self) -> None:
        try:
            if self.version is None and self.loaded is not None:
                # a file deleted, unmounted or made unreadable while running is no reason to stop alerting
                raise PlatepilotError(f"{self.path}: the watchlists file is gone (empty it to drop every list)")
            lists = load_watchlists(self.path, self.cameras)
        except PlatepilotError as exc:
            self.error = str(exc)
            log.error("watchlists not reloaded, the previous lists stay live: %s", exc)
            return
        self.lists, self._matcher, self.error = lists, Matcher(lists, self.match_distance), None
        self.loaded = self.version
        log.info("watchlists reloaded from %s: %d entries", self.path, self._matcher.size)
