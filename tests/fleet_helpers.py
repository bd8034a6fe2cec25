"""An edge device as `platepilot run` wires it, a `platepilot collect` process, and counting rows by
event id: shared by the fleet tests and the fleet benchmarks."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import IO

import sqlalchemy as sa

from platepilot.config import FleetConfig, MQTTConfig
from platepilot.store.backlog import Backlog
from platepilot.store.events import EventIds, EventStore, PlateEvent, events_table
from platepilot.store.mqtt import MQTTPublisher


def plate_event(track: int, camera: str = "CAM1", text: str = "ABC1234", crop: str = "") -> PlateEvent:
    t = 1_764_000_000.0 + track
    return PlateEvent(
        camera, track, t, t + 2, text, 0.9, ((text, 0.9),), crop, "crnn", "v1", 2, source_file=f"gate/{track}.jpg"
    )


class Device:
    """An edge device: SQLite events store, MQTT publisher on `<prefix>/<device_id>`, backlog."""

    def __init__(
        self,
        folder: Path,
        port: int,
        device_id: str,
        *,
        prefix: str = "fleet",
        send_crops: bool = False,
        max_queued: int = 10_000,
        resend_seconds: float = 0.5,
    ) -> None:
        mqtt_config = MQTTConfig(enabled=True, port=port, topic=f"{prefix}/{device_id}", send_crops=send_crops,
                                 max_queued=max_queued)  # fmt: skip
        fleet = FleetConfig(device_id=device_id, backlog=True, resend_seconds=resend_seconds, resend_batch=500)
        self.folder = folder / device_id
        self.store = EventStore(f"sqlite:///{self.folder}/events.db", None, EventIds(device_id, "run1"))
        self.publisher = MQTTPublisher(mqtt_config)
        self.backlog = Backlog(self.store.engine, self.publisher, device_id, fleet)
        self.backlog.start()

    def emit(self, tracks: range, camera: str = "CAM1", crop: str = "") -> list[PlateEvent]:
        """Store, then publish, one event per track, as the pipeline does."""
        events = [self.store.stamp(plate_event(track, camera, crop=crop)) for track in tracks]
        for event in events:
            self.store.add(event)
            self.publisher.publish(event)
        return events

    def event_ids(self) -> set[str]:
        """Every event id in the device's own database."""
        with self.store.engine.connect() as conn:
            return {r[0] for r in conn.execute(sa.select(events_table.c.event_id))}

    def forget_acknowledgements(self) -> int:
        """Clear `synced_at` on every event (as if its SQLite came back from an old backup): the backlog
        then sends its whole history again. How many events that is."""
        with self.store.engine.begin() as conn:
            return int(conn.execute(events_table.update().values(synced_at=None)).rowcount)

    def close(self) -> None:
        self.backlog.stop()
        self.publisher.close(timeout=0.5)
        self.store.close()


def collect_process(config: Path, output: IO[bytes] | int = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    """`platepilot collect -c config` in its own process (so it can be killed with -9)."""
    command = [sys.executable, "-m", "platepilot.cli", "collect", "--report", "1", "-c", str(config)]
    return subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)


def rows_by_event_id(url: str) -> Counter[str]:
    """How many rows each event id has in the database at `url` (no table yet: none)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT event_id, count(*) FROM plate_events GROUP BY event_id")).all()
    except sa.exc.ProgrammingError:
        return Counter()
    finally:
        engine.dispose()
    return Counter({str(event_id): int(n) for event_id, n in rows})
