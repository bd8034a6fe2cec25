"""Registry helpers without a server: golden check, alias history, promotion gate, sync agent backoff.

The registry here is a small in-memory fake with the handful of MlflowClient methods the code calls;
tests/test_registry_mlflow.py runs the same paths against a real `mlflow server`.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from platepilot.errors import PlatepilotError
from platepilot.ocr.deployed import STATE_FILE, restore_previous, swap_in
from platepilot.ocr.gate_record import GateRecord, ReaderScores, SetScore
from platepilot.ocr.spec import file_sha256, load_card
from platepilot.registry import common, golden
from platepilot.registry.gate import gate_tags
from platepilot.registry.golden import GoldenResult, check_golden
from platepilot.registry.models import alias_history, promote, rollback
from platepilot.registry.server import free_port
from platepilot.registry.sync import SyncAgent, SyncSettings

NAME = "alpr-test"


class FakeRegistry:
    """Versions 1..n of one model, each with a folder holding its ONNX + sidecar under `model/`."""

    def __init__(self, folders: dict[int, Path]) -> None:
        self.folders = folders
        self.aliases: dict[str, str] = {}
        self.model_tags: dict[str, str] = {}
        self.version_tags: dict[int, dict[str, str]] = {v: {} for v in folders}
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise ConnectionError("Connection refused")

    def get_registered_model(self, name: str) -> Any:
        self._check()
        return SimpleNamespace(aliases=dict(self.aliases), tags=dict(self.model_tags))

    def get_model_version(self, name: str, version: str) -> Any:
        self._check()
        v = int(version)
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

        if v not in self.folders:
            raise MlflowException("no such version", error_code=RESOURCE_DOES_NOT_EXIST)
        return SimpleNamespace(
            version=str(v), source=f"runs:/run{v}/model", run_id=f"run{v}", tags=dict(self.version_tags[v])
        )

    def get_model_version_by_alias(self, name: str, alias: str) -> Any:
        self._check()
        from mlflow.exceptions import MlflowException
        from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

        if alias not in self.aliases:
            raise MlflowException("alias not found", error_code=INVALID_PARAMETER_VALUE)
        return self.get_model_version(name, self.aliases[alias])

    def download_artifacts(self, run_id: str, path: str, dst: str) -> str:
        self._check()
        target = Path(dst) / path
        shutil.copytree(self.folders[int(run_id.removeprefix("run"))], target)
        return str(target)

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        self.aliases[alias] = version

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        self.model_tags[key] = value

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        self._check()
        self.version_tags[int(version)][key] = value

    def delete_model_version_tag(self, name: str, version: str, key: str) -> None:
        self.version_tags[int(version)].pop(key, None)


@pytest.fixture()
def registry(tmp_path: Path, tiny_model: Path) -> FakeRegistry:
    folders = {}
    for v in (1, 2, 3):  # each version its own file (its own sha256), as trained versions are
        folders[v] = _variant(tiny_model, tmp_path / f"artifacts{v}", f"v{v}").parent
    return FakeRegistry(folders)


def _gated(registry: FakeRegistry, version: int, decision: str = "accepted") -> None:
    """Give `version` the tags `platepilot models promote` leaves: the gate's decision, measured on its file."""
    scores = ReaderScores("r", (SetScore("golden", 32, 0.9, 0.02),))
    sha = load_card(next(registry.folders[version].glob("*.onnx"))).sha256
    record = GateRecord(scores, scores, scores, decision, sha)  # type: ignore[arg-type]
    registry.version_tags[version].update(gate_tags(record, "ana@lab", "2026-12-07T10:00:00+00:00"))


def _clock() -> Any:
    start = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    ticks = iter(range(1000))
    return lambda: start + timedelta(seconds=next(ticks))


