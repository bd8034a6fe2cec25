"""labels.txt: the append-only file of crop labels the guide's labeling and training commands share.

Format: UTF-8, one line per crop, `<path>\\t<TEXT>\\n`, where TEXT is A-Z0-9 or `__SKIP__` (unusable
crop). Later lines for the same path win. Blank lines are ignored; `\\r\\n` line ends are accepted.
A last line without its newline was cut by a crash: it is reported and not used, and the next append
moves it to `labels.txt.rejects` (with a note) instead of completing it. Writers append under an
exclusive `flock` and fsync; compaction rewrites atomically (temp file + `os.replace`) under the same
lock, so no label is ever lost or interleaved.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from platepilot.errors import PlatepilotError
from platepilot.plates.charset import is_valid_text
from platepilot.store.atomic import append_whole, locked, replace_atomically
from platepilot.types import SKIP, Label

log = logging.getLogger(__name__)

_FORBIDDEN_IN_PATH = ("\t", "\n", "\r")
BOM = b"\xef\xbb\xbf"  # an editor's byte-order mark, before the first line


@dataclass(frozen=True, slots=True)
class LabelProblem:
    """A line of labels.txt that was not used; `line_no` counts from 1, `line` is its text."""

    line_no: int
    line: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line_no}: {self.reason}: {self.line!r}"


@dataclass(frozen=True, slots=True)
class LabelsReport:
    """Everything read from one labels file: `entries` are (path as written, Label), in file order."""

    path: Path
    entries: tuple[tuple[str, Label], ...]
    problems: tuple[LabelProblem, ...]

    @property
    def labels(self) -> list[Label]:
        return [label for _, label in self.entries]

    @property
    def latest(self) -> dict[str, Label]:
        """Each crop's last label, keyed by its path as first written, in order of first appearance. One
        crop under several spellings (`crops/a.jpg`, `./crops/a.jpg`, its absolute path) is one crop: its
        later lines win, as the guide says, whichever spelling they use."""
        return self.latest_by_file({})

    def latest_by_file(self, files: dict[str, str]) -> dict[str, Label]:
        """`latest`, with `files` (path as written -> the file it names) filled in and reused: a caller
        reading a growing file again and again (the labeling page, at every save) resolves each path once."""
        spelling: dict[str, str] = {}  # the file a path points to -> its first spelling
        latest: dict[str, Label] = {}
        for written, label in self.entries:
            crop = files.get(written) or os.path.realpath(resolve_crop_path(written, self.path))
            if os.path.exists(crop):  # kept only once it names a file: a label may come before its crop
                files[written] = crop
            latest[spelling.setdefault(crop, written)] = label
        return latest


def scan_labels(path: Path) -> LabelsReport:
    """Read every usable line and report the others; raises PlatepilotError only if the file is unreadable."""
    *lines, tail = _read_bytes(path).removeprefix(BOM).split(b"\n")
    entries: list[tuple[str, Label]] = []
    problems: list[LabelProblem] = []
    for line_no, raw in enumerate(lines, start=1):
        parsed = _parse_line(raw.removesuffix(b"\r"), line_no)
        if isinstance(parsed, LabelProblem):
            problems.append(parsed)
        elif parsed is not None:
            entries.append(parsed)
    if tail.strip():
        text = tail.decode("utf-8", errors="replace")
        problems.append(LabelProblem(len(lines) + 1, text, "incomplete last line (no newline; cut by a crash?)"))
    return LabelsReport(path, tuple(entries), tuple(problems))


def parse_lines(lines: list[bytes], from_start: bool) -> list[tuple[str, Label]]:
    """The usable (path as written, Label) of whole lines of labels.txt read as it grows (`AppendedLines`;
    `from_start`: the first is its first line); unusable lines are left out, line numbers are not kept."""
    if from_start and lines:
        lines = [lines[0].removeprefix(BOM), *lines[1:]]
    parsed = (_parse_line(raw.removesuffix(b"\r"), 0) for raw in lines)
    return [entry for entry in parsed if isinstance(entry, tuple)]


def read_labels(path: Path) -> list[Label]:
    """All usable labels in file order (`line_no` set); unusable lines are logged as warnings."""
    report = scan_labels(path)
    _log_problems(report)
    return report.labels


def latest_labels(path: Path) -> dict[str, Label]:
    """Path as written -> its latest label; unusable lines are logged as warnings."""
    report = scan_labels(path)
    _log_problems(report)
    return report.latest


def why_no_labels(path: Path) -> str:
    """Why `path` gives no label to use: empty, no line in the `<path><TAB><TEXT>` format (binary?), or
    every label `__SKIP__`."""
    report = scan_labels(path)
    if report.entries:
        return f"every label is {SKIP}"
    if not report.problems:
        return "the file is empty"
    return f"no line is <crop path><TAB><TEXT> ({len(report.problems)} unusable; {report.problems[0]})"


def append_labels(path: Path, labels: Iterable[tuple[str | Path, str]]) -> int:
    """Append (crop path, TEXT or SKIP) lines durably; returns how many were written.

    Every pair is checked first; one bad pair raises PlatepilotError and nothing is written. Text
    must already be A-Z0-9 (never upper-cased or cleaned here). A crash-cut last line is moved to
    `<labels>.rejects` first, never completed by the new lines.
    """
    lines = [_format_line(str(crop), text) for crop, text in labels]
    if not lines:
        return 0
    _mkdir(path.parent)
    with _locked(path, "a+b") as handle:
        _quarantine_cut_line(path, handle)
        append_whole(handle, "".join(lines).encode("utf-8"))
        os.fsync(handle.fileno())
    return len(lines)


def rejects_path(path: Path) -> Path:
    """Where crash-cut lines of `path` go: `labels.txt.rejects`."""
    return path.with_name(path.name + ".rejects")


def _quarantine_cut_line(path: Path, handle: IO[bytes]) -> None:
    """Move a last line without its newline (a crash cut it) to the rejects file, with a note."""
    size = os.fstat(handle.fileno()).st_size
    handle.seek(max(size - 1, 0))
    if not size or handle.read(1) == b"\n":
        return
    handle.seek(0)
    data = handle.read()
    cut = data[data.rfind(b"\n") + 1 :]
    rejects = rejects_path(path)
    when = time.strftime("%Y-%m-%dT%H:%M:%S")
    note = f"# {when}: last line of {path.name} had no newline (cut by a crash?); moved here\n".encode()
    with locked(rejects, "ab") as out:
        append_whole(out, note + cut + b"\n")
        os.fsync(out.fileno())
    os.ftruncate(handle.fileno(), size - len(cut))
    log.warning(
        "%s: last line %r had no newline (cut by a crash?): moved to %s", path, cut.decode(errors="replace"), rejects
    )


def compact_labels(path: Path) -> int:
    """Rewrite `path` with only the latest line per crop path, atomically; returns label lines dropped.

    Paths keep the order of their first appearance; blank lines go too. A file with unusable lines
    is left untouched and raises PlatepilotError naming the first one, so nothing is thrown away.
    """
    with _locked(path, "rb") as handle:
        report = scan_labels(path)
        if report.problems:
            raise PlatepilotError(f"{path}: {report.problems[0]}; fix or delete it, then compact again")
        latest = report.latest
        body = "".join(f"{crop}\t{label.text}\n" for crop, label in latest.items())
        replace_atomically(path, body.encode("utf-8"), os.fstat(handle.fileno()).st_mode)
    return len(report.entries) - len(latest)


def resolve_crop_path(label_path: str, labels_file: Path, cwd: Path | None = None) -> Path:
    """Where a crop path from labels.txt points to.

    Absolute paths as is; else relative to `cwd` (default: the working directory) if that exists; else
    relative to the labels file's folder if that exists; else the `cwd`-relative path, which shows what
    the user wrote in error messages. When both exist and hold different images (a labels file of bare
    names used from another such folder), PlatepilotError: one would be paired with the other's text.
    """
    crop = Path(label_path)
    if crop.is_absolute():
        return crop
    base = cwd if cwd is not None else Path()
    from_cwd, beside = base / crop, base / labels_file.parent / crop
    if from_cwd.exists():
        if beside.is_file() and from_cwd.is_file() and not _same_image(from_cwd, beside):
            raise PlatepilotError(
                f"{labels_file}: {label_path} names both {from_cwd} and {beside}, which differ; run from the folder "
                "the labels' paths are relative to (or write them absolute)"
            )
        return from_cwd
    if beside.exists():
        return beside
    return from_cwd


def _same_image(a: Path, b: Path) -> bool:
    """One file, or two with the same bytes."""
    if a.samefile(b):
        return True
    return a.stat().st_size == b.stat().st_size and a.read_bytes() == b.read_bytes()


def _parse_line(raw: bytes, line_no: int) -> tuple[str, Label] | LabelProblem | None:
    """One line without its newline -> (path as written, Label), a problem, or None when blank."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        return LabelProblem(line_no, raw.decode("utf-8", errors="replace"), "not UTF-8")
    if not line.strip():
        return None
    if line.count("\t") != 1:
        reason = "no tab between path and text" if "\t" not in line else "more than one tab"
        return LabelProblem(line_no, line, reason)
    crop, text = line.split("\t")
    if not crop:
        return LabelProblem(line_no, line, "empty path")
    if text != SKIP and not is_valid_text(text):
        return LabelProblem(line_no, line, f"text {text!r} is not A-Z0-9 or {SKIP}")
    return crop, Label(Path(crop), text, line_no)


