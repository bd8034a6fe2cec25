"""Tab-separated files with a header row (manifests, errata): read once here."""

from __future__ import annotations

import csv
from pathlib import Path

from platepilot.errors import PlatepilotError


def read_tsv(path: Path, required: tuple[str, ...] = ()) -> csv.DictReader[str]:
    """The rows of a tab-separated manifest with a header; PlatepilotError naming a missing or unreadable
    file, or a header without every `required` column. A row's file line is the reader's `line_num`
    (blank lines are skipped, so counting rows would name the wrong line)."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark is not part of the header
    except FileNotFoundError:
        raise PlatepilotError(f"{path}: manifest not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlatepilotError(f"{path}: cannot read manifest: {exc}") from None
    reader = csv.DictReader(text.splitlines(), delimiter="\t")
    missing = [c for c in required if c not in (reader.fieldnames or [])]
    if missing:
        raise PlatepilotError(
            f"{path}: bad header, missing column(s) {', '.join(missing)}; "
            f"the first line must name the tab-separated columns {' '.join(required)}"
        )
    return reader
