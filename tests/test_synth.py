"""Synthetic plate crops: labels equal the drawn text, determinism, the writer and the CLI."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from platepilot.cli import app
from platepilot.errors import PlatepilotError
from platepilot.plates.charset import is_valid_text
from platepilot.plates.designs import Family, sample_design
from platepilot.plates.formats import PERSONALIZED_MAX, matching_formats
from platepilot.plates.render import PLATE_H, PLATE_W, render_plate
from platepilot.plates.synth import iter_samples, synth_sample
from platepilot.training.datasets import write_plates, write_scenes

N_SAMPLES = 300
FL_FAMILIES = (Family.FL_STANDARD, Family.FL_LEGACY)


def _digest(seed: int, count: int, camera: bool = True) -> str:
    h = hashlib.sha256()
    for i in range(count):
        s = synth_sample(seed, i, camera=camera)
        h.update(s.image.tobytes() + str(s.image.shape).encode() + s.text.encode())
    return h.hexdigest()


def test_labels_are_the_designed_text_and_follow_the_format_rules() -> None:
    families: Counter[Family] = Counter()
    named = florida = florida_format = 0
    for i in range(N_SAMPLES):
        sample = synth_sample(5, i, camera=False)
        design = sample_design(np.random.default_rng([5, i]))  # synth_sample's own recipe
        assert sample.text == design.text, i
        assert sample.family == design.family
        assert is_valid_text(sample.text) and 1 <= len(sample.text) <= 8, sample.text
        assert sample.image.shape == (PLATE_H, PLATE_W, 3) and sample.image.dtype == np.uint8
        formats = matching_formats(sample.text)
        if design.family in FL_FAMILIES:
            florida += 1
            florida_format += any(f.region == "us-fl" for f in formats)
        if formats:
            named += 1
        else:  # not a named format: only personalised plates, 2-7 characters (FLORIDA.md)
            assert 2 <= len(sample.text) <= PERSONALIZED_MAX, sample.text
        families[design.family] += 1
    assert named >= 0.8 * N_SAMPLES  # ~8% personalised by design; far fewer named means a broken sampler
    assert florida_format >= 0.8 * florida  # Florida designs carry Florida serials
    assert set(families) == set(Family)  # every design family shows up in 300 samples


def test_render_reports_the_text_it_draws_inside_the_canvas() -> None:
    for i in range(50):
        rng = np.random.default_rng([11, i])
        design = sample_design(rng)
        plate = render_plate(design, rng)
        assert plate.text == design.text
        x1, y1, x2, y2 = plate.chars_box
        assert 0 <= x1 < x2 <= PLATE_W and 0 <= y1 < y2 <= PLATE_H
        # the serial is drawn: the character band differs from the plate's own background there
        band = plate.image[int(y1) : int(y2), int(x1) : int(x2)].astype(np.float32)
        assert band.std() > 10, i


@pytest.mark.parametrize("stroke_glyphs", [0, 1, 2, 3])
def test_long_serials_of_wide_glyphs_never_touch(stroke_glyphs: int) -> None:
    for i in range(13):  # the seeds cover every plate face
        design = dataclasses.replace(
            sample_design(np.random.default_rng([12, i])), text="WWWWWWW", groups=(7,), squeeze=1.08,
            char_height=0.56, decoys=0, stroke_glyphs=stroke_glyphs, emboss=False, border=False, frame=False,
            stickers=0, top_text="", bottom_text="", artwork=False,  # nothing but the serial in the ink colour
        )  # fmt: skip
        plate = render_plate(design, np.random.default_rng(i))
        x1, y1, x2, y2 = (round(v) for v in plate.chars_box)
        band = plate.image[y1:y2, x1:x2].astype(np.float32)
        ink = np.linalg.norm(band - np.array(design.ink, np.float32), axis=2) < 40
        columns = ink.any(axis=0).astype(np.int8)
        runs = int((np.diff(columns) == 1).sum() + columns[0])
        assert runs == 7, (i, design.face, runs)


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    assert _digest(3, 40) == _digest(3, 40)
    assert _digest(3, 40, camera=False) == _digest(3, 40, camera=False)
    assert _digest(3, 40) != _digest(4, 40)
    streamed = [s.text for s in iter_samples(3, start=10, count=5)]
    assert streamed == [synth_sample(3, i).text for i in range(10, 15)]


def test_camera_output_is_a_small_colour_crop() -> None:
    widths = []
    for i in range(60):
        image = synth_sample(2, i).image
        assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
        widths.append(image.shape[1])
    assert min(widths) >= 40 and max(widths) <= 210 and max(widths) - min(widths) > 60


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_write_plates_is_independent_of_workers(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    write_plates(one, 40, seed=9, workers=1)
    write_plates(two, 40, seed=9, workers=2)
    files = _files(one)
    assert len([n for n in files if n.endswith(".jpg")]) == 40
    assert files == _files(two)
    lines = (one / "labels.txt").read_text().splitlines()
    assert lines[0] == f"0000000.jpg\t{synth_sample(9, 0).text}"


def test_write_plates_resumes_without_duplicates(tmp_path: Path) -> None:
    write_plates(tmp_path, 20, seed=1)
    first = (tmp_path / "0000003.jpg").stat().st_mtime_ns
    write_plates(tmp_path, 40, seed=1)
    names = [line.split("\t")[0] for line in (tmp_path / "labels.txt").read_text().splitlines()]
    assert len(names) == 40 and len(set(names)) == 40
    assert sorted(names) == [f"{i:07d}.jpg" for i in range(40)]
    assert (tmp_path / "0000003.jpg").stat().st_mtime_ns == first  # not rendered again
    assert not list(tmp_path.glob("*.tmp*"))
    with pytest.raises(PlatepilotError, match="holds synthetic plates of seed 1; seed 2 needs another output folder"):
        write_plates(tmp_path, 50, seed=2)  # another stream would mix with this one under the same names
    assert len((tmp_path / "labels.txt").read_text().splitlines()) == 40


def test_cli_synth_plates_writes_crops_labels_and_preview(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["synth", "plates", "--count", "30", "--out", str(out), "--seed", "1"]
    result = CliRunner().invoke(app, [*args, "--preview", str(out / "p.png")])
    assert result.exit_code == 0, result.output
    assert len(list(out.glob("*.jpg"))) == 30
    lines = (out / "labels.txt").read_text().splitlines()
    assert len(lines) == 30 and all(is_valid_text(line.split("\t")[1]) for line in lines)
    sheet = cv2.imread(str(out / "p.png"))
    assert sheet is not None and sheet.shape[0] > 100
    assert "30 synthetic plates" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--count", "0", "--out", "x"], "--count"),
        (["--count", "3"], "--out"),
        (["--count", "3", "--out", "x", "--preview", "p.gif"], "png"),
        (["--count", "3", "--out", "x", "--seed", "-1"], "--seed"),
    ],
)
def test_cli_synth_plates_rejects_bad_options(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["synth", "plates", *args])
    assert result.exit_code != 0
    text = result.output + (str(result.exception) if result.exception else "")
    assert message in text


def test_synth_refuses_a_folder_of_other_files_and_a_folder_of_the_other_kind(tmp_path: Path) -> None:
    """A user's labels.txt had synthetic labels appended to it; scenes into a folder of plates blamed
    'other real plates'."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "labels.txt").write_text("crops/x.jpg\tABC123\n")
    with pytest.raises(PlatepilotError, match="mine is not empty and holds no synthetic data"):
        write_plates(mine, 2)
    assert (mine / "labels.txt").read_text() == "crops/x.jpg\tABC123\n"
    plates = tmp_path / "plates"
    write_plates(plates, 2)
    with pytest.raises(PlatepilotError, match="plates holds synthetic plates, not scenes: use another output folder"):
        write_scenes(plates, 1)


