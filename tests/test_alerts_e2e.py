"""End to end on the demo camera: one demo plate on a block list raises one alert, with its reason,
through a real mosquitto broker (`<topic>/alerts`) and one POST to a local webhook server; a plate on
an allow list raises none. The run is the real `platepilot run` in a subprocess, with the bundled CRNN."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_mqtt import Subscriber
from test_watch import HookServer

from platepilot.registry.server import free_port
from platepilot.sources.demo import DemoSource
from platepilot.store.events import query_events

pytestmark = pytest.mark.slow


def test_a_block_listed_demo_plate_alerts_once_over_mqtt_and_the_webhook(tmp_path: Path, mosquitto: int) -> None:
    first, second = (v.text for v in DemoSource("CAM1", seed=0).scene.vehicles[:2])  # they pass in the first 12 s
    (tmp_path / "platepilot.yaml").write_text(
        "ocr:\n  engine: crnn\n"
        f"output:\n  mqtt:\n    enabled: true\n    port: {mosquitto}\n    topic: pp\n"
        f"watch:\n  webhook:\n    url: http://127.0.0.1:{{port}}/hook\n"
    )
    (tmp_path / "watchlists.yaml").write_text(
        f"lists:\n  stolen:\n    entries:\n      - plate: {first}\n        note: reported stolen\n"
        f"  residents:\n    kind: allow\n    entries:\n      - plate: {second}\n"
    )
    hook = HookServer(free_port())
    config = tmp_path / "platepilot.yaml"
    config.write_text(config.read_text().replace("{port}", str(hook.server_port)))
    subscriber = Subscriber(mosquitto, "pp")
    try:
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "platepilot.cli", "run", "--duration", "16"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr
        events = query_events(f"sqlite:///{tmp_path}/output/events.db")
        texts = [e.text for e in events]
        assert first in texts and second in texts, texts  # both were read (else the test proves nothing)
        alerts = [json.loads(a) for a in subscriber.wait_for("pp/alerts", 1, timeout=10)]
        time.sleep(0.5)
        alerts = [json.loads(a) for a in subscriber.on("pp/alerts")]
    finally:
        subscriber.close()
        hook.stop()
    assert len(alerts) == 1, alerts
    (alert,) = alerts
    assert alert["list"] == "stolen" and alert["kind"] == "block" and alert["entry"]["plate"] == first
    assert alert["entry"]["note"] == "reported stolen" and alert["reason"].startswith(("exact", "folded", "distance"))
    assert alert["event"]["camera_id"] == "CAM1" and alert["event"]["track_id"] in [e.track_id for e in events]
    assert hook.bodies == [alert]  # the same alert, POSTed once
    assert done.stderr.count("ALERT ") == 1 and f"ALERT {alert['event']['text']} on CAM1" in done.stderr
    stats = json.loads((tmp_path / "output" / "stats.json").read_text())  # the dashboard's camera stats
    assert stats["cameras"][0]["camera_id"] == "CAM1" and stats["cameras"][0]["processed"] > 0
    assert stats["updated"] >= time.time() - (time.monotonic() - started)
