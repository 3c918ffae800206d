"""Real ``flowplane serve`` processes for acceptance tests: start, wait until ready, stop.

Each server is a separate interpreter running ``python -m flowplane serve`` on a free port,
with its output in a log file (shown when it fails to start)::

    with serving(tmp_path, f"sqlite:///{tmp_path / 'fp.db'}") as server:
        httpx.get(f"{server.url}/v1/runs", headers=server.headers)
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

SERVE_COMMAND = (sys.executable, "-m", "flowplane", "serve")
START_SECONDS = 60.0
STOP_SECONDS = 30.0
POLL_SECONDS = 0.2


@dataclass
class Serve:
    """A running ``flowplane serve``."""

    url: str
    key: str
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def headers(self) -> dict[str, str]:
        """The admin key as a bearer token."""
        return {"Authorization": f"Bearer {self.key}"}

    @property
    def env(self) -> dict[str, str]:
        """``FLOWPLANE_URL`` and ``FLOWPLANE_TOKEN`` for CLI commands against this server."""
        return {"FLOWPLANE_URL": self.url, "FLOWPLANE_TOKEN": self.key}

    def stop(self, timeout: float = STOP_SECONDS) -> float:
        """SIGTERM (SIGKILL after ``timeout``); return the seconds it took to exit."""
        started = time.monotonic()
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return time.monotonic() - started


def new_key() -> str:
    """A fresh admin API key in Flowplane's format."""
    return f"fp_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def spawn(
    base: Path,
    database_url: str,
    *args: str,
    key: str | None = None,
    root: Path | None = None,
    name: str = "serve",
    env: Mapping[str, str] | None = None,
) -> Serve:
    """Start ``flowplane serve`` in ``base`` without waiting for it (see :func:`wait_ready`).

    Args:
        base: working directory; holds the log (``<name>.log``) and the data directory.
        database_url: the ``--database-url``.
        args: more ``serve`` arguments (``--workers 0``, ``--database-schema s``, ...).
        key: the admin key (``FLOWPLANE_ADMIN_KEY``); a new one by default.
        root: the ``--root`` folder (default ``base``).
        name: names the log file, when several servers share ``base``.
        env: more environment variables.
    """
    base.mkdir(parents=True, exist_ok=True)
    key = key or new_key()
    port = free_port()
    environment = {
        **os.environ,
        "FLOWPLANE_ADMIN_KEY": key,
        "FLOWPLANE_POLL_INTERVAL_SECONDS": "0.2",
        "FLOWPLANE_DATA_DIR": str(base / "data"),
        **(env or {}),
    }
    cmd = [*SERVE_COMMAND, "--port", str(port), "--database-url", database_url]
    cmd += ["--root", str(root or base), *args]
    log = base / f"{name}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, env=environment, stdout=out, stderr=subprocess.STDOUT, cwd=base
        )
    return Serve(f"http://127.0.0.1:{port}", key, proc, log)


def wait_ready(*servers: Serve, path: str = "/health", timeout: float = START_SECONDS) -> None:
    """Wait until every server answers 200 on ``path``.

    Raises:
        RuntimeError: one exited or was not ready in time (with its log); all are stopped.
    """
    import httpx

    deadline = time.monotonic() + timeout
    for server in servers:
        while True:
            try:
                if httpx.get(f"{server.url}{path}", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.proc.poll() is not None or time.monotonic() > deadline:
                for other in servers:
                    other.stop()
                raise RuntimeError(server.log.read_text())
            time.sleep(POLL_SECONDS)


@contextlib.contextmanager
def serving(
    base: Path,
    database_url: str,
    *args: str,
    key: str | None = None,
    root: Path | None = None,
    env: Mapping[str, str] | None = None,
    ready_path: str = "/health",
) -> Iterator[Serve]:
    """:func:`spawn` a server, wait until :func:`wait_ready`, and stop it on exit."""
    server = spawn(base, database_url, *args, key=key, root=root, env=env)
    wait_ready(server, path=ready_path)
    try:
        yield server
    finally:
        if server.proc.poll() is None:
            server.stop()
