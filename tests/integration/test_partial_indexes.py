"""Partial indexes on both backends, and the statements that use them.

The worker's claim, its next-due read and the lease reaper's read use the claim index
(``ix_node_runs_claim``, partial: only claimable and in-progress rows), and the run-timeout
sweep the deadline index (``ix_runs_deadline``: active runs with a deadline), so their cost
does not grow with the finished node runs and runs a database keeps.

SQLite uses a partial index only for a query whose WHERE holds the index's own predicate:
without it each claim scanned every node run of the table (13 ms per claim with 200,000
finished ones, docs/performance.md). Checked with the database's own plan of the exact
statement the store runs, and by the claims themselves on a table of finished runs.

The claim index's predicate is written with ``OR`` (migration 0011): SQLite evaluates it for
every node run inserted and every status changed, and built a temporary b-tree of a constant
``IN`` list's values each time (``OpenEphemeral`` in the statement's program). Lookups by
parent run and by ``Idempotency-Key`` use indexes that hold only the runs having one.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from engine_support import running
from migration_support import downgrade, indexes, store_at

from flowplane.engine import transitions
from flowplane.services.caller import Caller
from flowplane.status import TERMINAL_RUN
from flowplane.store import migrate
from flowplane.store import schema as t
from flowplane.store import statements as q
from flowplane.store.base import Store
from flowplane.store.tx import Tx

PARAMS = {"_now": 10**12, "_limit": 16, "_owner": "w", "_expires": 10**12 + 30_000}


def _plan(conn: sa.Connection, sql: str, params: Any) -> str:
    if conn.dialect.name == "sqlite":
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params).all()
        return "\n".join(str(row[3]) for row in rows)
    conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # a tiny table: is it usable?
    return "\n".join(str(row[0]) for row in conn.exec_driver_sql("EXPLAIN " + sql, params))


def _driver_sql(conn: sa.Connection, statement: Any, params: dict[str, Any]) -> tuple[str, Any]:
    compiled = statement.compile(dialect=conn.dialect)
    values = compiled.construct_params(params)
    if compiled.positional:
        return compiled.string, tuple(values[name] for name in compiled.positiontup)
    return compiled.string, values


@contextlib.contextmanager
def statements_sent(store: Store, wanted: Callable[[str], bool]) -> Iterator[list[Any]]:
    """The ``(statement, parameters)`` sent to the database inside the block, as the store
    sent them, of the statements ``wanted`` keeps."""
    captured: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if wanted(statement):
            captured.append((statement, parameters))

    sa.event.listen(store.engine, "before_cursor_execute", record)
    try:
        yield captured
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", record)


def test_claim_reads_use_the_claim_index(store: Store) -> None:
    with store.engine.connect() as conn:
        claim = q.CLAIM._for(conn.dialect, PARAMS).stmt
        next_due = q.NEXT_DUE._for(conn.dialect, {}).stmt
        for statement, params in ((claim, PARAMS), (next_due, {})):
            plan = _plan(conn, *_driver_sql(conn, statement, params))
            assert "ix_node_runs_claim" in plan, plan
        conn.rollback()


async def test_the_reaper_read_uses_the_claim_index(store: Store) -> None:
    with statements_sent(store, lambda sql: "lease_expires_ms <" in sql) as captured:
        await store.transact(lambda tx: tx.expired_leases())
    assert captured
    with store.engine.connect() as conn:
        plan = _plan(conn, *captured[0])
        conn.rollback()
    assert "ix_node_runs_claim" in plan, plan


async def test_claims_among_many_finished_node_runs(store: Store) -> None:
    """2,000 finished node runs and one ready one: the claim leases just the ready one."""

    def fill(tx: Tx) -> None:
        tx.conn.execute(
            sa.text(
                "INSERT INTO runs (id, workflow_name, status, namespace, document, input, "
                "created_at_ms, updated_at_ms) VALUES ('r-many', 'w', 'running', 'default', "
                "'{}', '{}', 0, 0)"
            )
        )
        rows = [
            {"run_id": "r-many", "node_id": f"n{i}", "iteration": 0, "status": "finished",
             "attempt": 1, "available_at_ms": i, "lease_epoch": 0}
            for i in range(2000)
        ]  # fmt: skip
        rows.append({**rows[0], "node_id": "due", "status": "ready", "attempt": 0})
        tx.conn.execute(sa.table("node_runs", *(sa.column(k) for k in rows[0])).insert(), rows)

    await store.transact(fill)
    claimed = await store.transact(lambda tx: tx.claim("w", 16, 30_000))
    assert [(row.node_id, row.status, row.attempt) for row in claimed] == [
        ("due", "in-progress", 1)
    ]
    assert await store.transact(lambda tx: tx.claim("w", 16, 30_000)) == []


def _index_definition(store: Store, schema: str, name: str) -> str:
    with store.engine.connect() as conn:
        if store.dialect == "sqlite":
            query = "SELECT sql FROM sqlite_master WHERE name = ?"
            return str(conn.exec_driver_sql(query, (name,)).scalar_one())
        query = "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND indexname = %s"
        return str(conn.exec_driver_sql(query, (schema, name)).scalar_one())


PARTIAL = {"ix_runs_parent": "parent_run_id", "ux_runs_idempotency": "idempotency_key"}


async def test_migration_0011_rewrites_three_indexes_and_adds_one(db: tuple[str, str]) -> None:
    async with store_at(db, "0010") as store:
        names = ["ix_node_runs_claim", *PARTIAL]
        before = {name: _index_definition(store, db[1], name) for name in names}
        assert "ix_runs_deadline" not in indexes(store, "runs")
        claim = before["ix_node_runs_claim"]
        assert ("IN (" if store.dialect == "sqlite" else "ANY (") in claim, claim
        assert not any("WHERE" in before[name] for name in PARTIAL), before
        migrate.upgrade(store)
        assert migrate.current_revision(store) == migrate.head_revision()
        claim = _index_definition(store, db[1], "ix_node_runs_claim")
        assert claim.count(" OR ") == 2 and "IN (" not in claim and "ANY" not in claim, claim
        for name, column in PARTIAL.items():
            partial = _index_definition(store, db[1], name)
            assert re.search(rf"WHERE \(?{column} IS NOT NULL", partial), partial
        deadline = _index_definition(store, db[1], "ix_runs_deadline")
        assert "deadline_ms IS NOT NULL" in deadline and "NOT IN" not in deadline, deadline
        downgrade(store, db[1], "0010")
        assert {name: _index_definition(store, db[1], name) for name in names} == before
        assert "ix_runs_deadline" not in indexes(store, "runs")


async def test_lookups_by_parent_and_by_key_use_the_partial_indexes(store: Store) -> None:
    def lookup(sql: str) -> bool:
        return "runs.parent_run_id =" in sql or "runs.idempotency_key =" in sql

    with statements_sent(store, lookup) as captured:
        await store.transact(lambda tx: tx.find_run_by_idempotency("default", "k"))
        await store.transact(lambda tx: tx.child_runs("r"))
    assert len(captured) == 2, captured
    with store.engine.connect() as conn:
        plans = [_plan(conn, *statement) for statement in captured]
        conn.rollback()
    assert "ux_runs_idempotency" in plans[0], plans[0]
    assert "ix_runs_parent" in plans[1], plans[1]


async def test_node_run_writes_build_no_temporary_btree(store: Store) -> None:
    """Every insert and update of ``node_runs`` a 3-node run makes, as the store sent it: its
    SQLite program opens no ephemeral table (a ``RETURNING`` clause needs one of its own;
    statements with one are left out)."""
    if store.dialect != "sqlite":
        pytest.skip("the program of a statement (EXPLAIN's opcodes) is SQLite's")

    def node_run_write(sql: str) -> bool:
        words = sql.split()
        writes = words[:3] in (["INSERT", "INTO", "node_runs"], ["UPDATE", "node_runs", "SET"])
        return writes and "RETURNING" not in words

    chain = {
        "name": "writes",
        "nodes": [
            {"id": f"n{i}", "type": "util.noop", **({"needs": [f"n{i - 1}"]} if i else {})}
            for i in range(3)
        ],
    }
    with statements_sent(store, node_run_write) as captured:
        async with running(store) as rt:
            run = (await rt.runs.start(Caller.system(), chain)).run.id
            assert (await rt.runs.wait(Caller.system(), run, timeout=20)).status == "finished"
    inserts = [sql for sql, _ in captured if sql.startswith("INSERT")]
    updates = [sql for sql, _ in captured if sql.startswith("UPDATE")]
    assert inserts and updates, captured
    with store.engine.connect() as conn:
        for sql, params in captured:
            rows = conn.exec_driver_sql("EXPLAIN " + sql, _first(params)).all()
            assert "OpenEphemeral" not in [row[1] for row in rows], sql
        conn.rollback()


def _first(params: Any) -> Any:
    """The parameters of one row (an ``executemany`` has a list of them)."""
    if isinstance(params, list):
        return params[0]
    return params


def test_the_deadline_predicate_names_the_terminal_statuses() -> None:
    assert sorted(re.findall(r"status <> '([^']+)'", t.DEADLINED)) == sorted(TERMINAL_RUN)


async def test_the_timeout_sweep_reads_only_active_runs_with_a_deadline(store: Store) -> None:
    """2,000 finished runs past their deadline, one running run past it and one within
    it: the sweep's plan uses the deadline index, and it times out just the one."""

    def fill(tx: Tx) -> None:
        rows = [
            {"id": f"r{i:05d}", "status": "finished", "deadline_ms": i} for i in range(2000)
        ] + [
            {"id": "due", "status": "running", "deadline_ms": 5},
            {"id": "later", "status": "running", "deadline_ms": 10**15},
        ]
        tx.conn.execute(
            sa.text(
                "INSERT INTO runs (id, workflow_name, status, namespace, document, input, "
                "created_at_ms, updated_at_ms, deadline_ms) VALUES (:id, 'w', :status, "
                "'default', '{}', '{}', 0, 0, :deadline_ms)"
            ),
            rows,
        )

    await store.transact(fill)
    with statements_sent(store, lambda sql: "deadline_ms <=" in sql) as captured:
        assert await store.transact(transitions.time_out_runs) == 1
    with store.engine.connect() as conn:
        plan = _plan(conn, *captured[0])
        statuses = dict(
            conn.execute(sa.text("SELECT id, status FROM runs WHERE id IN ('due', 'later')")).all()
        )
        conn.rollback()
    assert "ix_runs_deadline" in plan, plan
    assert statuses == {"due": "timed-out", "later": "running"}