@pytest.mark.parametrize(
    ("reads", "tags", "floor", "ok"),
    [
        (("A", "B"), {}, 0.0, True),  # nothing recorded, no floor
        (("A", "B"), {"golden.seed": str(golden.GOLDEN_SEED), "golden.reads": '["A", "B"]'}, 0.0, True),
        (("A", "X"), {"golden.seed": str(golden.GOLDEN_SEED), "golden.reads": '["A", "B"]'}, 0.0, False),
        (("A", "B"), {"golden.seed": str(golden.GOLDEN_SEED), "golden.reads": '["A"]'}, 0.0, False),
        (("A", "B"), {"golden.seed": str(golden.GOLDEN_SEED), "golden.reads": "not json"}, 0.0, False),
        (("A", "B"), {"golden.seed": "1", "golden.reads": '["X", "Y"]'}, 0.0, True),  # other plate set
        (("A", "B"), {}, 0.6, False),  # exact_folded 0.5 below the floor
    ],
)
def test_check_golden(reads: tuple[str, ...], tags: dict[str, str], floor: float, ok: bool) -> None:
    assert (check_golden(GoldenResult(reads, 0.5), tags, floor) is None) == ok


def test_promote_records_history_and_rollback_walks_back(registry: FakeRegistry) -> None:
    now = _clock()
    for v in (1, 2, 3):
        promote(registry, NAME, v, who="ana@lab", now=now)
    assert registry.aliases["champion"] == "3"
    assert rollback(registry, NAME, who="bo@lab", now=now).to_version == 2
    assert rollback(registry, NAME, who="bo@lab", now=now).to_version == 1
    with pytest.raises(PlatepilotError, match="no earlier champion"):
        rollback(registry, NAME, now=now)
    history = alias_history(registry, NAME)
    assert [(c.from_version, c.to_version, c.action) for c in history] == [
        (None, 1, "promote"), (1, 2, "promote"), (2, 3, "promote"), (3, 2, "rollback"), (2, 1, "rollback"),
    ]  # fmt: skip
    assert history[0].who == "ana@lab" and history[-1].who == "bo@lab"
    assert history[0].when == "2026-11-24T12:00:00+00:00"


def test_a_promote_gated_against_a_champion_that_moved_meanwhile_changes_nothing(registry: FakeRegistry) -> None:
    """Two promotes at once: the second replaced a champion it was never gated against."""
    promote(registry, NAME, 1)

    def evaluator(model_path: Path) -> float:  # while version 2 is gated against 1, version 3 is promoted
        if registry.aliases["champion"] == "1":
            registry.aliases["champion"] = "3"
        return 0.9

    with pytest.raises(PlatepilotError, match="moved to version 3 meanwhile"):
        promote(registry, NAME, 2, evaluator=evaluator)
    assert registry.aliases["champion"] == "3"


def test_a_rollback_retried_after_its_record_was_lost_does_not_go_forward(registry: FakeRegistry) -> None:
    """The server dropped between moving the alias and recording it: the retry went back to the version
    just rolled back from."""
    now = _clock()
    for v in (1, 2, 3):
        promote(registry, NAME, v, now=now)
    registry.aliases["champion"] = "2"  # the rollback 3 -> 2 moved the alias, and its record was lost
    assert rollback(registry, NAME, now=now).to_version == 1


def test_promote_gate(registry: FakeRegistry) -> None:
    scores: list[float] = []

    def evaluator(model_path: Path) -> float:
        assert model_path.suffix == ".onnx" and model_path.is_file()  # the downloaded model
        return scores.pop(0)

    promote(registry, NAME, 1)
    scores[:] = [0.5, 0.8]  # candidate first, then the champion
    with pytest.raises(PlatepilotError, match=r"worse than the champion version 1 at 80\.0%"):
        promote(registry, NAME, 2, evaluator=evaluator)
    assert registry.aliases["champion"] == "1"
    assert promote(registry, NAME, 2, evaluator=evaluator, force=True).action == "promote --force"
    scores[:] = [0.8, 0.8]  # as good as the champion is good enough
    assert promote(registry, NAME, 3, evaluator=evaluator).to_version == 3
    with pytest.raises(PlatepilotError, match="has no version 9"):
        promote(registry, NAME, 9)
    with pytest.raises(PlatepilotError, match="already is the champion"):
        promote(registry, NAME, 3)


