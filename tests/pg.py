"""A throwaway PostgreSQL cluster for the fleet tests: initdb in a temp folder, `postgres` on a free port,
stopped by PID (Debian's `postgresql`, which `make system-deps` installs).

PostgreSQL refuses to run as root: as root the cluster runs as the `postgres` user, in a folder it owns.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from platepilot.registry.server import free_port


def _bin(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    assert found, "PostgreSQL is not installed: run `make system-deps`"
    return str(found[-1])


class PgCluster:
    """One cluster: `start()` (again after `stop()`, same data, same port), `stop()`, `url`."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="platepilot-pg-"))
        self.port = free_port()
        self.data = self.folder / "data"
        self._user = {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}
        if self._user:
            shutil.chown(self.folder, "postgres", "postgres")
        self._proc: subprocess.Popen[bytes] | None = None
        command = [_bin("initdb"), "-D", str(self.data), "-U", "platepilot", "--auth=trust", "-E", "UTF8"]
        subprocess.run(command, check=True, capture_output=True, **self._user)  # type: ignore[call-overload]

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://platepilot@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = ["-p", str(self.port), "-k", str(self.folder), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]
        log = open(self.folder / "postgres.log", "ab")  # noqa: SIM115 - the server's stderr while it runs
        self._proc = subprocess.Popen(  # type: ignore[call-overload]
            [_bin("postgres"), "-D", str(self.data), *options], stdout=log, stderr=log, **self._user
        )
        log.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self._proc.poll() is None, f"postgres exited: {(self.folder / 'postgres.log').read_text()[-500:]}"
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    ready = subprocess.run(
                        [_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)], capture_output=True
                    )
                    if ready.returncode == 0:
                        return
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"postgres did not accept connections on port {self.port} within 20 s")

    def stop(self) -> None:
        """Fast shutdown (SIGINT: clients are disconnected) by PID; SIGKILL after 15 s."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def new_database(cluster: PgCluster, name: str) -> str:
    """A new empty database `name` in `cluster`; its SQLAlchemy URL."""
    import psycopg

    with psycopg.connect(
        f"host=127.0.0.1 port={cluster.port} user=platepilot dbname=postgres", autocommit=True
    ) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    return cluster.url.rsplit("/", 1)[0] + f"/{name}"
