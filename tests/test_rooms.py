"""The guide's rooms: a room imports only from rooms upstream of it and from types, config and plates."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "platepilot"
LATER = {"ocr", "pipeline", "labeling", "training", "registry", "watch", "dashboard", "fleet"}
DOWNSTREAM = {
    "plates": LATER | {"sources", "detect", "track", "store"},  # plates/ knows plates and imports no room
    "sources": LATER | {"detect", "track"},
    "detect": LATER | {"track"},
}


def _imported_rooms(path: Path) -> set[str]:
    """The platepilot rooms a module imports, at its top or inside functions."""
    rooms = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        rooms |= {name.split(".")[1] for name in names if name.startswith("platepilot.") and name.count(".") >= 1}
    return rooms


@pytest.mark.parametrize("room", sorted(DOWNSTREAM))
def test_a_room_imports_nothing_downstream(room: str) -> None:
    found = {
        str(path.relative_to(PACKAGE)): sorted(_imported_rooms(path) & DOWNSTREAM[room])
        for path in sorted((PACKAGE / room).rglob("*.py"))
    }
    assert {module: rooms for module, rooms in found.items() if rooms} == {}
