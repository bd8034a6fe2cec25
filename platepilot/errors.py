"""The one exception type for user mistakes: the CLI prints its message as one line and exits 1."""


class PlatepilotError(Exception):
    """A problem the user can fix (bad file, bad option, missing extra); the message says what to do."""


def missing_extra(package: str, extra: str) -> PlatepilotError:
    """The error raised when an optional heavy dependency is not installed."""
    return PlatepilotError(f"{package} is not installed: pip install 'platepilot[{extra}]'")
