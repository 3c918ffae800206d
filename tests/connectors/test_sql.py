"""sql.*: real PostgreSQL and SQLite; values are always bound, never spliced."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from connector_kit import assert_manifests, make_ctx

from flowplane.connectors.builtin import sql as m
from flowplane.errors import ConnectorError, NetworkPolicyViolation

PG_URL = os.environ.get("FLOWPLANE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
INJECTIONS = ["'; DROP TABLE {table};--", "$(id)", "; rm -rf /", "x' OR '1'='1", "\\x00%s%%"]


def _pg_up() -> bool:
    try:
        with psycopg.connect(PG_URL, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


@pytest.fixture
def pg_table() -> Iterator[str]:
    if not _pg_up():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is required in CI")
        pytest.skip("PostgreSQL not available")
    table = f"fp_sql_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, name text, score numeric)")
    yield table
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Path:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, score REAL)")
    return path


def test_manifests() -> None:
    assert_manifests(m, minimum=2)


async def test_postgres_roundtrip_and_injection(tmp_path: Path, pg_table: str) -> None:
    ctx = make_ctx(tmp_path, credentials={"DB": PG_URL})
    names = [s.format(table=pg_table) for s in INJECTIONS]
    ins = await m.sql_execute_many(
        {
            "credential": "DB",
            "sql": f"INSERT INTO {pg_table} (name, score) VALUES (%s, %s)",
            "rows": [[n, i + 0.5] for i, n in enumerate(names)],
        },
        ctx,
    )
    assert ins["affected"] == len(names)
    out = await m.sql_query(
        {
            "credential": "DB",
            "sql": f"SELECT name, score FROM {pg_table} WHERE name = %(n)s",
            "params": {"n": names[0]},
        },
        ctx,
    )
    assert out["rows"] == [{"name": names[0], "score": 0.5}] and out["columns"] == ["name", "score"]
    everything = await m.sql_query(
        {"credential": "DB", "sql": f"SELECT name FROM {pg_table} ORDER BY id", "max_rows": 2}, ctx
    )
    assert everything["row_count"] == 2 and everything["truncated"] is True
    stored = await m.sql_query(
        {"credential": "DB", "sql": f"SELECT count(*) AS n FROM {pg_table}"}, ctx
    )
    assert stored["rows"] == [{"n": len(names)}]  # the table survived every payload
    upd = await m.sql_query(
        {"credential": "DB", "sql": f"UPDATE {pg_table} SET score = 0", "params": []}, ctx
    )
    assert upd["affected"] == len(names) and upd["rows"] == []


async def test_postgres_errors(tmp_path: Path, pg_table: str) -> None:
    ctx = make_ctx(
        tmp_path, credentials={"DB": PG_URL, "BAD": "postgresql://u:hunter22@127.0.0.1:1/x"}
    )
    with pytest.raises(ConnectorError) as err:
        await m.sql_query({"credential": "DB", "sql": "SELEC nonsense"}, ctx)
    assert not err.value.retryable
    with pytest.raises(ConnectorError, match="read-only"):
        await m.sql_query(
            {"credential": "DB", "read_only": True, "sql": f"DELETE FROM {pg_table}"}, ctx
        )
    with pytest.raises(ConnectorError, match="longer than"):
        await m.sql_query({"credential": "DB", "sql": "SELECT pg_sleep(3)", "timeout": 0.3}, ctx)
    with pytest.raises(ConnectorError) as err:  # two statements with params are refused
        await m.sql_query(
            {"credential": "DB", "sql": f"SELECT %s; DROP TABLE {pg_table}", "params": [1]}, ctx
        )
    with pytest.raises(ConnectorError) as err:
        await m.sql_query({"credential": "BAD", "sql": "SELECT 1", "timeout": 2}, ctx)
    assert err.value.retryable and "hunter22" not in str(err.value.detail)
    blocked = make_ctx(tmp_path, credentials={"DB": PG_URL}, allow_hosts=[])
    with pytest.raises(NetworkPolicyViolation):
        await m.sql_query({"credential": "DB", "sql": "SELECT 1"}, blocked)


async def test_sqlite_via_credential_and_sandbox(tmp_path: Path, sqlite_db: Path) -> None:
    ctx = make_ctx(tmp_path, credentials={"DB": f"sqlite:///{sqlite_db}"})
    for name in INJECTIONS:
        await m.sql_query(
            {
                "credential": "DB",
                "sql": "INSERT INTO items (name) VALUES (?)",
                "params": [name.format(table="items")],
            },
            ctx,
        )
    out = await m.sql_query(
        {
            "credential": "DB",
            "sql": "SELECT name FROM items WHERE name = :n",
            "params": {"n": "$(id)"},
        },
        ctx,
    )
    assert out["rows"] == [{"name": "$(id)"}]
    count = await m.sql_query({"credential": "DB", "sql": "SELECT count(*) AS n FROM items"}, ctx)
    assert count["rows"] == [{"n": len(INJECTIONS)}]
    with pytest.raises(ConnectorError):  # sqlite3 executes one statement only
        await m.sql_query({"credential": "DB", "sql": "SELECT 1; DROP TABLE items"}, ctx)
    with pytest.raises(ConnectorError, match="readonly"):
        await m.sql_query({"credential": "DB", "sql": "DELETE FROM items", "read_only": True}, ctx)
    with pytest.raises(ConnectorError, match="longer than"):
        await m.sql_query(
            {
                "credential": "DB",
                "timeout": 0.2,
                "sql": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                "SELECT count(*) FROM c",
            },
            ctx,
        )
    sandboxed = await m.sql_query(
        {"sqlite_file": "local.db", "sql": "CREATE TABLE t (x BLOB)"}, ctx
    )
    assert sandboxed["rows"] == []
    assert (tmp_path / "files" / "default" / "local.db").exists()
    await m.sql_query(
        {"sqlite_file": "local.db", "sql": "INSERT INTO t VALUES (?)", "params": [None]}, ctx
    )
    with pytest.raises(ConnectorError, match=r"'\.\.'"):
        await m.sql_query({"sqlite_file": "../app.db", "sql": "SELECT 1"}, ctx)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "give 'credential'"),
        ({"credential": "NOPE"}, "not available"),
        ({"credential": "MYSQL"}, "unsupported"),
        ({"credential": "DB", "sqlite_file": "x.db"}, "not both"),
    ],
)
async def test_bad_targets(tmp_path: Path, params: dict[str, Any], message: str) -> None:
    ctx = make_ctx(tmp_path, credentials={"MYSQL": "mysql://x", "DB": "sqlite:///x.db"})
    with pytest.raises(ConnectorError, match=message):
        await m.sql_query({"sql": "SELECT 1", **params}, ctx)


@pytest.mark.parametrize(
    "sql",
    [
        "VACUUM INTO '{target}'",
        "ATTACH DATABASE '{target}' AS other",
        "ATTACH DATABASE 'file:{target}?mode=rwc' AS other",
        "DETACH DATABASE main",
        "SELECT load_extension('{target}')",
        "PRAGMA temp_store_directory = '{folder}'",
    ],
)
@pytest.mark.parametrize("via", ["credential", "sqlite_file"])
async def test_sqlite_statements_touch_no_other_file(
    tmp_path: Path, sqlite_db: Path, sql: str, via: str
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = elsewhere / "copy.db"
    ctx = make_ctx(tmp_path, credentials={"DB": f"sqlite:///{sqlite_db}"})
    where = {"credential": "DB"} if via == "credential" else {"sqlite_file": "app.db"}
    with pytest.raises(ConnectorError, match="not authorized") as info:
        await m.sql_query({**where, "sql": sql.format(target=target, folder=elsewhere)}, ctx)
    assert info.value.retryable is False
    assert list(elsewhere.iterdir()) == []
    # The connector's own database still works, VACUUM in place included.
    await m.sql_query({**where, "sql": "VACUUM"}, ctx)
