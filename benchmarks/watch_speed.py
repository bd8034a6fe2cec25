"""Watchlists and search at scale: matching cost per event, alert latency through a real broker, and
the dashboard's plate search over a million events.

    python benchmarks/watch_speed.py [--rows 1000000] [--searches 200] [--alerts 200]

1. Matching: 1,000 plate entries (and 5 regexes), events with 5 candidates; microseconds per event.
2. Alert latency: `Alerter` -> `MQTTPublisher` -> a real mosquitto on 127.0.0.1 -> a subscriber;
   milliseconds from the call to the alert's arrival (`make system-deps` installs mosquitto).
3. Search: `--rows` events in a SQLite file (random 7-character plates over 30 days, 4 cameras), a
   fuzzy (distance 1) search for a misread of a stored plate, newest 200; milliseconds per search.

Prints a table and writes benchmarks/results/watch_speed.json. Targets (issue 18): matching < 1 ms per
event with 1,000 entries; alert p95 < 200 ms; search p95 < 100 ms over 1,000,000 events.
"""

from __future__ import annotations

import json
import logging
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import sqlalchemy as sa
import typer
from paho.mqtt.enums import CallbackAPIVersion
from rich.console import Console
from rich.table import Table

from platepilot.config import MQTTConfig, WatchConfig, WatchlistFile
from platepilot.plates.charset import CHARSET
from platepilot.registry.server import free_port
from platepilot.store.events import PlateEvent, events_table, open_engine
from platepilot.store.mqtt import MQTTPublisher
from platepilot.store.search import EventQuery, ensure_search_index, search_events
from platepilot.watch.alerts import Alerter
from platepilot.watch.lists import LiveWatchlists, save_watchlists
from platepilot.watch.match import Matcher

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from brokers import start_mosquitto, stop_process  # the tests' broker helper, reused

RESULTS = Path(__file__).parent / "results" / "watch_speed.json"
TARGETS = {"match_ms": 1.0, "alert_p95_ms": 200.0, "search_p95_ms": 100.0}
console = Console()


def plates(rng: np.random.Generator, n: int, length: int = 7) -> list[str]:
    codes = rng.integers(0, len(CHARSET), size=(n, length))
    return ["".join(CHARSET[c] for c in row) for row in codes]


def misread(text: str, rng: np.random.Generator) -> str:
    """`text` with one character replaced (what a fuzzy search is for)."""
    i = int(rng.integers(len(text)))
    return text[:i] + CHARSET[int(rng.integers(len(CHARSET)))] + text[i + 1 :]


def event(text: str, track: int, first_seen: float, candidates: list[str]) -> PlateEvent:
    cands = tuple((t, round(0.9 / (i + 1), 3)) for i, t in enumerate([text, *candidates]))
    return PlateEvent("CAM1", track, first_seen, first_seen + 2, text, 0.9, cands, "", "crnn", "bench", 3)


def bench_matching(rng: np.random.Generator, n_events: int = 2000) -> dict[str, Any]:
    entries = [{"plate": p} for p in plates(rng, 995)] + [{"regex": f"^Q{i}[0-9]{{3}}$"} for i in range(5)]
    matcher = Matcher(WatchlistFile.model_validate({"lists": {"big": {"entries": entries}}}), match_distance=1)
    events = [event(p, i, 1.8e9, [misread(p, rng) for _ in range(4)]) for i, p in enumerate(plates(rng, n_events))]
    started = time.perf_counter()
    for e in events:
        matcher.match_event(e)
    per_event = (time.perf_counter() - started) / n_events
    return {"entries": 1000, "candidates": 5, "events": n_events, "match_ms": round(per_event * 1000, 4)}


def bench_alerts(n: int, folder: Path) -> dict[str, Any]:
    port = free_port()
    broker = start_mosquitto(folder, port)
    arrived: dict[int, float] = {}
    got_all = threading.Event()

    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        arrived[json.loads(message.payload)["event"]["track_id"]] = time.perf_counter()
        if len(arrived) == n:
            got_all.set()

    subscribed = threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2)
    sub.on_connect = lambda c, *_: c.subscribe("bench/alerts", qos=1)
    sub.on_subscribe = lambda *_: subscribed.set()
    sub.on_message = on_message
    sub.connect("127.0.0.1", port)
    sub.loop_start()
    publisher = MQTTPublisher(MQTTConfig(enabled=True, port=port, topic="bench"))
    try:
        assert subscribed.wait(10) and publisher.wait_delivered(10)
        while not publisher.connected:
            time.sleep(0.01)
        path = folder / "watchlists.yaml"
        save_watchlists(path, WatchlistFile.model_validate({"lists": {"stolen": {"entries": [{"plate": "ABC1234"}]}}}))
        config = WatchConfig(file=path, cooldown_seconds=0)
        alerter = Alerter(LiveWatchlists(config, ["CAM1"]), config, publisher)
        sent: dict[int, float] = {}
        for track in range(n):
            sent[track] = time.perf_counter()
            alerter(event("A8C1234", track, 1.8e9 + track, []))
            time.sleep(0.02)  # about what a busy road sends: 50 vehicles a second
        got_all.wait(30)
    finally:
        publisher.close()
        sub.disconnect()
        sub.loop_stop()
        stop_process(broker)
    latencies = sorted(1000 * (arrived[t] - sent[t]) for t in arrived)
    return {
        "alerts": n,
        "received": len(latencies),
        "alert_p50_ms": round(statistics.median(latencies), 2),
        "alert_p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))], 2),
    }


