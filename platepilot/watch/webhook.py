"""Alerts POSTed as JSON to a webhook from one background thread, never blocking the pipeline.

`send` only appends to a bounded queue (when full, the oldest alert is dropped and counted). The
thread POSTs in order. A failed POST is retried with backoff (1 s doubling to 60 s; new alerts wait
for it too) until it succeeds or the alert is `expire_seconds` old, when it is dropped and counted.
Failed means refused, timed out, or answered with a status other than 2xx, 302 and 303: redirects are
never followed (urllib would follow them as a GET without the alert), and 302/303 count as the
receiver's answer to a POST it took (`TAKEN_REDIRECTS`), except a 302 to the same address on https.
Each outage logs one line when it starts (and one on its first dropped or expired alert), and one
when delivery resumes.

Delivery is at least once: a POST that timed out may have arrived and is sent again. Every POST of an
alert carries the same `Idempotency-Key` header, so a receiver can drop the copies. A login in the URL
(`https://user:pass@host/...`) is sent as HTTP Basic authentication.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

from platepilot.config import WebhookConfig

log = logging.getLogger(__name__)

BACKOFF_MIN_S = 1.0
BACKOFF_MAX_S = 60.0
# After a POST, 303 (and mostly 302) sends the client to a page of the result (Post/Redirect/Get, as Google
# Apps Script answers): the alert was taken. 301, 307 and 308 say it was not, nor does a 302 to the same
# address on https (an http -> https redirect).
TAKEN_REDIRECTS = (302, 303)


def shown_url(url: str) -> str:
    """The URL for logs: scheme, host and the path's first part, without a login, query or the rest of the
    path, any of which may hold a secret (Slack's and Home Assistant's webhooks carry theirs in the path)."""
    parts = urlsplit(url)
    first, _, rest = parts.path.lstrip("/").partition("/")
    path = f"/{first}" + ("/..." if rest else "") if first else ""
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{path}"


def split_login(url: str) -> tuple[str, dict[str, str]]:
    """(`url` without its login, the Basic `Authorization` header for that login, or none): urllib
    cannot send a login written in the URL, it takes it for part of the host."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, {}
    login = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
    host = parts.netloc.rpartition("@")[2]
    bare = parts._replace(netloc=host).geturl()
    return bare, {"Authorization": "Basic " + base64.b64encode(login).decode()}


def _same_on_https(url: str, location: str) -> bool:
    """Whether `location` is `url` moved to https: the POST never reached the receiver."""
    here, there = urlsplit(url), urlsplit(location)
    moved = here.scheme == "http" and there.scheme == "https"
    return moved and (here.hostname, here.path) == (there.hostname, there.path)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A 3xx is an answer, not a delivery: following it would re-send the alert as a bodiless GET."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


@dataclass(frozen=True, slots=True)
class _Queued:
    payload: bytes
    queued_at: float  # monotonic seconds

    @property
    def key(self) -> str:
        """The alert's `Idempotency-Key`: the same on every attempt."""
        return hashlib.sha256(self.payload).hexdigest()[:32]


