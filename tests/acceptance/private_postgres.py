"""A private PostgreSQL cluster a test may stop, restart and crash (``initdb`` into a
temporary folder, its own port and socket folder).

The shared server the rest of the suite uses is never touched. As root, the cluster's
commands run as the ``postgres`` user (PostgreSQL refuses to run as root), the way
``scripts/ensure-postgres.sh`` makes its own cluster.
"""

from __future__ import annotations

import glob
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

RESTART_MODES = ("fast", "immediate")


def postgres_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/*/bin`` that has ``initdb``, if any."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: [int(x) for x in Path(p).parent.parent.name.split(".") if x.isdigit()],
    )
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateCluster:
    """One throw-away cluster: :meth:`start`, :meth:`stop`, :meth:`restart`, :meth:`remove`."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        # Not under pytest's tmp_path: as root, its parent folders are closed to postgres.
        self.folder = Path(tempfile.mkdtemp(prefix="fp-private-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            uid = pwd.getpwnam("postgres").pw_uid
            os.chown(self.folder, uid, -1)
        self._run(
            self.bin / "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
        )

    def _run(self, *argv: object, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(a) for a in argv]
        if self._as_postgres:
            command = ["su", "postgres", "-s", "/bin/sh", "-c", shlex.join(command)]
        return subprocess.run(command, capture_output=True, text=True, check=check, timeout=120)

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c max_connections=200"
        )
        pg_ctl = self.bin / "pg_ctl"
        self._run(pg_ctl, "-D", self.data, "-o", options, "-l", self.log, "-w", "start")
        self.wait_ready()

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (clients disconnected, clean shutdown) or
        ``immediate`` (processes killed, crash recovery at the next start)."""
        self._run(self.bin / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop")

    def restart(self, mode: str, down_seconds: float = 0.0) -> None:
        """Stop with ``mode``, stay down ``down_seconds``, start again."""
        self.stop(mode)
        time.sleep(down_seconds)
        self.start()

    def running(self) -> bool:
        """Whether the server runs."""
        status = self._run(self.bin / "pg_ctl", "-D", self.data, "status", check=False)
        return status.returncode == 0

    def wait_ready(self, timeout: float = 60) -> None:
        """Wait until the server accepts connections."""
        deadline = time.monotonic() + timeout
        while True:
            probe = self._run(
                self.bin / "pg_isready", "-q", "-h", "127.0.0.1", "-p", self.port, check=False
            )
            if probe.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"private PostgreSQL did not start:\n{self.server_log()}")
            time.sleep(0.1)

    def server_log(self) -> str:
        """The tail of the server's log."""
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def remove(self) -> None:
        """Stop the server (if it runs) and delete its folder."""
        if self.running():
            self._run(self.bin / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)
