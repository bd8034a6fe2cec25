"""The one exception type for user mistakes: the CLI prints its message as one line and exits 1."""


class PlatepilotError(Exception):
    """A problem the user can fix (bad file, bad option, missing extra); the message says what to do."""


def one_line(exc: PlatepilotError) -> str:
    """The message to show. A DataLoader worker's error comes back re-raised with the worker's whole
    traceback in its message ("Caught PlatepilotError in DataLoader worker process 0. Original
    Traceback ..."); its last line holds the worker's own message."""
    text = str(exc)
    if "Original Traceback" not in text:
        return text
    return text.rstrip().splitlines()[-1].split(f"{PlatepilotError.__name__}: ", 1)[-1]


def missing_extra(package: str, extra: str) -> PlatepilotError:
    """The error raised when an optional heavy dependency is not installed."""
    return PlatepilotError(f"{package} is not installed: pip install 'platepilot[{extra}]'")


EXTRA_OF = {
    "torch": "train",
    "onnx": "train",
    "matplotlib": "train",
    "albumentations": "train",
    "torchvision": "ensemble",
    "easyocr": "ensemble",
    "mlflow": "mlflow",
    "fastapi": "web",
    "uvicorn": "web",
    "starlette": "web",
    "psycopg": "fleet",
}
"""The extra that installs each optional top-level module (pyproject's optional-dependencies)."""


def missing_module(exc: ModuleNotFoundError) -> PlatepilotError | None:
    """The one-line error for a missing optional module (`missing_extra`); None for any other module."""
    top = (exc.name or "").split(".")[0]
    extra = EXTRA_OF.get(top)
    return None if extra is None else missing_extra(top, extra)


def database_error(exc: BaseException) -> PlatepilotError | None:
    """The one-line error for a database failure (locked, disk full, damaged file, server gone); None for
    any other exception. SQLAlchemy is looked up, not imported: a command that never loaded it raised none."""
    import sys

    errors = sys.modules.get("sqlalchemy.exc")
    if errors is None or not isinstance(exc, errors.SQLAlchemyError):
        return None
    reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    return PlatepilotError(f"database error: {reason} (another program holding it, a full disk or a damaged file?)")


def bind_error(host: str, port: int, exc: OSError) -> PlatepilotError:
    """The one-line error for a server that cannot listen on (host, port): the port is taken, or the host
    is none of this machine's addresses (a typo was reported as a port in use)."""
    import errno

    if exc.errno == errno.EADDRINUSE:
        return PlatepilotError(f"port {port} on {host} is in use (another server?); pick another --port")
    return PlatepilotError(f"cannot listen on {host}: {exc.strerror or exc}; check --host")
