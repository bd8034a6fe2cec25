"""Stopping cleanly on SIGINT and SIGTERM alike: both call the same `stop`, so a service manager's
SIGTERM gets the same finish (flushed work, closing summary) as Ctrl+C."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType


@contextmanager
def stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """SIGINT and SIGTERM call `stop` (the work then finishes cleanly) while inside the block; the
    previous handlers come back after it. Outside the main thread (where Python takes no signals), nothing.

    `stop` runs on a thread of its own, not in the handler: a handler runs on the main thread between
    two bytecodes, possibly while that thread holds the very lock `stop` needs (`Event.set()` while
    the main thread is inside `Event.wait()`, or a print while it prints), and would deadlock."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(_signum: int, _frame: FrameType | None) -> None:
        threading.Thread(target=stop, name="stop-on-signal", daemon=True).start()

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)
