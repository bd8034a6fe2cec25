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
_HEAD = re.compile(r"[?&;#](?P<name>[\w.-]+)=")  # a query or fragment parameter, up to its value
_VALUE_END = re.compile(r"[&;#\s'\"]")
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")  # APIToken -> API Token; db_pass -> db pass
# A parameter holds a secret when a word of its name holds one of these (`access_token`, `accessToken`,
# `APIToken`, `apikey`, `X-Amz-Signature`, `client_secret`, `dbpass`, `passcode`, `secrets`, `auth`) ...
_SECRET_STEMS = ("pass", "pwd", "secret", "token", "key", "sig", "auth", "credential")
# ... unless the word is one of these everyday words that happen to hold one.
_PLAIN_WORDS = frozenset(
    {"passive", "passing", "passenger", "passage", "bypass", "compass", "signal", "signals", "design", "designs",
     "sigma", "assign", "author", "authors", "keyframe", "keyframes", "monkey", "turkey", "hockey", "keyboard"}
)  # fmt: skip


def _secret_name(name: str) -> bool:
    words = [word.lower() for word in _WORD.findall(name)]
    return any(stem in word for word in words if word not in _PLAIN_WORDS for stem in _SECRET_STEMS)


def _masked_parameters(text: str) -> str:
    """`text` with the value of every secret-named parameter masked, those inside another parameter's
    value (`?next=/cb?token=...`) included."""
    out, shown_to = [], 0
    for head in _HEAD.finditer(text):
        if head.start() < shown_to or not _secret_name(head["name"]):
            continue
        end = _VALUE_END.search(text, head.end())
        out += [text[shown_to : head.end()], MASK]
        shown_to = end.start() if end else len(text)
    return "".join(out) + text[shown_to:]


def redact(text: str) -> str:
    """`text` with every URL password (and password-like query value) replaced by `***`."""
    text = _USERINFO.sub(rf"\g<head>:{MASK}@", text)
    return _masked_parameters(text)


class RedactingFormatter(logging.Formatter):
    """A log formatter whose every line, tracebacks included, goes through `redact`."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