def build_events(url: str, rows: int, rng: np.random.Generator) -> list[str]:
    engine = open_engine(url)
    texts = plates(rng, rows)
    start = 1.8e9
    times = np.sort(rng.uniform(start, start + 30 * 86400, rows))
    cameras = ("CAM1", "CAM2", "CAM3", "CAM4")
    chunk = 50_000
    for lo in range(0, rows, chunk):
        batch = [
            {"camera_id": cameras[i % 4], "track_id": i, "first_seen": float(times[i]),
             "last_seen": float(times[i]) + 2, "text": texts[i], "confidence": 0.9,
             "candidates": json.dumps([[texts[i], 0.9]]), "crop_path": "", "engine": "crnn",
             "model_version": "bench", "reads": 3, "format": None}
            for i in range(lo, min(lo + chunk, rows))
        ]  # fmt: skip
        with engine.begin() as conn:
            conn.execute(events_table.insert(), batch)
    started = time.perf_counter()
    ensure_search_index(engine)
    console.print(f"index built in {time.perf_counter() - started:.1f} s")
    engine.dispose()
    return texts


def bench_search(rows: int, searches: int, folder: Path, rng: np.random.Generator) -> dict[str, Any]:
    url = f"sqlite:///{folder}/events.db"
    started = time.perf_counter()
    texts = build_events(url, rows, rng)
    built = time.perf_counter() - started
    engine = sa.create_engine(url)
    times, found = [], []
    for _ in range(searches):
        wanted = texts[int(rng.integers(rows))]
        query = EventQuery(misread(wanted, rng), fuzzy=1, limit=200)
        started = time.perf_counter()
        result = search_events(engine, query)
        times.append(1000 * (time.perf_counter() - started))
        found.append(any(f.event.text == wanted for f in result))
    engine.dispose()
    times.sort()
    return {
        "rows": rows,
        "searches": searches,
        "build_s": round(built, 1),
        "found_share": sum(found) / len(found),
        "search_p50_ms": round(statistics.median(times), 2),
        "search_p95_ms": round(times[int(0.95 * (len(times) - 1))], 2),
    }


def main(
    rows: int = typer.Option(1_000_000, "--rows", min=1000, help="Events in the search database."),
    searches: int = typer.Option(200, "--searches", min=10, help="Searches timed."),
    alerts: int = typer.Option(200, "--alerts", min=10, help="Alerts timed through the broker."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    rng = np.random.default_rng(seed)
    logging.getLogger("platepilot").setLevel(logging.ERROR)  # not one ALERT line per timed alert
    with tempfile.TemporaryDirectory(prefix="watch_speed_") as tmp:
        folder = Path(tmp)
        result = {"matching": bench_matching(rng), "alerts": bench_alerts(alerts, folder),
                  "search": bench_search(rows, searches, folder, rng)}  # fmt: skip
    table = Table(title="watchlists, alerts and search")
    for column in ("measure", "value", "target"):
        table.add_column(column)
    table.add_row("matching, 1,000 entries x 5 candidates", f"{result['matching']['match_ms']:.3f} ms/event", "< 1 ms")
    table.add_row("alert -> MQTT subscriber p50", f"{result['alerts']['alert_p50_ms']:.1f} ms", "")
    table.add_row("alert -> MQTT subscriber p95", f"{result['alerts']['alert_p95_ms']:.1f} ms", "< 200 ms")
    search = result["search"]
    table.add_row(f"fuzzy search over {search['rows']:,} events p50", f"{search['search_p50_ms']:.1f} ms", "")
    table.add_row(f"fuzzy search over {search['rows']:,} events p95", f"{search['search_p95_ms']:.1f} ms", "< 100 ms")
    table.add_row("misread searches finding the stored plate", f"{search['found_share']:.0%}", "100%")
    console.print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({**result, "targets": TARGETS}, indent=2) + "\n")
    console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    typer.run(main)
