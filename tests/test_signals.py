"""`stop_on_signals`: a signal's `stop` never runs on the thread the signal interrupted."""

from __future__ import annotations

import os
import signal
import threading
import time

from platepilot.signals import stop_on_signals


def test_stop_needing_a_lock_the_interrupted_thread_holds_still_runs() -> None:
    # The shape of the deadlock: SIGTERM lands while the main thread holds a lock (inside Event.wait,
    # or mid-print) and `stop` needs that lock. Run inside the handler, `stop` could never get it.
    lock = threading.Lock()
    stopped = threading.Event()
    ran_on: list[threading.Thread] = []

    def stop() -> None:
        ran_on.append(threading.current_thread())
        if lock.acquire(timeout=3):
            lock.release()
            stopped.set()

    with stop_on_signals(stop):
        with lock:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.2)  # the handler runs in here, on this thread, while the lock is held
        assert stopped.wait(5)
    assert ran_on and ran_on[0] is not threading.main_thread()


def test_previous_handlers_come_back_after_the_block() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals(lambda: None):
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before
