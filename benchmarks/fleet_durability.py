"""Fleet durability: no event lost or doubled through the failures a fleet meets (issue 19's targets).

Real parts only: mosquitto and a throwaway PostgreSQL cluster on free ports (the tests' helpers), stopped
by PID; `platepilot collect` in its own process; edge devices wired as `platepilot run` wires them
(SQLite events store, `MQTTPublisher`, `Backlog`: `tests/fleet_helpers.Device`). Afterwards the rows of
PostgreSQL are counted by `event_id` against the event ids in the devices' own databases.

    python benchmarks/fleet_durability.py combined --devices 10 --events 1000
    python benchmarks/fleet_durability.py offline --offline-seconds 600

`combined`: the devices stream their events; mid-stream the broker is restarted (it keeps nothing:
`persistence false`), then the collector is killed with -9 and started again; when every device is
acknowledged, one device forgets its acknowledgements and its backlog sends its whole history again.

`offline`: one device keeps producing while the broker is down for `--offline-seconds` (its MQTT queue
holds `--max-queued`, the rest is only in its SQLite), then the broker comes back; every backlog event
must arrive once. Device settings are the defaults of `fleet` (`resend_seconds` 30) unless given.

Each prints a table and writes JSON to benchmarks/results/ (fleet_durability.json, fleet_offline.json).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
import yaml

from platepilot.config import CollectorConfig, FleetConfig, MQTTConfig, OutputConfig, Settings
from platepilot.registry.server import free_port

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from brokers import start_mosquitto, stop_process  # the tests' broker, database and device helpers, reused
from fleet_helpers import Device, collect_process, rows_by_event_id
from pg import PgCluster

RESULTS = Path(__file__).resolve().parent / "results"
PREFIX = "fleet"
# as docs/fleet.md advises: the collector's session may hold a burst of all devices while it restarts
BROKER_LIMITS = ("max_queued_messages 1000000", "max_inflight_messages 1000")
app = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0])


@dataclass
class Fleet:
    """The broker, the database and the collector process of one run, in `work`."""

    work: Path
    port: int
    cluster: PgCluster
    broker: subprocess.Popen[bytes]
    config: Path
    collector: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def restart_broker(self, down_seconds: float = 0.0) -> None:
        stop_process(self.broker)
        time.sleep(down_seconds)
        self.broker = start_mosquitto(self.work, self.port, extra=BROKER_LIMITS)

    def start_collector(self) -> None:
        self.starts += 1
        with open(self.work / f"collect-{self.starts}.log", "wb") as log:
            self.collector = collect_process(self.config, log)

    def wait_collecting(self) -> None:
        """Until the collector said it is collecting (connected; it subscribes a moment later)."""
        log = self.work / f"collect-{self.starts}.log"
        until(lambda: "collecting " in log.read_text(), 60, "the collector to start")
        time.sleep(1.0)

    def kill_collector(self) -> None:
        """kill -9: no batch finished, nothing acknowledged that is not committed."""
        assert self.collector is not None
        self.collector.send_signal(signal.SIGKILL)
        self.collector.wait()

    def stop_collector(self) -> str:
        """SIGTERM; the collector's last counters line."""
        assert self.collector is not None
        self.collector.terminate()
        self.collector.wait(30)
        lines = (self.work / f"collect-{self.starts}.log").read_text().splitlines()
        return next((line for line in reversed(lines) if line.startswith("collect:")), "")


@contextmanager
def fleet() -> Iterator[Fleet]:
    """mosquitto and PostgreSQL on free ports, the collector's config; all stopped by PID at the end."""
    work = Path(tempfile.mkdtemp(prefix="fleet-durability-"))
    port = free_port()
    cluster = PgCluster()
    cluster.start()
    broker = start_mosquitto(work, port, extra=BROKER_LIMITS)
    settings = Settings(
        output=OutputConfig(events_db_url=cluster.url, mqtt=MQTTConfig(enabled=True, port=port, topic=PREFIX)),
        fleet=FleetConfig(collector=CollectorConfig(crops_dir=work / "central", client_id="bench-collector")),
    )
    config = work / "collect.yaml"
    config.write_text(yaml.safe_dump(settings.model_dump(mode="json", include={"output", "fleet"})))
    run = Fleet(work, port, cluster, broker, config)
    try:
        yield run
    finally:
        if run.collector is not None and run.collector.poll() is None:
            run.collector.kill()
            run.collector.wait()
        stop_process(run.broker)
        cluster.remove()


def stream(device: Device, first: int, count: int, rate: float) -> None:
    """`count` events (tracks `first`...), `rate` per second, as a camera would make them."""
    started = time.monotonic()
    for i in range(count):
        time.sleep(max(0.0, started + i / rate - time.monotonic()))
        device.emit(range(first + i, first + i + 1))


