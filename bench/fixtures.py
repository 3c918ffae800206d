"""What the API benchmarks share: a free port, a fresh database per backend and py-spy.

Imported as a sibling module (``python bench/api.py`` puts ``bench/`` on ``sys.path``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

POSTGRES_URL = os.environ.get(
    "FLOWPLANE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
PY_SPY = Path(sys.executable).parent / "py-spy"


def free_port() -> int:
    """A free TCP port on localhost."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def database(backend: str, work: Path) -> Iterator[tuple[str, str]]:
    """A fresh database: a SQLite file, or a throw-away PostgreSQL schema."""
    if backend == "sqlite":
        yield f"sqlite:///{work / 'bench.db'}", "flowplane"
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    try:
        yield POSTGRES_URL, schema
    finally:
        import psycopg

        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def start_py_spy(pid: int, target: str, seconds: float) -> subprocess.Popen[bytes] | None:
    """py-spy recording ``pid`` for ``seconds`` into ``target`` (None without py-spy)."""
    if not PY_SPY.exists():
        print(f"py-spy not found at {PY_SPY}: no profile", file=sys.stderr)
        return None
    fmt = "raw" if target.endswith(".txt") else "flamegraph"
    cmd = [str(PY_SPY), "record", "-p", str(pid), "-d", str(int(seconds)), "-o", target]
    cmd += ["-f", fmt, "-r", "200", "--nonblocking"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not ended within 30 s."""
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