def test_agent_deploys_verifies_and_keeps_previous(registry: FakeRegistry, tmp_path: Path) -> None:
    target = tmp_path / "edge" / "crnn_florida" / "florida_plate_ocr.onnx"
    lines: list[str] = []
    agent = SyncAgent(
        SyncSettings("http://fake", NAME, target, "edge-1"),
        log=lines.append,
        make_client=lambda u: registry,
        probe=lambda uri: True,
    )
    assert agent.poll_once().status == "no_champion"
    for version in (1, 2, 3):
        _gated(registry, version)
    registry.aliases["champion"] = "1"
    assert agent.poll_once().status == "deployed"
    assert json.loads((target.parent / STATE_FILE).read_text())["version"] == 1
    assert "deployed.edge-1" in registry.version_tags[1]
    assert agent.poll_once().status == "current"
    # a corrupt artifact: the file no longer matches its sidecar's sha256
    onnx = registry.folders[2] / target.name
    onnx.write_bytes(onnx.read_bytes()[:-10] + b"0123456789")
    registry.aliases["champion"] = "2"
    before = file_sha256(target)
    outcome = agent.poll_once()
    assert outcome.status == "refused" and "sha256" in outcome.message
    assert file_sha256(target) == before and "refused.edge-1" in registry.version_tags[2]
    assert len(lines) == 2 and "keeping v1" in lines[-1]
    # a good one replaces it; the old pair waits in previous/
    registry.aliases["champion"] = "3"
    assert agent.poll_once().status == "deployed"
    assert (target.parent / "previous" / target.name).is_file()
    assert "deployed.edge-1" not in registry.version_tags[1] and "deployed.edge-1" in registry.version_tags[3]
    restore_previous(target)
    assert agent.deployed() is not None and agent.deployed().version == 1  # type: ignore[union-attr]
    assert not list(target.parent.glob(".incoming-*")) and not list(target.parent.glob(".*.new"))


def _variant(model: Path, folder: Path, tag: str) -> Path:
    """A copy of the pair at `model` in `folder` that differs in its bytes (and so its sha256)."""
    import onnx

    folder.mkdir(parents=True)
    graph = onnx.load(str(model))
    graph.doc_string = tag
    onnx.save(graph, str(folder / model.name))
    card = json.loads(model.with_suffix(".json").read_text()) | {"sha256": file_sha256(folder / model.name)}
    (folder / model.with_suffix(".json").name).write_text(json.dumps(card))
    return folder / model.name


def test_a_failed_or_concurrent_swap_keeps_the_live_model_and_its_rollback(tmp_path: Path, tiny_model: Path) -> None:
    """A deploy that failed half-way (a full disk) once left previous/ holding the live model, and two at once
    renamed each other's half-copied files into place."""
    import threading

    one, two, three = (_variant(tiny_model, tmp_path / name, name) for name in ("one", "two", "three"))
    target = tmp_path / "crnn" / tiny_model.name
    kept = target.parent / "previous" / target.name
    swap_in(one, target, None)
    swap_in(two, target, None)
    assert (file_sha256(target), file_sha256(kept)) == (file_sha256(two), file_sha256(one))
    broken = tmp_path / "broken" / tiny_model.name  # an ONNX without its sidecar: the copy fails half-way
    broken.parent.mkdir()
    shutil.copy2(three, broken)
    with pytest.raises(FileNotFoundError):
        swap_in(broken, target, None)
    assert (file_sha256(target), file_sha256(kept)) == (file_sha256(two), file_sha256(one))  # as they were
    swap_in(kept, target, None)  # a rollback by hand: deploy what previous/ holds
    assert (file_sha256(target), file_sha256(kept)) == (file_sha256(one), file_sha256(two))
    threads = [threading.Thread(target=swap_in, args=(m, target, None)) for m in (two, three) * 4]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert load_card(target).sha256 == file_sha256(target) in {file_sha256(two), file_sha256(three)}
    assert sorted(p.name for p in target.parent.iterdir() if p.name.startswith(".")) == [".deploy.lock"]


