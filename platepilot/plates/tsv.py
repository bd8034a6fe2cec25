"""Tab-separated files with a header row (manifests, errata): read once here."""

from __future__ import annotations

import csv
from pathlib import Path

from platepilot.errors import PlatepilotError


def read_tsv(path: Path) -> csv.DictReader[str]:
    """The rows of a tab-separated manifest with a header; PlatepilotError naming a missing or unreadable file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlatepilotError(f"{path}: manifest not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlatepilotError(f"{path}: cannot read manifest: {exc}") from None
    reader = csv.DictReader(text.splitlines(), delimiter="\t")
    return reader
