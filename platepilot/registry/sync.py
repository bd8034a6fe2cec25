"""The model sync agent: each edge device polls the registry's `champion` and deploys it, safely.

One poll: ask which version `champion` points to; if it is not what this device runs, download it to a
temporary folder beside the model, verify the sha256 (file vs sidecar vs the registry's `sha256` tag),
load it with onnxruntime and read the golden synthetic plates (see `golden.py`), and only then swap it
into place. Each file is replaced by a rename within one folder, ONNX first, sidecar second; a reader
that catches the pair mid-swap sees a sha256 mismatch and refuses it, so it never loads a wrong pair.
The replaced pair is kept in `previous/` for a local rollback, and what was deployed is reported back as
a model-version tag `deployed.<device_id>`.

Anything that goes wrong (server down, timeout, partial download, corrupt artifact, full disk) is one
log line; the current model stays in place and the next poll backs off exponentially (with jitter, so a
fleet does not return all at once). SIGTERM ends the loop between polls.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from platepilot.errors import PlatepilotError
from platepilot.ocr.deployed import STATE_FILE, Deployed, read_deployed, swap_in, write_json
from platepilot.ocr.spec import file_sha256, load_card
from platepilot.registry.common import CHAMPION, actor, client, first_line, server_answers, utc_now
from platepilot.registry.gate import record_from_tags
from platepilot.registry.golden import check_golden, read_golden
from platepilot.registry.models import DEPLOYED_PREFIX, alias_history, download_version
from platepilot.signals import stop_on_signals

AGENT_HTTP_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"}
"""The agent retries on its own schedule: mlflow's 7 exponential retries would stall a poll for minutes."""
MAX_DOUBLINGS = 30
"""Failures in a row past which the backoff stops doubling (max_backoff caps it long before)."""

Status = Literal["deployed", "current", "no_champion", "refused", "error"]


@dataclass(frozen=True)
class SyncSettings:
    """What to follow and where to put it. Intervals in seconds."""

    tracking_uri: str
    model_name: str
    model_path: Path
    device_id: str
    interval: float = 60.0
    max_backoff: float = 900.0
    alias: str = CHAMPION
    golden_floor: float = 0.0


@dataclass(frozen=True)
class PollOutcome:
    status: Status
    version: int | None
    message: str