def test_agent_backs_off_on_errors_and_recovers(registry: FakeRegistry, tmp_path: Path) -> None:
    import random
    import threading

    target = tmp_path / "crnn_florida" / "florida_plate_ocr.onnx"
    settings = SyncSettings("http://fake", NAME, target, "edge-1", interval=60, max_backoff=300)
    lines: list[str] = []
    agent = SyncAgent(
        settings, log=lines.append, make_client=lambda u: registry, rng=random.Random(0),
        probe=lambda uri: not registry.down,
    )  # fmt: skip
    registry.down = True
    delays: list[float] = []
    stop = threading.Event()

    def sleep(seconds: float) -> None:
        delays.append(seconds)
        if len(delays) == 5:
            registry.down = False
            registry.aliases["champion"] = "1"

    _gated(registry, 1)
    agent.run(stop, sleep=sleep, max_polls=7)
    expected = (60, 120, 240, 300, 300, 60)  # doubling from the interval, capped, then back to normal
    assert len(delays) == len(expected)
    assert all(0.9 * b <= d <= 1.1 * b for d, b in zip(delays, expected, strict=True))
    assert len(lines) == 6 and all("no answer from the registry at http://fake; keeping" in line for line in lines[:5])
    assert "deployed" in lines[5] and agent.failures == 0
    agent.failures = 2000  # ten days of failed polls: still the capped backoff (2 ** 1999 overflowed a float)
    assert 0.9 * 300 <= agent.next_delay() <= 1.1 * 300


def test_server_probe_is_quick_when_nothing_listens() -> None:
    import time

    start = time.monotonic()
    assert not common.server_answers(f"http://127.0.0.1:{free_port()}")
    assert common.server_answers("sqlite:///x.db")  # not http: nothing to probe
    assert time.monotonic() - start < 3


def test_missing_mlflow_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(PlatepilotError, match=r"pip install 'platepilot\[mlflow\]'"):
        common.import_mlflow()


