"""One output's failures, logged once per outage instead of once per frame or event."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


class Outage:
    """Counts the failures of one output (`what`); logs the first failure of each outage and the
    recovery that ends it, so a full disk gives two lines, not one per frame. Not thread-safe: the
    owner calls it under its own lock."""

    def __init__(self, what: str, consequence: str) -> None:
        self.what, self.consequence = what, consequence
        self.failed = 0
        self._down_since: int | None = None  # `failed` when the current outage began

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def failure(self, why: str) -> None:
        if self._down_since is None:
            self._down_since = self.failed
            log.error("%s: %s; %s", self.what, why, self.consequence)
        self.failed += 1

    def success(self) -> None:
        if self._down_since is not None:
            log.warning("%s: working again (%d failed during the outage)", self.what, self.failed - self._down_since)
            self._down_since = None


def os_reason(exc: OSError) -> str:
    """`No space left on device (/path)`: the system's words and the file, without the errno prefix."""
    where = f" ({exc.filename})" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"
