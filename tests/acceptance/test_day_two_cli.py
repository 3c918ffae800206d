"""Day-two CLI commands: ``db prune`` (local, remote, ``--dry-run``), ``db backup`` and
``runs delete``, on SQLite and PostgreSQL and against a real ``flowplane serve``."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_support import Serve, serving
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from api_support import started

from flowplane.cli.main import app

QUICK = """
name: quick
nodes:
  - {id: a, type: util.log, params: {message: one}}
"""


def _seed(db: tuple[str, str], root: Path, count: int) -> list[str]:
    """Finish ``count`` runs on ``db`` with an in-process server; return their ids."""

    async def seed() -> list[str]:
        async with started(db, root, workers=1) as api:
            (root / "quick.yaml").write_text(QUICK)
            ids = []
            for _ in range(count):
                r = await api.client.post("/v1/runs", json={"workflowPath": "quick.yaml"})
                ids.append(r.json()["runId"])
            deadline = time.monotonic() + 30
            for run_id in ids:
                while (await api.client.get(f"/v1/runs/{run_id}")).json()["status"] != "finished":
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.05)
            return ids

    return asyncio.run(seed())


def _cli(*args: str, code: int = 0, env: dict[str, str] | None = None) -> str:
    result = CliRunner().invoke(app, list(args), env=env or {})
    assert result.exit_code == code, result.output
    return result.output


def _db_args(db: tuple[str, str]) -> list[str]:
    return ["--database-url", db[0], "--database-schema", db[1]]


def test_db_prune_local(db: tuple[str, str], tmp_path: Path) -> None:
    _seed(db, tmp_path / "root", 3)
    out = _cli("db", "prune", *_db_args(db), code=1)
    assert "no retention policy" in out
    time.sleep(1.1)  # the runs are now older than the 1s policy below
    dry = json.loads(_cli("db", "prune", *_db_args(db), "--finished", "1s", "--dry-run", "--json"))
    assert dry == {"dryRun": True, "deleted": {"default": 3}, "total": 3}
    assert "deleted 3 run(s)" in _cli("db", "prune", *_db_args(db), "--finished", "1s")
    again = json.loads(_cli("db", "prune", *_db_args(db), "--finished", "1s", "--json"))
    assert again["total"] == 0
    assert "invalid age" in _cli("db", "prune", *_db_args(db), "--finished", "soon", code=2)


def test_db_backup_sqlite(tmp_path: Path) -> None:
    db = (f"sqlite:///{tmp_path / 'fp.db'}", "flowplane")
    ids = _seed(db, tmp_path / "root", 2)
    target = tmp_path / "backup.db"
    out = _cli("db", "backup", str(target), *_db_args(db))
    assert "backed up" in out
    with sqlite3.connect(target) as copy:
        copied = {row[0] for row in copy.execute("SELECT id FROM runs")}
        assert copy.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert copied == set(ids)
    assert "exists" in _cli("db", "backup", str(target), *_db_args(db), code=1)
    _cli("db", "backup", str(target), *_db_args(db), "--force")
    missing = ("sqlite:///" + str(tmp_path / "absent.db"), "flowplane")
    assert "no SQLite database" in _cli("db", "backup", str(target), *_db_args(missing), code=1)


def test_db_backup_postgres_prints_pg_dump(tmp_path: Path) -> None:
    url = "postgresql://fp:hunter2secret@db.internal:5432/flowplane"
    out = _cli(
        "db",
        "backup",
        str(tmp_path / "fp.dump"),
        "--database-url",
        url,
        "--database-schema",
        "prod",
    )
    assert "pg_dump --schema prod --format custom --file" in out
    assert "hunter2secret" not in out


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    base = tmp_path_factory.mktemp("day-two")
    root = base / "root"
    root.mkdir()
    (root / "quick.yaml").write_text(QUICK)
    env = {"FLOWPLANE_RETENTION_FINISHED": "1s", "FLOWPLANE_RETENTION_INTERVAL_SECONDS": "3600"}
    with serving(base, f"sqlite:///{base / 'fp.db'}", root=root, env=env) as running:
        yield running


def _start_and_finish(server: Serve) -> str:
    r = httpx.post(
        f"{server.url}/v1/runs", json={"workflowPath": "quick.yaml"}, headers=server.headers
    )
    run_id: str = r.json()["runId"]
    deadline = time.monotonic() + 30
    while (
        httpx.get(f"{server.url}/v1/runs/{run_id}", headers=server.headers).json()["status"]
        != "finished"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return run_id


def test_runs_delete_and_remote_prune(server: Serve) -> None:
    first, second, third = (_start_and_finish(server) for _ in range(3))
    out = _cli("runs", "delete", first, env=server.env)
    assert f"Run {first} deleted" in out
    assert httpx.get(f"{server.url}/v1/runs/{first}", headers=server.headers).status_code == 404
    assert "RUN_NOT_FOUND" in _cli("runs", "delete", first, env=server.env, code=1)

    time.sleep(1.1)
    remote = ["db", "prune", "--server", server.url, "--token", server.key, "--json"]
    dry: dict[str, Any] = json.loads(_cli(*remote, "--dry-run"))
    assert dry["dryRun"] is True and dry["total"] == 2
    assert json.loads(_cli(*remote))["deleted"] == {"default": 2}
    for run_id in (second, third):
        assert (
            httpx.get(f"{server.url}/v1/runs/{run_id}", headers=server.headers).status_code == 404
        )
