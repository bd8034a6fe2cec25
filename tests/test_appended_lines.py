"""`AppendedLines`: a growing file read piece by piece, and read whole again when it is rewritten."""

from __future__ import annotations

import os
from pathlib import Path

from platepilot.store.atomic import AppendedLines


def test_appended_lines_come_once_and_a_torn_line_waits_for_its_newline(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    lines = AppendedLines(path)
    assert lines.read() == (False, [])  # no file yet
    path.write_bytes(b"a\nb\n")
    assert lines.read() == (True, [b"a", b"b"])
    assert lines.read() == (False, [])
    with path.open("ab") as handle:
        handle.write(b"c\nd")
    assert lines.read() == (False, [b"c"])
    with path.open("ab") as handle:
        handle.write(b"\n")
    assert lines.read() == (False, [b"d"])


def test_a_rewritten_replaced_shortened_or_deleted_file_is_read_from_its_start(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    lines = AppendedLines(path)
    path.write_bytes(b"one\ntwo\n")
    lines.read()
    with path.open("r+b") as handle:  # same inode and size, other bytes
        handle.write(b"ONE")
    assert lines.read() == (True, [b"ONE", b"two"])
    with path.open("r+b") as handle:  # same inode, more lines after an edit of the old ones
        handle.write(b"uno\ntwo\nthree\n")
    assert lines.read() == (True, [b"uno", b"two", b"three"])
    tmp = tmp_path / "g.txt"
    tmp.write_bytes(b"uno\ntwo\nthree\nfour\n")
    os.replace(tmp, path)  # another file in its place, holding the old lines and more: only those are new
    assert lines.read() == (False, [b"four"])
    tmp.write_bytes(b"uno\nfour\n")
    os.replace(tmp, path)  # compacted: another file with fewer lines
    assert lines.read() == (True, [b"uno", b"four"])
    path.write_bytes(b"x\n")  # truncated and written again
    assert lines.read() == (True, [b"x"])
    path.unlink()
    assert lines.read() == (True, [])
    assert lines.read() == (False, [])