def test_edge_imports_neither_mlflow_nor_torch() -> None:
    code = (
        "import sys, platepilot.registry.sync, platepilot.registry.models, platepilot.registry.tracking, "
        "platepilot.registry.server, platepilot.ocr.crnn_service\n"
        "bad = [m for m in ('mlflow', 'torch') if m in sys.modules]\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_no_server_logs_to_local_store_with_one_line(
    tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from platepilot.ocr.spec import load_card
    from platepilot.registry.tracking import log_training_run
    from platepilot.training.train import TrainOptions

    monkeypatch.setenv("HOME", str(tmp_path))
    model = tmp_path / "out" / tiny_model.name
    model.parent.mkdir()
    shutil.copy2(tiny_model, model)
    shutil.copy2(tiny_model.with_suffix(".json"), model.with_suffix(".json"))
    opts = TrainOptions(labels=None, output_dir=model.parent, epochs=1, synthetic=64)
    result = SimpleNamespace(
        model_path=model, best={"epoch": 1.0, "exact": 0.0}, history=[{"epoch": 1.0, "loss": 9.0}],
        stopped="completed", collapse_detected=False, seconds=1.0,
    )  # fmt: skip
    lines: list[str] = []
    record = log_training_run(opts, result, f"http://127.0.0.1:{free_port()}", NAME, True, say=lines.append)
    assert "no MLflow server answers" in lines[0] and str(model.parent / "mlruns") in lines[0]
    assert record.tracking_uri.startswith("sqlite:///") and record.version == 1
    assert (model.parent / "mlruns" / "mlflow.db").is_file()
    assert load_card(model).run_id == record.run_id
    assert list((model.parent / "mlruns" / "artifacts").rglob("florida_plate_ocr.onnx"))


def test_the_gate_weighs_both_readers_as_the_engine_reads_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CRNN reading 80% alone but 96% as PlateOCR's member (how `auto` ran it) lost to one reading 85% alone
    and 95.2% as that member: the gate compared the CRNNs alone, and the site read worse."""
    from types import SimpleNamespace

    from platepilot.config import OCRConfig, Settings
    from platepilot.ocr.gate_record import GateRecord, ReaderScores, SetScore, engine_role
    from platepilot.registry import gate
    from platepilot.registry.gate import DEFAULT_READER, Contender, run_gate

    exact = {DEFAULT_READER: 0.95, "X": 0.80, "plateocr with X": 0.96, "cascade of X": 0.955,
             "Y": 0.85, "plateocr with Y": 0.952, "cascade of Y": 0.951}  # fmt: skip

    def scores(name: str) -> ReaderScores:
        return ReaderScores(name, (SetScore("site held-out", 1000, exact[name], 0.01),))

    monkeypatch.setattr(gate, "_measure", lambda contender, settings, sets: scores(contender.name))
    monkeypatch.setattr(gate, "gate_sets", lambda settings, extra=(): [])
    monkeypatch.setattr(gate, "load_card", lambda path: SimpleNamespace(sha256="y"))
    x_record = GateRecord(scores("X"), scores(DEFAULT_READER), scores(DEFAULT_READER), "accepted", "x",
                          scores("plateocr with X"), scores("cascade of X"))  # fmt: skip
    assert x_record.auto_role() == "member"  # X did not beat the default reader, but helped PlateOCR
    auto = Settings()
    x = Contender("X", Path("x.onnx"))
    record = run_gate(Contender("Y", Path("y.onnx")), x, auto, incumbent_role=engine_role("auto", x_record))
    assert (record.decision, record.judged) == ("refused", "plateocr with Y")
    assert record.incumbent.reader == "plateocr with X"
    assert "refused: plateocr with Y reads worse than plateocr with X" in gate.verdict_line(record)
    alone = Settings(ocr=OCRConfig(engine="crnn"))  # a site reading with the CRNN alone compares the CRNNs
    record = run_gate(Contender("Y", Path("y.onnx")), x, alone, incumbent_role=engine_role("crnn", x_record))
    assert (record.decision, record.judged, record.incumbent.reader) == ("accepted", "Y", "X")


def test_the_agent_deploys_only_a_champion_that_passed_the_gate(registry: FakeRegistry, tmp_path: Path) -> None:
    """An alias moved in the MLflow UI to a version the gate refused (or never saw) went to every device."""
    target = tmp_path / "crnn_florida" / "florida_plate_ocr.onnx"
    downloads: list[str] = []
    real_download = registry.download_artifacts

    def counted(run_id: str, path: str, dst: str) -> str:
        downloads.append(run_id)
        return real_download(run_id, path, dst)

    registry.download_artifacts = counted  # type: ignore[method-assign]
    agent = SyncAgent(SyncSettings("http://fake", NAME, target, "edge-1"), log=lambda line: None,
                      make_client=lambda u: registry, probe=lambda uri: True)  # fmt: skip
    registry.aliases["champion"] = "1"  # never gated
    outcome = agent.poll_once()
    assert outcome.status == "refused" and "never went through the promotion gate" in outcome.message
    _gated(registry, 1, "refused")
    outcome = agent.poll_once()
    assert outcome.status == "refused" and "the promotion gate refused it" in outcome.message
    assert not target.exists() and downloads == []
    _gated(registry, 2, "forced")
    registry.version_tags[2]["golden.seed"] = str(golden.GOLDEN_SEED)
    registry.version_tags[2]["golden.reads"] = json.dumps(["NOPE"] * 32)  # this device reads otherwise
    registry.aliases["champion"] = "2"
    for _ in range(3):  # refused once: not downloaded again while the champion and its tags stay
        assert agent.poll_once().status == "refused"
    assert downloads == ["run2"] and not target.exists()
    del registry.version_tags[2]["golden.reads"]  # its tags changed: judged again
    assert agent.poll_once().status == "deployed" and downloads == ["run2", "run2"]
    registry.version_tags[3]["gate.decision"] = "accepted"  # typed by hand in the MLflow UI: no gate.result
    registry.aliases["champion"] = "3"
    outcome = agent.poll_once()
    assert outcome.status == "refused" and "gate result was measured on another file" in outcome.message


def test_a_device_untags_the_version_it_replaced_after_a_failed_report(registry: FakeRegistry, tmp_path: Path) -> None:
    target = tmp_path / "crnn_florida" / "florida_plate_ocr.onnx"
    agent = SyncAgent(SyncSettings("http://fake", NAME, target, "edge-7"), log=lambda line: None,
                      make_client=lambda u: registry, probe=lambda uri: True)  # fmt: skip
    for version in (1, 2):
        _gated(registry, version)
    registry.aliases["champion"] = "1"
    assert agent.poll_once().status == "deployed"
    registry.aliases["champion"] = "2"
    real_tag = registry.set_model_version_tag
    failing = iter([True])

    def blip(name: str, version: str, key: str, value: str) -> None:
        if key.startswith("deployed.") and next(failing, False):
            raise ConnectionError("registry blipped")
        real_tag(name, version, key, value)

    registry.set_model_version_tag = blip  # type: ignore[method-assign]
    assert agent.poll_once().status == "deployed"  # swapped in; the report failed
    assert "deployed.edge-7" in registry.version_tags[1] and "deployed.edge-7" not in registry.version_tags[2]
    assert agent.poll_once().status == "current"  # the report retried
    assert "deployed.edge-7" not in registry.version_tags[1] and "deployed.edge-7" in registry.version_tags[2]


def test_rollback_follows_the_order_of_changes_not_the_clocks_of_who_made_them(registry: FakeRegistry) -> None:
    base = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    promote(registry, NAME, 1, who="ana@lab", now=lambda: base)
    promote(registry, NAME, 2, who="bo@fast-clock", now=lambda: base + timedelta(hours=13))
    promote(registry, NAME, 3, who="ana@lab", now=lambda: base + timedelta(hours=12))
    assert [(c.from_version, c.to_version) for c in alias_history(registry, NAME)] == [(None, 1), (1, 2), (2, 3)]
    assert rollback(registry, NAME, now=lambda: base + timedelta(hours=14)).to_version == 2


def test_deploying_the_model_that_runs_keeps_the_rollback_copy(tmp_path: Path, tiny_model: Path) -> None:
    one, two = (_variant(tiny_model, tmp_path / name, name) for name in ("one", "two"))
    target = tmp_path / "crnn" / tiny_model.name
    kept = target.parent / "previous" / target.name
    swap_in(one, target, None)
    swap_in(two, target, None)
    copy = _variant(tiny_model, tmp_path / "again", "two")  # the live model once more, from another folder
    assert file_sha256(copy) == file_sha256(two)
    swap_in(copy, target, None)  # a second sync agent, or `models deploy` of what runs
    assert (file_sha256(target), file_sha256(kept)) == (file_sha256(two), file_sha256(one))


def test_a_server_that_asks_for_credentials_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    import http.server
    import threading

    class Guarded(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="mlflow"')
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Guarded)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert common.server_answers(f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
    from mlflow.exceptions import MlflowException

    error = common.registry_error(MlflowException("API request to x failed with error code 401 != 200"))
    assert error is not None and "MLFLOW_TRACKING_USERNAME" in str(error) and "\n" not in str(error)
    assert common.registry_error(ValueError("x")) is None


def test_a_deploy_sweeps_what_killed_deploys_left_behind(tmp_path: Path, tiny_model: Path) -> None:
    import os
    import time

    one, two = (_variant(tiny_model, tmp_path / name, name) for name in ("one", "two"))
    target = tmp_path / "crnn" / tiny_model.name
    swap_in(one, target, None)
    staged = target.parent / f".{target.name}.k1ll3d.new"  # a copy a killed deploy never renamed
    staged.write_bytes(b"half a model")
    old, fresh = target.parent / ".incoming-old", target.parent / ".incoming-fresh"
    for folder in (old, fresh):
        folder.mkdir()
        (folder / "model.onnx").write_bytes(b"x")
    os.utime(old, (time.time() - 2 * 3600,) * 2)
    swap_in(two, target, None)
    assert not staged.exists() and not old.exists() and fresh.is_dir()  # a fresh one may be another agent's
    assert file_sha256(target) == file_sha256(two)


def test_a_pair_cut_between_its_two_renames_is_repaired_by_deploying_it_again(tmp_path: Path, tiny_model: Path) -> None:
    one, two = (_variant(tiny_model, tmp_path / name, name) for name in ("one", "two"))
    target = tmp_path / "crnn" / tiny_model.name
    zero = _variant(tiny_model, tmp_path / "zero", "zero")
    swap_in(zero, target, None)
    swap_in(one, target, None)  # previous/ holds zero, the rollback
    shutil.copy2(two, target)  # a power cut after the ONNX's rename, before the sidecar's
    with pytest.raises(PlatepilotError, match="sha256"):
        load_card(target)
    swap_in(two, target, None)
    assert load_card(target).sha256 == file_sha256(two)
    kept = target.parent / "previous" / target.name  # the half-swapped pair was no rollback: zero stays
    assert load_card(kept).sha256 == file_sha256(zero)


def test_a_rollback_to_a_champion_from_before_the_gate_reaches_the_devices(
    registry: FakeRegistry, tmp_path: Path
) -> None:
    target = tmp_path / "crnn_florida" / "florida_plate_ocr.onnx"
    agent = SyncAgent(SyncSettings("http://fake", NAME, target, "edge-1"), log=lambda line: None,
                      make_client=lambda u: registry, probe=lambda uri: True)  # fmt: skip
    now = _clock()
    promote(registry, NAME, 1, now=now)  # promoted by a platepilot before the gate: no gate.* tags
    assert agent.poll_once().status == "deployed"
    _gated(registry, 2)
    promote(registry, NAME, 2, now=now)
    assert agent.poll_once().status == "deployed"
    assert rollback(registry, NAME, now=now).to_version == 1
    assert agent.poll_once().status == "deployed" and agent.deployed().version == 1  # type: ignore[union-attr]
    registry.aliases["champion"] = "3"  # never gated, never champion: still refused
    assert agent.poll_once().status == "refused"


def test_a_download_cut_short_is_tried_again_at_the_next_poll(registry: FakeRegistry, tmp_path: Path) -> None:
    target = tmp_path / "crnn_florida" / "florida_plate_ocr.onnx"
    agent = SyncAgent(SyncSettings("http://fake", NAME, target, "edge-1"), log=lambda line: None,
                      make_client=lambda u: registry, probe=lambda uri: True)  # fmt: skip
    _gated(registry, 1)
    onnx = next(registry.folders[1].glob("*.onnx"))
    good = onnx.read_bytes()
    onnx.write_bytes(good[:-64])  # the artifact store served half a file
    registry.aliases["champion"] = "1"
    assert agent.poll_once().status == "refused"
    onnx.write_bytes(good)
    assert agent.poll_once().status == "deployed"
    _gated(registry, 2)
    onnx = next(registry.folders[2].glob("*.onnx"))
    onnx.write_bytes(onnx.read_bytes()[:-64])  # stored corrupt: tried a few polls, then no more downloads
    registry.aliases["champion"] = "2"
    downloads: list[str] = []
    real_download = registry.download_artifacts
    registry.download_artifacts = lambda *a: downloads.append(a[0]) or real_download(*a)  # type: ignore[method-assign]
    assert {agent.poll_once().status for _ in range(6)} == {"refused"}
    assert len(downloads) == 3


def test_history_written_by_an_older_platepilot_among_counted_entries_keeps_its_place() -> None:
    from platepilot.registry.models import _history_keys

    keys = ["alias_history.20261207T080000.000000", "alias_history.n000001.20261207T090000.000000",
            "alias_history.20261207T100000.000000", "alias_history.n000002.20261207T110000.000000",
            "alias_history.20261207T120000.000000"]  # fmt: skip
    assert _history_keys(dict.fromkeys(reversed(keys), "{}")) == keys
