"""Hot statements keep a plan whose cost does not grow with the table (PostgreSQL).

A prepared statement gets a generic plan after five runs and keeps it until the table's
statistics change: when that happens while the tables are young (a fresh install, a fresh
schema), a poorly written predicate can leave the planner scanning a status index's
rows instead of looking one row up by its id, a cost that then grows with every node run
ever finished."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from engine_support import running

from conftest import POSTGRES_URL, drop_schema, require_postgres
from flowplane.services.caller import Caller
from flowplane.store.base import Store
from flowplane.store.postgres import _lock_and_finish_items
from flowplane.store.prepared import Prepared
from flowplane.store.statements import GATED_CLAIM_PENDING


def generic_plan(schema: str, stmt: Prepared, store: Store, params: dict[str, Any]) -> str:
    """The generic plan of ``stmt`` for ``params`` (statement literals bound as themselves):
    what a connection keeps once it has run the statement five times."""
    compiled = stmt._for(store.engine.dialect, params)
    sql, names = compiled.numbered_sql(store.engine.dialect)
    values = [params[n] if n in params else compiled.compiled.binds[n].value for n in names]
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        conn.execute("SET plan_cache_mode = force_generic_plan")
        conn.execute(f"PREPARE probe AS {sql}", prepare=False)
        cursor = psycopg.ClientCursor(conn)
        marks = ", ".join(["%s"] * len(values))
        cursor.execute(f"EXPLAIN EXECUTE probe({marks})", values)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.fixture
async def pg_store() -> AsyncIterator[tuple[Store, str]]:
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    store = await Store.open(POSTGRES_URL, schema=schema)
    # Young tables, never analyzed (what this file is about): autovacuum, where it is on,
    # would analyze node_runs after ~50 changes and the planner would then choose well
    # with either form of the statement.
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        for table in ("node_runs", "runs"):
            conn.execute(f'ALTER TABLE "{schema}".{table} SET (autovacuum_enabled = off)')
    try:
        yield store, schema
    finally:
        await store.close()
        drop_schema(schema)


async def test_gated_claim_looks_the_finished_row_up_by_id(pg_store: tuple[Store, str]) -> None:
    store, schema = pg_store
    async with running(store) as rt:
        chain = {
            "name": "plans",
            "nodes": [
                {"id": f"n{i}", "type": "util.noop", **({"needs": [f"n{i - 1}"]} if i else {})}
                for i in range(5)
            ],
        }
        for _ in range(3):
            run = (await rt.runs.start(Caller.system(), chain)).run.id
            assert (await rt.runs.wait(Caller.system(), run, timeout=20)).status == "finished"
    params: dict[str, Any] = {
        "_run": "r",
        "_node": "n",
        "_iteration": 0,
        "_now": 1,
        "_owner": "w",
        "_expires": 2,
        "_done": 1,
        "_epoch": 1,
    }
    plan = generic_plan(schema, GATED_CLAIM_PENDING, store, params)
    # The finished node run ("done") by its primary key, never by the status index.
    assert "node_runs_pkey on node_runs done" in plan, plan
    assert "ix_node_runs_claim on node_runs done" not in plan, plan


async def test_group_finish_looks_each_item_up_by_id(pg_store: tuple[Store, str]) -> None:
    # The fenced finish of a group of foreach items (worker group completions): each
    # listed node run by its primary key, whatever the table holds.
    store, schema = pg_store
    async with running(store) as rt:
        fan = {
            "name": "plans-fan",
            "nodes": [{"id": "fan", "type": "util.noop", "foreach": list(range(40))}],
        }
        for _ in range(3):
            run = (await rt.runs.start(Caller.system(), fan)).run.id
            assert (await rt.runs.wait(Caller.system(), run, timeout=20)).status == "finished"
    params: dict[str, Any] = {"_run": "r", "_now": 1, "_i0": 1, "_e0": 1, "_o0": "null"}
    params.update({"_i1": 2, "_e1": 1, "_o1": "2"})
    plan = generic_plan(schema, _lock_and_finish_items(2), store, params)
    assert plan.count("node_runs_pkey on node_runs") == 2, plan
    assert "Seq Scan on node_runs" not in plan, plan
    assert "ix_node_runs" not in plan, plan
