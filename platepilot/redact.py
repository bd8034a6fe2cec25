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
_PARAMETER = re.compile(r"(?P<head>[?&;#](?P<name>[\w.-]+)=)(?P<value>[^&;#\s'\"]*)")
# A query or fragment parameter holds a secret when a word of its name (split at `_`, `-`, `.` and before
# a capital that follows a small letter) is one of these: `access_token`, `accessToken`, `apikey`, `api-key`,
# `X-Amz-Signature`, `client_secret`, `sslpassword`, `sig`, `auth`; not `passive`, `signal` or `author`.
_SECRET_WORDS = frozenset(
    {"password", "passwd", "pwd", "pass", "passphrase", "sslpassword", "secret", "token", "key", "apikey",
     "signature", "sig", "auth", "authorization", "credential", "credentials"}
)  # fmt: skip


def _masked(match: re.Match[str]) -> str:
    words = re.split(r"[_.-]|(?<=[a-z])(?=[A-Z])", match["name"])  # access_token, X-Api-Key, accessToken
    words = [word.lower() for word in words]
    return f"{match['head']}{MASK}" if _SECRET_WORDS.intersection(words) else match[0]


def redact(text: str) -> str:
    """`text` with every URL password (and password-like query value) replaced by `***`."""
    text = _USERINFO.sub(rf"\g<head>:{MASK}@", text)
    return _PARAMETER.sub(_masked, text)


class RedactingFormatter(logging.Formatter):
    """A log formatter whose every line, tracebacks included, goes through `redact`."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
