"""Fleet collector ingest: simulated devices publish events to a real mosquitto as fast as they can,
`platepilot collect` (in-process) writes them to a real PostgreSQL (a throwaway cluster, as in the tests).

Reports events/s into PostgreSQL, batch write latency (parse + crops + insert + commit, mean and p95),
the row size (heap, and heap + indexes per row), then replays every event and checks that nothing
doubled. Writes benchmarks/results/fleet_ingest.json.

    python benchmarks/fleet_ingest.py --devices 10 --events 2000
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import sqlalchemy as sa
import typer
from paho.mqtt.enums import CallbackAPIVersion

from platepilot.config import CollectorConfig, FleetConfig, MQTTConfig, OutputConfig, Settings
from platepilot.fleet.collector import Collector
from platepilot.registry.server import free_port
from platepilot.store.events import EventIds, PlateEvent
from platepilot.store.wire import event_message

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from brokers import start_mosquitto, stop_process  # the tests' broker and database helpers, reused
from pg import PgCluster

RESULTS = Path(__file__).resolve().parent / "results" / "fleet_ingest.json"


def _payloads(device: str, count: int) -> list[bytes]:
    ids = EventIds(device, "bench")
    out = []
    for track in range(count):
        t = 1_764_000_000.0 + track
        event = PlateEvent("CAM1", track, t, t + 2.5, "ABC1234", 0.93, (("ABC1234", 0.93), ("A8C1234", 0.41)),
                           f"output/crops/2025-11-24/CAM1_track{track}.jpg", "plateocr", "plateocr-v1", 3, "FL-std",
                           "FL", 0.88)  # fmt: skip
        out.append(event_message(ids.stamp(event)))
    return out


def _publish(port: int, topic: str, payloads: list[bytes]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.max_inflight_messages_set(100)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = [client.publish(topic, payload, qos=1) for payload in payloads]
    for info in infos:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()


def _send_all(port: int, payloads: dict[str, list[bytes]]) -> None:
    threads = [threading.Thread(target=_publish, args=(port, f"fleet/{d}/events", p)) for d, p in payloads.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _wait(collector: Collector, received: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while collector.received < received:
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out: {collector.line()}")
        time.sleep(0.05)


def main(
    devices: int = typer.Option(10, min=1, help="Simulated devices (one MQTT client each)."),
    events: int = typer.Option(2000, min=1, help="Events per device."),
    batch_size: int = typer.Option(500, min=1, help="fleet.collector.batch_size."),
) -> None:
    work = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    port = free_port()
    # as docs/fleet.md advises: the collector's session may hold a burst of all devices (default 1000)
    broker = start_mosquitto(work, port, extra=("max_queued_messages 1000000", "max_inflight_messages 1000"))
    cluster = PgCluster()
    cluster.start()
    try:
        settings = Settings(
            output=OutputConfig(events_db_url=cluster.url, mqtt=MQTTConfig(enabled=True, port=port, topic="fleet")),
            fleet=FleetConfig(collector=CollectorConfig(crops_dir=work / "crops", batch_size=batch_size)),
        )
        collector = Collector(settings)
        collector.connect()
        stop = threading.Event()
        writer = threading.Thread(target=collector.run, args=(stop,))
        writer.start()
        if not collector.subscribed.wait(10):  # else the first events would be lost at the broker
            raise SystemExit("the collector never subscribed")
        payloads = {f"box{i:03d}": _payloads(f"box{i:03d}", events) for i in range(devices)}
        total = devices * events
        started = time.perf_counter()
        _send_all(port, payloads)
        _wait(collector, total)
        seconds = time.perf_counter() - started
        times = sorted(collector.write_seconds)
        with collector.engine.connect() as conn:
            rows, distinct = conn.execute(sa.text("SELECT count(*), count(DISTINCT event_id) FROM plate_events")).one()
            heap = conn.execute(sa.text("SELECT avg(pg_column_size(t.*)) FROM plate_events t")).scalar_one()
            total_bytes = conn.execute(sa.text("SELECT pg_total_relation_size('plate_events')")).scalar_one()
        _send_all(port, payloads)  # every device replays everything
        _wait(collector, 2 * total)
        with collector.engine.connect() as conn:
            after = conn.execute(sa.text("SELECT count(*), count(DISTINCT event_id) FROM plate_events")).one()
        stop.set()
        writer.join()
        collector.close()
    finally:
        cluster.remove()
        stop_process(broker)
    result = {
        "devices": devices,
        "events": total,
        "batch_size": batch_size,
        "events_per_second": round(total / seconds),
        "batch_write_ms_mean": round(1000 * statistics.fmean(times), 1),
        "batch_write_ms_p95": round(1000 * times[int(0.95 * (len(times) - 1))], 1),
        "batches": len(times),
        "row_bytes_heap": round(float(heap)),
        "bytes_per_row_with_indexes": round(total_bytes / rows),
        "rows": rows,
        "distinct_event_ids": distinct,
        "rows_after_replay": after[0],
        "duplicates_skipped": collector.duplicates,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    for key, value in result.items():
        print(f"{key:28} {value}")


if __name__ == "__main__":
    typer.run(main)
