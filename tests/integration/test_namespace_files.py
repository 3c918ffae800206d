"""Every file a connector touches stays in its namespace's folder: an editor of ``team-a``
reaches nothing of ``team-b`` (nor anything else on the server) through SQL, file or email
connectors. Through the HTTP API with a worker, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from api_support import ApiHarness, started


@pytest.fixture
async def api(db: tuple[str, str], tmp_path: Path) -> AsyncIterator[ApiHarness]:
    async with started(db, tmp_path / "root", workers=1) as harness:
        yield harness


def folder(api: ApiHarness, namespace: str) -> Path:
    path = api.settings.data_dir / "files" / namespace
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


async def run_as(api: ApiHarness, key: str, node: dict[str, Any]) -> dict[str, Any]:
    """Run a one-node workflow in ``team-a`` as ``key``; return ``GET /v1/runs/{id}``."""
    headers = api.auth(key)
    doc = {"name": f"probe-{time.monotonic_ns()}", "namespace": "team-a", "nodes": [node]}
    wf = await api.client.post("/v1/workflows", json=doc, headers=headers)
    assert wf.status_code == 201, wf.text
    r = await api.client.post(
        "/v1/runs", json={"workflowId": wf.json()["id"], "input": {}}, headers=headers
    )
    assert r.status_code == 200, r.text
    run_id = r.json()["runId"]
    deadline = time.monotonic() + 20
    while True:
        run: dict[str, Any] = (await api.client.get(f"/v1/runs/{run_id}")).json()
        if run["status"] in ("finished", "failed", "cancelled", "timed_out"):
            return run
        assert time.monotonic() < deadline, run
        await asyncio.sleep(0.1)


def sql(statement: str, sqlite_file: str = "a.db") -> dict[str, Any]:
    return {
        "id": "q",
        "type": "sql.query",
        "params": {"sqlite_file": sqlite_file, "sql": statement},
    }


async def test_sqlite_statements_cannot_write_files_elsewhere(api: ApiHarness) -> None:
    editor = await api.key("editor", ["team-a"])
    other, outside = folder(api, "team-b"), api.root.parent / "outside"
    outside.mkdir()
    ok = await run_as(api, editor, sql("CREATE TABLE t (x INTEGER)"))
    assert ok["status"] == "finished", ok
    for target in (other / "stolen.db", outside / "anywhere.db", Path("../team-b/rel.db")):
        for statement in (
            f"VACUUM INTO '{target}'",
            f"ATTACH DATABASE '{target}' AS x",
            f"ATTACH DATABASE 'file:{target}?mode=rwc' AS x",
        ):
            run = await run_as(api, editor, sql(statement))
            assert run["status"] == "failed", (statement, run)
            assert "not authorized" in str(run), run
    for statement in ("SELECT load_extension('/tmp/evil')", "PRAGMA temp_store_directory='/tmp'"):
        run = await run_as(api, editor, sql(statement))
        assert run["status"] == "failed", (statement, run)
    assert list(other.iterdir()) == [] and list(outside.iterdir()) == []
    # Plain VACUUM on its own database is fine.
    assert (await run_as(api, editor, sql("VACUUM")))["status"] == "finished"


async def test_paths_cannot_leave_the_namespace_folder(api: ApiHarness) -> None:
    editor = await api.key("editor", ["team-a"])
    mine, other = folder(api, "team-a"), folder(api, "team-b")
    (other / "secret.txt").write_text("team-b only")
    (other / "b.db").write_bytes(b"")
    (mine / "link-to-b").symlink_to(other, target_is_directory=True)
    (mine / "secret-link.txt").symlink_to(other / "secret.txt")
    (mine / "b-link.db").symlink_to(other / "b.db")
    escapes = [
        "../team-b/secret.txt",
        str(other / "secret.txt"),
        "link-to-b/secret.txt",
        "secret-link.txt",
        "./x/../../team-b/secret.txt",
    ]
    for path in escapes:
        read = await run_as(api, editor, {"id": "r", "type": "file.read", "params": {"path": path}})
        assert read["status"] == "failed" and "team-b only" not in str(read), (path, read)
        write = {"id": "w", "type": "file.write", "params": {"path": path, "content": "pwned"}}
        assert (await run_as(api, editor, write))["status"] == "failed", path
    for path in escapes:
        for type_ in ("file.delete", "file.stat", "file.list"):
            probe = {"id": "p", "type": type_, "params": {"path": path}}
            run = await run_as(api, editor, probe)
            assert run["status"] == "failed", (type_, path, run)
            assert "secret.txt" not in str(run["output"]), (type_, path, run)
    listing = {"id": "l", "type": "file.list", "params": {"path": "link-to-b"}}
    assert (await run_as(api, editor, listing))["status"] == "failed"
    recursive = {"id": "l", "type": "file.list", "params": {"recursive": True}}
    run = await run_as(api, editor, recursive)
    assert run["status"] == "finished", run
    (node,) = run["nodes"]
    listed = json.dumps(node["output"])
    # The links are listed as entries of team-a; nothing behind them is.
    assert "link-to-b/" not in listed and "b.db" not in listed.replace("b-link.db", ""), listed
    for path in ("../team-b/b.db", str(other / "b.db"), "b-link.db", "link-to-b/b.db"):
        run = await run_as(api, editor, sql("CREATE TABLE pwned (x)", sqlite_file=path))
        assert run["status"] == "failed", (path, run)
    assert (other / "secret.txt").read_text() == "team-b only"
    assert (other / "b.db").read_bytes() == b""
    # Inside the folder everything works.
    write = {"id": "w", "type": "file.write", "params": {"path": "in/ok.txt", "content": "ok"}}
    assert (await run_as(api, editor, write))["status"] == "finished"
    assert (mine / "in" / "ok.txt").read_text() == "ok"


async def test_attachments_and_shell_folders_stay_in_the_namespace(
    db: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The SMTP server is never reached: the attachment is refused while building the message.
    monkeypatch.setenv("FLOWPLANE_SECRET_SMTP_URL", "smtp://127.0.0.1:1")
    async with started(db, tmp_path / "root", workers=1, enable_shell=True) as api:
        editor = await api.key("editor", ["team-a"])
        mine, other = folder(api, "team-a"), folder(api, "team-b")
        (other / "secret.txt").write_text("team-b only")
        (mine / "link-to-b").symlink_to(other, target_is_directory=True)
        for path in ("../team-b/secret.txt", str(other / "secret.txt"), "link-to-b/secret.txt"):
            mail = {
                "id": "m",
                "type": "email.send",
                "params": {
                    "credential": "SMTP_URL",
                    "from": "a@example.com",
                    "to": ["b@example.com"],
                    "subject": "x",
                    "text": "x",
                    "attachments": [{"path": path}],
                },
            }
            run = await run_as(api, editor, mail)
            assert run["status"] == "failed", (path, run)
            error = json.dumps(run["error"])
            assert "SMTP" not in error and "team-b only" not in json.dumps(run), error
        for cwd in ("../team-b", str(other), "link-to-b"):
            shell = {"id": "s", "type": "system.shell", "params": {"command": ["ls"], "cwd": cwd}}
            run = await run_as(api, editor, shell)
            assert run["status"] == "failed" and "secret.txt" not in json.dumps(run), (cwd, run)
        shell = {"id": "s", "type": "system.shell", "params": {"command": ["pwd"]}}
        run = await run_as(api, editor, shell)
        assert run["status"] == "finished" and str(mine) in json.dumps(run["nodes"]), run
