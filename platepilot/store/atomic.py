"""Files several writers share: appends under an exclusive `flock`, rewrites by temp file + `os.replace`, and the
version that tells a reader the file was written or replaced.

A rewrite (compaction, pruning) holds the lock while it replaces the file; an appender that was
waiting on the old file sees it was replaced and reopens, so no appended line goes to a deleted file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

FileVersion = tuple[int, int, int] | None
"""(mtime ns, size, inode) of a file, None when it is missing."""


def file_version(path: Path) -> FileVersion:
    """`path`'s version: another one means an edit or a replaced file (a rename over it changes the inode)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


@contextmanager
def locked(path: Path, mode: str) -> Iterator[IO[bytes]]:
    """`path` opened unbuffered in binary `mode` and exclusively flock-ed (OSError as raised by `open`)."""
    while True:
        handle: IO[bytes] = open(path, mode, buffering=0)  # noqa: SIM115 - closed below, after unlocking
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            if same_file(handle, path):
                yield handle
                return
        finally:
            handle.close()


def same_file(handle: IO[bytes], path: Path) -> bool:
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(handle.fileno())
    return (opened.st_dev, opened.st_ino) == (current.st_dev, current.st_ino)


def append_whole(handle: IO[bytes], data: bytes) -> None:
    """Append `data` to a locked, unbuffered `handle` all or nothing: a write the disk cuts short is
    truncated away (then OSError), so the file never ends in a torn line."""
    end = os.fstat(handle.fileno()).st_size
    try:
        if handle.write(data) != len(data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), handle.name)
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(handle.fileno(), end)
        raise


NEW_FILE_MODE = 0o644  # files others read: the dashboard, the labeling page or a share may run as another user


def write_text_atomically(path: Path, text: str) -> None:
    """`path` holds `text` whole or keeps what it held (`replace_atomically`; a new file gets 0644)."""
    mode = path.stat().st_mode if path.exists() else NEW_FILE_MODE
    replace_atomically(path, text.encode("utf-8"), mode)


def replace_atomically(path: Path, data: bytes, mode: int) -> None:
    """Write `data` to a temp file beside `path`, fsync it, rename it over `path`, fsync the folder.
    The new file keeps the old one's owner where it can (root pruning a service user's events file
    must leave it appendable by that user)."""
    owner = path.stat() if path.exists() else None
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as tmp:
            tmp.write(data)
            tmp.flush()
            os.fchmod(tmp.fileno(), mode & 0o7777)
            if owner is not None and (owner.st_uid, owner.st_gid) != (os.geteuid(), os.getegid()):
                with contextlib.suppress(PermissionError):  # only root may give a file away
                    os.fchown(tmp.fileno(), owner.st_uid, owner.st_gid)
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync(path.parent)


def sync_to_disk(path: Path) -> None:
    """fsync `path` and its folder (its name): a file written without fsync is on disk once this returns."""
    _fsync(path)
    _fsync(path.parent)


def _fsync(path: Path) -> None:
    """fsync a file or a folder by its path."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AppendedLines:
    """Follows an append-only file of lines: each `read` gives the whole lines added since the last one
    (a torn last line waits for its newline), or every line again when the file was replaced or
    edited meanwhile. The file is read whole at each change and compared with what was read before:
    reading is cheap, parsing every line again is not."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._version: FileVersion = None
        self._consumed = b""  # the file's bytes up to the end of the last whole line read

    def read(self) -> tuple[bool, list[bytes]]:
        """(whether the lines are the file's from its start, the lines without their newline)."""
        version = file_version(self.path)
        if version == self._version:
            return False, []
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            data = b""
        self._version = version
        restart = not self._consumed or not data.startswith(self._consumed)
        start = 0 if restart else len(self._consumed)
        end = data.rfind(b"\n") + 1
        new = data[start:end] if end > start else b""
        self._consumed = data[:end] if end > start or restart else self._consumed
        return restart, new.split(b"\n")[:-1]
