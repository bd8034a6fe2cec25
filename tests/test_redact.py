"""No password in any output: URLs in log lines, `--stats`, `config show` and error lines are redacted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from platepilot.redact import redact
from platepilot.registry.server import free_port


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("rtsp://admin:CamPassw0rd@host/stream1", "rtsp://admin:***@host/stream1"),
        ("CAM1 (rtsp://admin:p@ss@10.0.0.1:554/s): x", "CAM1 (rtsp://admin:***@10.0.0.1:554/s): x"),
        ("rtsp://a:pa/ss@h:554/x", "rtsp://a:***@h:554/x"),
        ("postgresql+psycopg://u:pw@db:5432/events", "postgresql+psycopg://u:***@db:5432/events"),
        ("'http://u:pw@h' and mqtt://v:pw2@k:1883", "'http://u:***@h' and mqtt://v:***@k:1883"),
        ("http://cam/snap.jpg?user=a&password=zz&x=1", "http://cam/snap.jpg?user=a&password=***&x=1"),
        ("rtsp://admin@host/x", "rtsp://admin@host/x"),
        ("https://ha:8123/api/webhook/a?access_token=T1&x=1", "https://ha:8123/api/webhook/a?access_token=***&x=1"),
        ("postgresql://u@db/p?sslpassword=S2", "postgresql://u@db/p?sslpassword=***"),
        ("h://x/?apikey=A&api-key=B&key=C&auth=D", "h://x/?apikey=***&api-key=***&key=***&auth=***"),
        ("h://blob/c?sv=1&sig=E&X-Amz-Signature=F", "h://blob/c?sv=1&sig=***&X-Amz-Signature=***"),
        ("h://x/cb#client_secret=G;secret_token=H", "h://x/cb#client_secret=***;secret_token=***"),
        ("h://x/?monkey=1&keyframe=2&page=3", "h://x/?monkey=1&keyframe=2&page=3"),
        (
            "h://x/?passive=1&signal=2&design=3&author=4&bypass_cache=5&sigma=6&compass=7",
            "h://x/?passive=1&signal=2&design=3&author=4&bypass_cache=5&sigma=6&compass=7",
        ),
        (
            "h://x/?accessToken=A&apiKey=B&clientSecret=C&X-Api-Key=D&APIKEY=E&pwd=F",
            "h://x/?accessToken=***&apiKey=***&clientSecret=***&X-Api-Key=***&APIKEY=***&pwd=***",
        ),
        ("http://x/login?next=/cb?token=S&a=1", "http://x/login?next=/cb?token=***&a=1"),
        (
            "h://app/auth?redirect_uri=https://cb/?access_token=S",
            "h://app/auth?redirect_uri=https://cb/?access_token=***",
        ),
        (
            "h://x/?apitoken=A&mypassword=B&dbpass=C&passcode=D&APIToken=E&DBPassword=F&secrets=G&password1=H",
            "h://x/?apitoken=***&mypassword=***&dbpass=***&passcode=***&APIToken=***&DBPassword=***&secrets=***"
            "&password1=***",
        ),
        (
            "h://x/?access_key=A&private_key=B&subscription-key=C&session_key=D",
            "h://x/?access_key=***&private_key=***&subscription-key=***&session_key=***",
        ),
        ("sqlite:///output/events.db", "sqlite:///output/events.db"),
        ("rtsp://host/a:b@c", "rtsp://host/a:b@c"),
    ],
)
def test_redact(text: str, shown: str) -> None:
    assert redact(text) == shown


def _platepilot(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "platepilot.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_no_password_in_any_output(tmp_path: Path) -> None:
    """An unreachable RTSP camera with a password in its URL, a database and a tracking URI with theirs:
    `run --stats` (reconnect lines, stats), `config show` and an error line never show a password."""
    camera = f"rtsp://admin:CamPassw0rd@127.0.0.1:{free_port()}/stream1"
    config = {
        "cameras": [{"id": "CAM1", "source": camera}],
        "output": {"crops_dir": str(tmp_path / "crops"), "events_db_url": f"sqlite:///{tmp_path}/events.db"},
        "mlflow": {"tracking_uri": f"http://ml:MlPassw0rd@127.0.0.1:{free_port()}"},
    }
    (tmp_path / "platepilot.yaml").write_text(yaml.safe_dump(config))
    run = _platepilot(["run", "--duration", "4", "--stats"], tmp_path)
    shown = _platepilot(["config", "show"], tmp_path)
    listing = _platepilot(["models", "list"], tmp_path)
    postgres = _platepilot(["reads", "--config", str(_db_config(tmp_path))], tmp_path)
    assert "CAM1 (rtsp://admin:***@127.0.0.1:" in run.stderr and "reconnects" in run.stderr
    assert "rtsp://admin:***@" in shown.stdout and "http://ml:***@" in shown.stdout
    assert listing.returncode == 1 and "http://ml:***@" in listing.stderr
    assert postgres.returncode == 1 and "Traceback" not in postgres.stderr
    for result in (run, shown, listing, postgres):
        output = result.stdout + result.stderr
        assert "Passw0rd" not in output, output


def _db_config(tmp_path: Path) -> Path:
    """A config whose events database is a PostgreSQL server that is not there, with a password."""
    path = tmp_path / "pg.yaml"
    url = f"postgresql://events:DbPassw0rd@127.0.0.1:{free_port()}/events"
    path.write_text(yaml.safe_dump({"output": {"events_db_url": url}}))
    return path
