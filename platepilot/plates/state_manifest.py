"""A state manifest: plate photos labelled by issuing state (the file contract, read once here).

A tab-separated file with a header naming an image column (`image_relpath` or `crop_relpath`, a path
relative to the manifest's folder) and a state column (`state` or `region`: a name in any spelling
`plates.states.state_code` knows, a postal code, or an OpenALPR region such as `us-fl`). An optional
`split` column (train / valid / test) lets a command pick rows. Other columns are ignored, so both
`us_plates_by_state/MANIFEST.tsv` and OpenALPR's `crops.tsv` are state manifests.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from platepilot.errors import PlatepilotError
from platepilot.plates.states import state_code
from platepilot.plates.tsv import read_tsv

IMAGE_COLUMNS = ("image_relpath", "crop_relpath")
STATE_COLUMNS = ("state", "region")


@dataclass(frozen=True, slots=True)
class StatePhoto:
    """One labelled photo: its path, its state's postal code and its split ('' when the file has none)."""

    image: Path
    state: str
    split: str = ""


def read_state_manifest(
    path: Path, splits: Collection[str] | None = None, allow_empty: bool = False
) -> tuple[StatePhoto, ...]:
    """The rows of the state manifest at `path` (only those whose split is in `splits`, when given).

    PlatepilotError naming the file (and line) for a missing file, a header without an image or state
    column, an unknown state, a missing image, or (unless `allow_empty`) no row left.
    """
    reader = read_tsv(path)
    header = reader.fieldnames or []
    image_col = next((c for c in IMAGE_COLUMNS if c in header), None)
    state_col = next((c for c in STATE_COLUMNS if c in header), None)
    if image_col is None or state_col is None:
        raise PlatepilotError(
            f"{path}: bad header {' '.join(header) or '(empty)'}; a state manifest names an image column "
            f"({' or '.join(IMAGE_COLUMNS)}) and a state column ({' or '.join(STATE_COLUMNS)}), tab-separated"
        )
    photos = []
    for row in reader:
        line = reader.line_num
        split = (row.get("split") or "").strip()
        if splits is not None and split not in splits:
            continue
        relpath, name = (row.get(image_col) or "").strip(), (row.get(state_col) or "").strip()
        try:
            code = state_code(name)
        except ValueError as exc:
            raise PlatepilotError(f"{path}:{line}: {exc}") from None
        image = path.parent / relpath
        if not relpath or not image.is_file():
            raise PlatepilotError(f"{path}:{line}: image {image} not found")
        photos.append(StatePhoto(image, code, split))
    if not photos and not allow_empty:
        chosen = f" in split(s) {', '.join(sorted(splits))}" if splits is not None else ""
        raise PlatepilotError(f"{path}: no rows{chosen}")
    return tuple(photos)