class SyncAgent:
    """Polls the registry and deploys its champion into `settings.model_path` (see the module docstring).

    `make_client(uri)`, `probe(uri)` (does the server answer?), `now()` and `rng` are injectable for tests;
    `log` receives one line per event.
    """

    def __init__(
        self, settings: SyncSettings, log: Callable[[str], None] = print,
        make_client: Callable[[str], Any] = client, now: Callable[[], datetime] = utc_now,
        rng: random.Random | None = None, probe: Callable[[str], bool] = server_answers, retries: bool = True,
    ) -> None:  # fmt: skip
        self.settings = settings
        self._retries = retries  # False for `sync --once`: a failed poll ends the command, nothing retries
        self._log = log
        self._make_client = make_client
        self._client: Any = None
        self._now = now
        self._rng = rng or random.Random()
        self._probe = probe
        self.failures = 0
        self._refused: tuple[tuple[int, str], str] | None = None  # ((version, its tags), why) last refused
        self._unusable: tuple[tuple[int, str] | None, int] = (None, 0)  # (version, tags), downloads in a row

    def run(
        self, stop: threading.Event, sleep: Callable[[float], Any] | None = None, max_polls: int | None = None
    ) -> None:
        """Poll until `stop` is set (SIGTERM) or after `max_polls` polls; `sleep` defaults to `stop.wait`."""
        wait = sleep or stop.wait
        polls = 0
        while not stop.is_set():
            self.poll_once()
            polls += 1
            if max_polls is not None and polls >= max_polls:
                return
            wait(self.next_delay())

    def next_delay(self) -> float:
        """The interval after a good poll; after n failures in a row, interval * 2^(n-1) up to max_backoff."""
        s = self.settings
        doublings = min(self.failures - 1, MAX_DOUBLINGS)  # a float overflows at 2 ** 1024 (10 days of failures)
        base = s.interval if self.failures == 0 else min(s.max_backoff, s.interval * 2**doublings)
        return base * self._rng.uniform(0.9, 1.1)

    def poll_once(self) -> PollOutcome:
        """One poll; never raises for registry, network, disk or model trouble (one log line instead)."""
        try:
            outcome = self._poll()
        except Exception as exc:  # anything at all: the device keeps its model and tries again later
            self._client = None
            uri = self.settings.tracking_uri
            problem = first_line(exc) if self._probe(uri) else f"no answer from the registry at {uri}"
            outcome = PollOutcome("error", None, problem)
        self.failures = self.failures + 1 if outcome.status in ("error", "refused") else 0
        if outcome.status in ("error", "refused"):
            running = self.deployed()
            keep = f"v{running.version}" if running else "the current model"
            retry = f"; retry in ~{self.next_delay():.0f} s" if self._retries else " (--once: no retry)"
            self._log(f"sync: {outcome.message}; keeping {keep}{retry}")
        elif outcome.status == "deployed":
            self._log(f"sync: {outcome.message}")
        return outcome

    def deployed(self) -> Deployed | None:
        """What `deployed.json` says this device runs (None if nothing was deployed by the agent)."""
        return read_deployed(self.settings.model_path)

    def _poll(self) -> PollOutcome:
        s = self.settings
        if self._client is None:
            self._client = self._make_client(s.tracking_uri)
        mv = self._champion()
        if mv is None:
            return PollOutcome("no_champion", None, f"{s.model_name} has no {s.alias} alias yet")
        version = int(mv.version)
        running = self.deployed()
        if running and running.version == version and running.model_name == s.model_name and self._intact(running):
            if not running.reported:
                self._report(running, None)
            return PollOutcome("current", version, f"v{version} is current")
        seen = (version, _judged_tags(mv))
        if self._refused is not None and self._refused[0] == seen:
            why = f"{self._refused[1]} (refused before; not downloaded again until the {s.alias} or its tags change)"
            return PollOutcome("refused", version, f"refused {s.model_name} v{version}: {why}")
        problem, lasting = self._gate_problem(mv), True
        if problem is None:
            problem, lasting = self._deploy(mv, running)
        if problem is not None:
            if lasting:  # what the version is; a download cut short is tried again next poll
                self._refused = (seen, problem)
            self._report_refusal(version, problem)
            return PollOutcome("refused", version, f"refused {s.model_name} v{version}: {problem}")
        new = self.deployed()
        assert new is not None
        self._report(new, running)
        return PollOutcome("deployed", version, f"deployed {s.model_name} v{version} to {s.model_path}")

    def _champion(self) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            return self._client.get_model_version_by_alias(self.settings.model_name, self.settings.alias)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                return None
            raise

    def _intact(self, running: Deployed) -> bool:
        path = self.settings.model_path
        return path.is_file() and file_sha256(path) == running.sha256

    def _gate_problem(self, mv: Any) -> str | None:
        """Why `mv` may not be deployed without a download: the gate refused it, or it never met the gate
        and was never the champion before (versions promoted before the gate existed, which a rollback
        may return to, are taken)."""
        s = self.settings
        decision = (mv.tags or {}).get("gate.decision")
        if decision in PASSED:
            return None
        if decision is None and any(
            c.to_version == int(mv.version) for c in alias_history(self._client, s.model_name, s.alias)
        ):
            return None
        why = f"the promotion gate {decision} it" if decision else "it never went through the promotion gate"
        return f"{why}: move the {s.alias} with `platepilot models promote` (--force to override the gate)"

    def _deploy(self, mv: Any, running: Deployed | None) -> tuple[str | None, bool]:
        """Download, verify and swap in `mv` (in place of `running`); (why it is refused, and whether that is
        the version's own doing rather than its download's), or (None, False)."""
        s = self.settings
        tags = dict(mv.tags or {})
        target = s.model_path
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=target.parent))
        try:
            onnx = download_version(self._client, s.model_name, int(mv.version), staging)
            try:
                card = load_card(onnx)  # sha256 of the file against its sidecar
            except PlatepilotError as exc:  # cut short on the way, or stored so: tried TRANSIENT_TRIES times
                return str(exc).replace(str(onnx), onnx.name), self._tried_again(mv) >= TRANSIENT_TRIES
            if tags.get("sha256") and tags["sha256"] != card.sha256:
                return "its sidecar's sha256 differs from the one registered with the version", True
            record = record_from_tags(tags, card.sha256)
            if record is None and "gate.decision" in tags:  # only a version from before the gate has none
                return "its gate result was measured on another file (gate.result names another sha256)", True
            problem = check_golden(read_golden(onnx), tags, s.golden_floor)
            if problem is not None:
                return problem, True
            swap_in(onnx, target, record)
            replaced = running.version if running is not None and running.model_name == s.model_name else None
            state = Deployed(s.model_name, int(mv.version), mv.run_id or "", card.sha256, self._now().isoformat(),
                             replaced=replaced)  # fmt: skip
            write_json(target.parent / STATE_FILE, asdict(state))
            return None, False
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _tried_again(self, mv: Any) -> int:
        """How many polls in a row have now found this version's download unusable."""
        key = (int(mv.version), _judged_tags(mv))
        self._unusable = (key, self._unusable[1] + 1 if self._unusable[0] == key else 1)
        return self._unusable[1]

    def _report(self, new: Deployed, old: Deployed | None) -> None:
        """Tag the version `deployed.<device>`, untag the one it replaced; retried next poll on failure."""
        s = self.settings
        key = f"{DEPLOYED_PREFIX}{s.device_id}"
        value = json.dumps({"at": new.deployed_at, "host": actor(), "sha256": new.sha256[:12]})
        try:
            self._client.set_model_version_tag(s.model_name, str(new.version), key, value)
            replaced = old.version if old is not None and old.model_name == s.model_name else new.replaced
            if replaced is not None and replaced != new.version:  # after a failed report too: deployed.json keeps it
                with contextlib.suppress(Exception):  # already untagged by a report that failed half way
                    self._client.delete_model_version_tag(s.model_name, str(replaced), key)
        except Exception as exc:
            self._log(f"sync: could not report v{new.version} to the registry ({first_line(exc)}); will retry")
            return
        if not new.reported:
            path = self.settings.model_path.parent / STATE_FILE
            write_json(path, asdict(new) | {"reported": True})

    def _report_refusal(self, version: int, problem: str) -> None:
        key = f"refused.{self.settings.device_id}"
        with contextlib.suppress(Exception):  # logged locally anyway; the registry may be what is failing
            self._client.set_model_version_tag(self.settings.model_name, str(version), key, problem[:500])