def test_a_preview_that_cannot_be_written_is_one_error_line(tmp_path: Path) -> None:
    (tmp_path / "dir.png").mkdir()
    result = CliRunner().invoke(
        app, ["synth", "plates", "-n", "1", "--out", str(tmp_path / "o"), "--preview", str(tmp_path / "dir.png")]
    )
    assert isinstance(result.exception, PlatepilotError)  # the console script prints it as one line
    assert "dir.png: cannot write the picture: Is a directory" in str(result.exception)
    assert not list(tmp_path.glob(".dir.png*"))


def test_a_folder_synth_wrote_before_folders_were_marked_goes_on(tmp_path: Path) -> None:
    """Synthetic folders written before the .synth.json marker were refused as 'not empty'."""
    old = tmp_path / "old"
    write_plates(old, 3, seed=4)
    (old / ".synth.json").unlink()  # as an older version left it
    write_plates(old, 5, seed=4)
    assert len((old / "labels.txt").read_text().splitlines()) == 5
    scenes = tmp_path / "scenes"
    write_scenes(scenes, 1, seed=4)
    (scenes / ".synth.json").unlink()
    write_scenes(scenes, 2, seed=4)
    assert len(list((scenes / "labels").glob("*.txt"))) == 2
    mine = tmp_path / "mine"  # a user's YOLO dataset has the same folders, not the same data.yaml
    (mine / "labels").mkdir(parents=True)
    (mine / "data.yaml").write_text("names: {0: plate, 1: car}\ntrain: images\n")
    with pytest.raises(PlatepilotError, match="mine is not empty and holds no synthetic data"):
        write_scenes(mine, 1)


def test_scenes_resume_with_the_same_real_plates_however_their_folder_is_spelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative `--real-plates` then the absolute one was refused as 'other real plates' of the same seed."""
    folder = tmp_path / "photos"
    folder.mkdir()
    photo = folder / "p.jpg"
    cv2.imwrite(str(photo), np.full((60, 120, 3), 200, np.uint8))
    monkeypatch.chdir(tmp_path)
    write_scenes(tmp_path / "s", 1, seed=4, real_plates=["photos/p.jpg"])
    write_scenes(tmp_path / "s", 2, seed=4, real_plates=[str(photo)])  # the same photo, spelled absolute
    assert len(list((tmp_path / "s" / "labels").glob("*.txt"))) == 2
    marker = tmp_path / "s" / ".synth.json"  # as platepilot marked it before: the paths hashed as given
    given = hashlib.sha256(b"photos/p.jpg").hexdigest()[:16]
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "real_plates_sha256": given}))
    write_scenes(tmp_path / "s", 3, seed=4, real_plates=["photos/p.jpg"])
    write_scenes(tmp_path / "s", 3, seed=4, real_plates=[str(photo)])  # marked anew: any spelling goes on
    other = folder / "q.jpg"
    cv2.imwrite(str(other), np.full((60, 120, 3), 100, np.uint8))
    with pytest.raises(PlatepilotError, match="of seed 4 with other real plates: give the same real plates to go on"):
        write_scenes(tmp_path / "s", 4, seed=4, real_plates=[str(other)])
