"""Small shared helpers: the lazy mlflow import, a quick server probe, who is acting, and when."""

from __future__ import annotations

import getpass
import os
import socket
import urllib.error
import urllib.request
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

from platepilot.errors import PlatepilotError, missing_extra

CHAMPION = "champion"
PROBE_TIMEOUT_S = 2.0
_QUIET_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}


def import_mlflow() -> ModuleType:
    """`import mlflow`, or one line naming the extra to install.

    Also sets quiet defaults for this process (unless already set): no telemetry, no download progress
    bars, no run URLs on stdout (our commands print their own line).
    """
    for key, value in _QUIET_ENV.items():
        os.environ.setdefault(key, value)
    try:
        import mlflow
    except ImportError as exc:
        raise missing_extra("mlflow", "mlflow") from exc
    return mlflow


def client(tracking_uri: str) -> Any:
    """An `MlflowClient` bound to one URI for both tracking and registry (no global mlflow state)."""
    mlflow = import_mlflow()
    from mlflow.tracking import MlflowClient

    try:
        return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    except mlflow.exceptions.MlflowException:  # a folder path: MLflow's file store is retired
        raise PlatepilotError(
            f"tracking URI {tracking_uri!r} is not one MLflow takes: use an MLflow server (http://host:5000) "
            "or a database (sqlite:///mlflow.db)"
        ) from None


def is_http(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def server_answers(uri: str, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True when `<uri>/health` answers 200 within `timeout` seconds, or asks for credentials (a server
    behind an authenticating proxy: the MLflow client sends them); non-http URIs: always True."""
    if not is_http(uri):
        return True
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as response:
            return bool(response.status == 200)
    except urllib.error.HTTPError as exc:
        return exc.code in (401, 403)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def registry_error(exc: BaseException) -> PlatepilotError | None:
    """The one line for an error the MLflow client raised (None for any other error)."""
    if not type(exc).__module__.startswith("mlflow."):
        return None
    line = first_line(exc)
    denied = any(f"error code {code}" in str(exc) for code in (401, 403))
    hint = (
        "; the registry wants credentials: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD" if denied else ""
    )
    return PlatepilotError(f"registry error: {line}{hint}")


def actor() -> str:
    """`user@host`, recorded with every alias change and deployment."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = os.environ.get("USER", "unknown")
    return f"{user}@{socket.gethostname()}"


def utc_now() -> datetime:
    return datetime.now(UTC)


def first_line(exc: BaseException) -> str:
    """`ExcType: first line of the message`, short enough for a one-line log."""
    text = str(exc).strip().splitlines()
    message = text[0][:200] if text else ""
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def connect(tracking_uri: str) -> Any:
    """A client for a registry that must be there: one line, not a traceback, when nothing answers."""
    if not server_answers(tracking_uri):
        raise PlatepilotError(
            f"no MLflow server answers at {tracking_uri}: start one with `platepilot mlflow up` or pass --tracking-uri"
        )
    return client(tracking_uri)
