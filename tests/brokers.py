"""Starting and stopping a real mosquitto broker for the MQTT tests (by PID, on a port the test picks)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path


def start_mosquitto(
    folder: Path,
    port: int,
    *,
    password_file: Path | None = None,
    tls: tuple[Path, Path, Path] | None = None,
    extra: tuple[str, ...] = (),
) -> subprocess.Popen[bytes]:
    """Start mosquitto (`make system-deps` installs it) listening on 127.0.0.1:`port`; wait until it accepts.

    `password_file` (from `mosquitto_passwd`) turns anonymous clients away; `tls` = (CA, server
    certificate, server key), PEM files, makes the listener TLS only; `extra` lines go to its config as they are.
    """
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    assert Path(binary).is_file(), "mosquitto is not installed: run `make system-deps`"
    conf = folder / f"mosquitto-{port}.conf"
    lines = [f"listener {port} 127.0.0.1", "persistence false"]
    if password_file is None:
        lines.append("allow_anonymous true")
    else:
        lines += ["allow_anonymous false", f"password_file {password_file}"]
    if tls is not None:
        lines += [f"{key} {path}" for key, path in zip(("cafile", "certfile", "keyfile"), tls, strict=True)]
    if os.geteuid() == 0 and (password_file or tls):  # as root it would drop to user mosquitto, which
        lines.append("user root")  # cannot read files in pytest's private tmp folders
    conf.write_text("\n".join([*lines, *extra]) + "\n")
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"mosquitto exited with {proc.returncode}"
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.05)
    stop_process(proc)
    raise AssertionError(f"mosquitto did not listen on port {port} within 10 s")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM by PID, SIGKILL after 10 s."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
