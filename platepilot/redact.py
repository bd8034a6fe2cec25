"""Credentials never shown: the password of any URL (RTSP, HTTP, database URLs) in text we print or log.

`rtsp://admin:CamPassw0rd@host/stream1` is shown as `rtsp://admin:***@host/stream1`; a password in a
query string or fragment (`?password=...`, `access_token=`, `apikey=`, `sig=`, ...) is masked too. A
password holding a raw `@` is masked up to the last `@` before the host, so no part of it shows.
"""

from __future__ import annotations

import logging
import re

MASK = "***"

_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):(?P<secret>\S*?)@(?=[^@\s/]*(?:[/\s?#'\"]|$))")
# A query or fragment parameter whose name holds one of these words (`access_token`, `apikey`, `X-Amz-Signature`,
# `client_secret`, `sslpassword`, `auth`) holds a secret; `key` alone too (`?key=`).
_QUERY_SECRET = re.compile(
    r"(?P<head>[?&;#](?:[\w.-]*(?:pass|pwd|secret|token|api[_-]?key|signature|sig|auth|credential)[\w.-]*|key)=)"
    r"[^&;#\s'\"]*",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """`text` with every URL password (and password-like query value) replaced by `***`."""
    text = _USERINFO.sub(rf"\g<head>:{MASK}@", text)
    return _QUERY_SECRET.sub(rf"\g<head>{MASK}", text)


class RedactingFormatter(logging.Formatter):
    """A log formatter whose every line, tracebacks included, goes through `redact`."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