TRANSIENT_TRIES = 3
"""Polls in a row whose download of one version arrives unusable (its ONNX not matching its sidecar) before
the version counts as refused for what it is, and is not downloaded again until it or its tags change."""
PASSED = ("accepted", "forced")
"""The gate decisions (`gate.decision` tag) a champion must carry to be deployed: a version the gate
refused, or one that never met it (an alias moved in the MLflow UI), stays off the devices."""


def _judged_tags(mv: Any) -> str:
    """A version's tags but those devices write (`deployed.*`, `refused.*`), as one string: a version
    refused once is judged again only when what it was judged on changed."""
    tags = {k: v for k, v in (mv.tags or {}).items() if not k.startswith((DEPLOYED_PREFIX, "refused."))}
    return json.dumps(tags, sort_keys=True)


def run_agent(settings: SyncSettings, once: bool = False, log: Callable[[str], None] = print) -> PollOutcome | None:
    """`platepilot sync`: poll once, or until SIGTERM/SIGINT (clean exit between polls)."""
    for key, value in AGENT_HTTP_ENV.items():
        os.environ.setdefault(key, value)
    agent = SyncAgent(settings, log=log, retries=not once)
    if once:
        return agent.poll_once()
    stop = threading.Event()

    def _stop() -> None:
        log("sync: stop signal received, stopping")
        stop.set()

    running = agent.deployed()
    log(
        f"sync: following {settings.model_name}@{settings.alias} at {settings.tracking_uri} every "
        f"{settings.interval:.0f} s as device {settings.device_id}; running "
        f"{f'v{running.version}' if running else 'no registry model yet'}"
    )
    with stop_on_signals(_stop):
        agent.run(stop)
    return None
