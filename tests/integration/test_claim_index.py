"""The worker's claim, its next-due read and the lease reaper's read use the claim index
(``ix_node_runs_claim``, partial: only claimable and in-progress rows) on both backends,
so their cost does not grow with the finished node runs a database keeps.

SQLite uses a partial index only for a query whose WHERE holds the index's own predicate:
without it each claim scanned every node run of the table (13 ms per claim with 200,000
finished ones, docs/performance.md). Checked with the database's own plan of the exact
statement the store runs, and by the claims themselves on a table of finished runs.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

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


def test_claim_reads_use_the_claim_index(store: Store) -> None:
    with store.engine.connect() as conn:
        claim = q.CLAIM._for(conn.dialect, PARAMS).stmt
        next_due = q.NEXT_DUE._for(conn.dialect, {}).stmt
        for statement, params in ((claim, PARAMS), (next_due, {})):
            plan = _plan(conn, *_driver_sql(conn, statement, params))
            assert "ix_node_runs_claim" in plan, plan
        conn.rollback()


async def test_the_reaper_read_uses_the_claim_index(store: Store) -> None:
    captured: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if "lease_expires_ms <" in statement:
            captured.append((statement, parameters))

    sa.event.listen(store.engine, "before_cursor_execute", record)
    try:
        await store.transact(lambda tx: tx.expired_leases())
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", record)
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
