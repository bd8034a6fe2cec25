"""Print uv's options for the package sources pip is configured with here (for the Makefile).

`make edge` and `make setup` install with uv, which reads none of pip's settings (pip.conf files, PIP_*
variables). This hands uv the same indexes, find-links folders and constraint files, so both install
from the same places (a machine's local mirror included). Prints nothing where pip has none set.
"""

from __future__ import annotations

import shlex
import subprocess
import sys

OPTIONS = {
    "index-url": "--index-url",
    "extra-index-url": "--extra-index-url",
    "find-links": "--find-links",
    "constraint": "--constraint",
}
SCOPES = (":env:", "install", "global")  # pip's precedence: a PIP_* variable, then [install], then [global]


def uv_options(listed: str) -> list[str]:
    """uv's options for the lines of `pip config list` (`scope.name='value'`; lists are space-separated)."""
    values: dict[tuple[str, str], str] = {}
    for line in listed.splitlines():
        key, sep, value = line.partition("=")
        scope, _, name = key.strip().rpartition(".")
        if sep and name in OPTIONS:
            values[scope, name] = value.strip().strip("'\"")
    options = []
    for name, flag in OPTIONS.items():
        value = next((values[scope, name] for scope in SCOPES if (scope, name) in values), "")
        for item in value.split():
            options += [flag, item]
    return options


def main() -> None:
    try:
        listed = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return  # no pip here: uv's own defaults
    print(shlex.join(uv_options(listed)))


if __name__ == "__main__":
    main()