def until(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Wait for `check`; the seconds it took (SystemExit after `timeout`)."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)
    return time.monotonic() - started


def tally(url: str, devices: list[Device]) -> dict[str, int]:
    """Rows of PostgreSQL by event id against every event the devices hold: lost, doubled, unknown."""
    rows = rows_by_event_id(url)
    expected = set().union(*(d.event_ids() for d in devices))
    return {
        "events_on_devices": len(expected),
        "rows": sum(rows.values()),
        "distinct_event_ids": len(rows),
        "lost": len(expected - rows.keys()),
        "doubled": sum(n - 1 for n in rows.values() if n > 1),
        "unknown": len(rows.keys() - expected),
    }


def exactly_once(counts: dict[str, int]) -> None:
    """Exit 1 with one line unless every event is in the database once."""
    if counts["lost"] or counts["doubled"] or counts["unknown"]:
        raise SystemExit(f"error: {counts['lost']} lost, {counts['doubled']} doubled, {counts['unknown']} unknown")


def report(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    width = max(map(len, result))
    for key, value in result.items():
        print(f"{key:{width}}  {value}")
    print(f"written to {path}")


@app.command()
def combined(
    devices: int = typer.Option(10, min=1, help="Simulated edge devices."),
    events: int = typer.Option(1000, min=10, help="Events per device."),
    rate: float = typer.Option(50.0, min=0.1, help="Events per second per device."),
    results: Path = typer.Option(RESULTS / "fleet_durability.json", help="Where the JSON goes."),
) -> None:
    """Broker restart, collector kill -9 and a device's replay of its whole history, during one stream."""
    total = devices * events
    timeline: dict[str, float] = {}
    with fleet() as run:
        run.start_collector()
        run.wait_collecting()
        edge = [Device(run.work, run.port, f"box{i:03d}", prefix=PREFIX, resend_seconds=2.0) for i in range(devices)]
        try:
            started = time.monotonic()
            emitters = [threading.Thread(target=stream, args=(d, 1, events, rate)) for d in edge]
            for thread in emitters:
                thread.start()
            rows = lambda: sum(rows_by_event_id(run.cluster.url).values())  # noqa: E731
            emitted = lambda: sum(d.store.stored for d in edge)  # noqa: E731
            until(lambda: rows() >= total // 5, 300, f"{total // 5} rows")
            timeline |= {"broker_restart_at_s": round(time.monotonic() - started, 1), "emitted_then": emitted()}
            run.restart_broker()
            until(lambda: rows() >= total // 2, 300, f"{total // 2} rows")
            timeline |= {"kill9_at_s": round(time.monotonic() - started, 1), "emitted_at_kill9": emitted()}
            run.kill_collector()
            run.start_collector()  # same client id: the broker's session kept what came meanwhile
            for thread in emitters:
                thread.join()
            timeline["stream_done_at_s"] = round(time.monotonic() - started, 1)
            until(lambda: all(d.backlog.waiting() == 0 for d in edge), 600, "every event acknowledged")
            timeline["all_acknowledged_at_s"] = round(time.monotonic() - started, 1)
            time.sleep(3.0)  # the acknowledgements of the last re-sent rounds still on their way
            replayed, resent_before = edge[0].forget_acknowledgements(), edge[0].backlog.resent
            until(lambda: edge[0].backlog.waiting() == 0, 600, "the replay acknowledged")
            timeline["replay_acknowledged_at_s"] = round(time.monotonic() - started, 1)
            counts = tally(run.cluster.url, edge)
            resent = sum(d.backlog.resent for d in edge)
            dropped = sum(d.publisher.failed for d in edge)
        finally:
            for device in edge:
                device.close()
        collector_line = run.stop_collector()
    report(results, {
        "devices": devices, "events": total, "rate_per_device": rate, **timeline,
        "replayed_events": replayed, "replay_resent": edge[0].backlog.resent - resent_before,
        "backlog_resent_total": resent, "mqtt_sends_refused": dropped, **counts,
        "collector_after_restart": collector_line,
    })  # fmt: skip
    exactly_once(counts)


@app.command()
def offline(
    offline_seconds: float = typer.Option(600.0, min=0.0, help="Seconds the broker is down."),
    rate: float = typer.Option(5.0, min=0.1, help="Events per second the device makes throughout."),
    max_queued: int = typer.Option(1000, min=1, help="The device's output.mqtt.max_queued."),
    resend_seconds: float = typer.Option(FleetConfig().resend_seconds, min=0.1, help="fleet.resend_seconds."),
    online_seconds: float = typer.Option(5.0, min=0.0, help="Seconds of events before and after the outage."),
    results: Path = typer.Option(RESULTS / "fleet_offline.json", help="Where the JSON goes."),
) -> None:
    """One device keeps producing while the broker is down, then every backlog event must arrive once."""
    with fleet() as run:
        run.start_collector()
        run.wait_collecting()
        device = Device(run.work, run.port, "edge01", prefix=PREFIX, max_queued=max_queued,
                        resend_seconds=resend_seconds)  # fmt: skip
        try:
            before, during, after = (round(rate * s) for s in (online_seconds, offline_seconds, online_seconds))
            stream(device, 1, before, rate)
            until(lambda: device.backlog.waiting() == 0, 120, "the first events acknowledged")
            stop_process(run.broker)
            stream(device, before + 1, during, rate)
            backlog = device.backlog.waiting()
            dropped = device.publisher.failed
            run.broker = start_mosquitto(run.work, run.port, extra=BROKER_LIMITS)
            back = time.monotonic()
            stream(device, before + during + 1, after, rate)
            drain = until(lambda: device.backlog.waiting() == 0, 900, "the backlog acknowledged")
            back_to_acknowledged = time.monotonic() - back
            counts = tally(run.cluster.url, [device])
            resent = device.backlog.resent
        finally:
            device.close()
        collector_line = run.stop_collector()
    report(results, {
        "offline_seconds": offline_seconds, "rate_per_second": rate, "events_before": before,
        "events_while_offline": during, "events_after": after, "backlog_when_broker_back": backlog,
        "mqtt_queue_max": max_queued, "mqtt_sends_refused_while_offline": dropped, "backlog_resent": resent,
        "resend_seconds": resend_seconds, "seconds_broker_back_to_all_acknowledged": round(back_to_acknowledged, 1),
        "drain_after_stream_s": round(drain, 1), **counts, "collector": collector_line,
    })  # fmt: skip
    exactly_once(counts)


if __name__ == "__main__":
    app()