class WebhookSender:
    """Counters: `delivered`, `dropped` (queue full), `expired` (never delivered in time), `failures` (attempts)."""

    def __init__(self, config: WebhookConfig, clock: Callable[[], float] = time.monotonic) -> None:
        if config.url is None:
            raise ValueError("WebhookSender needs watch.webhook.url")
        self.config, self.clock = config, clock
        self.url, self._headers = split_login(config.url)
        self.where = shown_url(config.url)
        self.delivered = self.dropped = self.expired = self.failures = 0
        self._queue: deque[_Queued] = deque()
        self._wake = threading.Condition()
        self._closing = False
        self._down_since: float | None = None
        self._told: set[str] = set()  # what this outage already logged
        self._redirect_told = False
        self._thread = threading.Thread(target=self._run, name="webhook", daemon=True)
        self._thread.start()

    @property
    def queued(self) -> int:
        with self._wake:
            return len(self._queue)

    def send(self, alert: dict[str, Any]) -> None:
        """Queue `alert` (JSON-able) for the webhook; returns at once."""
        item = _Queued(json.dumps(alert).encode(), self.clock())
        with self._wake:
            if len(self._queue) >= self.config.max_queued:
                self._queue.popleft()
                self.dropped += 1
                self._tell("dropped", f"queue full ({len(self._queue)}), the oldest alerts are dropped (counted)")
            self._queue.append(item)
            self._wake.notify()

    def close(self, timeout: float = 5.0) -> None:
        """Give queued alerts up to `timeout` seconds, then stop; the rest are counted as expired and logged."""
        deadline = time.monotonic() + timeout
        with self._wake:
            while self._queue and self._down_since is None and time.monotonic() < deadline:
                self._wake.wait(min(0.05, max(deadline - time.monotonic(), 0.0)))
            self._closing = True
            lost, self._queue = len(self._queue), deque()
            self.expired += lost
            self._wake.notify_all()
        self._thread.join(timeout)
        if lost:
            log.warning("webhook %s: %d alerts not delivered at exit (they are in the log)", self.where, lost)

    def line(self) -> str:
        return (
            f"webhook {self.where}: {self.delivered} alerts delivered, {self.queued} queued, {self.dropped} dropped "
            f"(queue full), {self.expired} expired, {self.failures} failed attempts"
        )

    def _run(self) -> None:
        backoff = BACKOFF_MIN_S
        while True:
            with self._wake:
                while not self._queue and not self._closing:
                    self._wake.wait()
                if self._closing:
                    return
                item = self._queue[0]
            if self.clock() - item.queued_at > self.config.expire_seconds:
                self._expire(item)
                continue
            error = self._post(item)
            if error is None:
                self._delivered(item)
                backoff = BACKOFF_MIN_S
                continue
            self.failures += 1
            if self._down_since is None:
                self._down_since = self.clock()
                self._tell("down", f"cannot deliver ({error}); retrying with backoff, alerts are queued")
            self._back_off(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    def _back_off(self, seconds: float) -> None:
        """Wait `seconds` before the next attempt, whatever is queued meanwhile (only `close` ends it early)."""
        until = time.monotonic() + seconds
        with self._wake:
            while not self._closing and (left := until - time.monotonic()) > 0:
                self._wake.wait(left)

    def _post(self, item: _Queued) -> str | None:
        """None when the webhook took it (2xx), else why not."""
        headers = {"Content-Type": "application/json", "Idempotency-Key": item.key, **self._headers}
        request = urllib.request.Request(self.url, data=item.payload, method="POST", headers=headers)
        try:
            with _OPENER.open(request, timeout=self.config.timeout_seconds) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            location = urljoin(self.url, exc.headers.get("Location") or "") if 300 <= exc.code < 400 else ""
            if exc.code in TAKEN_REDIRECTS and not _same_on_https(self.url, location):
                if not self._redirect_told:  # once: a sign-in page answers 302 too
                    self._redirect_told = True
                    log.warning("webhook %s: HTTP %d to %s counted as delivered (a POST taken); if alerts do not "
                                "arrive, set watch.webhook.url to that address", self.where, exc.code,
                                shown_url(location))  # fmt: skip
                return None
            if location:
                moved = shown_url(location)
                return f"HTTP {exc.code}, a redirect to {moved}, not followed: set watch.webhook.url to that address"
            return f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            return str(getattr(exc, "reason", exc))
        except http.client.HTTPException as exc:  # a reply cut short, or not HTTP (IncompleteRead, BadStatusLine)
            return f"a broken reply ({type(exc).__name__})"
        return None

    def _delivered(self, item: _Queued) -> None:
        with self._wake:
            if self._queue and self._queue[0] is item:
                self._queue.popleft()
            self.delivered += 1
            self._wake.notify_all()
        if self._down_since is not None:
            log.warning("webhook %s: delivering again after %d failed attempts", self.where, self.failures)
            self._down_since = None
        self._told.clear()

    def _expire(self, item: _Queued) -> None:
        with self._wake:
            if self._queue and self._queue[0] is item:
                self._queue.popleft()
            self.expired += 1
        self._tell("expired", f"alerts expire undelivered after {self.config.expire_seconds:.0f} s (counted)")

    def _tell(self, what: str, message: str) -> None:
        """Log `message` once per outage."""
        if what not in self._told:
            self._told.add(what)
            log.warning("webhook %s: %s", self.where, message)