def nameable(crop: str) -> bool:
    """Whether labels.txt can name `crop`: one path per line, a tab before the text."""
    return bool(crop) and not any(ch in crop for ch in _FORBIDDEN_IN_PATH)


def _format_line(crop: str, text: str) -> str:
    bad = next((ch for ch in _FORBIDDEN_IN_PATH if ch in crop), None)
    if not nameable(crop):
        problem = "is empty" if not crop else f"contains {bad!r}"
        raise PlatepilotError(f"crop path {crop!r} {problem}; labels.txt needs one path per line")
    if text != SKIP and not is_valid_text(text):
        raise PlatepilotError(f"label {text!r} for {crop!r}: text must be A-Z and 0-9 only (upper case), or {SKIP}")
    return f"{crop}\t{text}\n"


def _log_problems(report: LabelsReport) -> None:
    for problem in report.problems:
        log.warning("%s: %s (ignored)", report.path, problem)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise PlatepilotError(f"{path}: labels file not found") from None
    except OSError as exc:
        raise PlatepilotError(f"{path}: cannot read labels file: {exc.strerror}") from None


def _mkdir(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PlatepilotError(f"{folder}: cannot create folder for labels: {exc.strerror}") from None


@contextmanager
def _locked(path: Path, mode: str) -> Iterator[IO[bytes]]:
    """`path` opened and exclusively flock-ed (see `store.atomic.locked`); open errors as one clear line."""
    with ExitStack() as stack:
        try:
            handle = stack.enter_context(locked(path, mode))
        except FileNotFoundError:
            raise PlatepilotError(f"{path}: labels file not found") from None
        except OSError as exc:
            raise PlatepilotError(f"{path}: cannot open labels file: {exc.strerror}") from None
        yield handle
