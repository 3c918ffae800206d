"""Migration 0009 on both backends: ``ix_runs_namespace_id`` and ``ix_runs_status_id`` (a
namespace's and a status's runs in id order), and the run list of a caller limited to
namespaces, or filtered by status, reads a page, not every such run (SQLite's plan: no
sort)."""

from __future__ import annotations

from typing import Any

from migration_support import downgrade, indexes, store_at

from flowplane.store import migrate, reads
from flowplane.store import schema as t
from flowplane.store.base import Store

BEFORE = "0008"
INDEX = "ix_runs_namespace_id"


def _indexes(store: Store) -> set[str]:
    return indexes(store, "runs")


async def test_migration_adds_the_index_and_takes_it_away(db: tuple[str, str]) -> None:
    async with store_at(db, BEFORE) as store:
        before = _indexes(store)
        assert INDEX not in before and "ix_runs_status" in before
        migrate.upgrade(store)
        assert migrate.current_revision(store) == migrate.head_revision()
        after = _indexes(store)
        assert {INDEX, "ix_runs_status_id"} <= after and "ix_runs_status" not in after
        downgrade(store, db[1], BEFORE)
        assert _indexes(store) == before


async def test_a_namespace_page_is_read_in_index_order(store: Store) -> None:
    def fill(tx: Any) -> None:
        rows = [
            {"id": f"r{i:06d}", "namespace": "team" if i % 3 else "other",
             "workflow_name": "w", "document": {}, "input": {}, "status": "finished",
             "created_at_ms": i, "updated_at_ms": i}
            for i in range(600)
        ]  # fmt: skip
        tx.conn.execute(t.runs.insert(), rows)

    await store.transact(fill)
    page = await store.read(lambda tx: reads.run_summaries(tx, namespaces=["team"], limit=5))
    assert [run.id for run in page] == ["r000599", "r000598", "r000596", "r000595", "r000593"]
    finished = await store.read(lambda tx: reads.run_summaries(tx, statuses=["finished"], limit=2))
    assert [run.id for run in finished] == ["r000599", "r000598"]
    if store.dialect != "sqlite":
        return
    with store.engine.connect() as conn:
        plan = conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT id FROM runs WHERE namespace IN (?) ORDER BY id DESC"
            " LIMIT 5",
            ("team",),
        ).all()
    steps = [str(row[3]) for row in plan]
    assert any(INDEX in step for step in steps), steps
    assert not any("TEMP B-TREE" in step for step in steps), steps
    with store.engine.connect() as conn:
        plan = conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT id FROM runs WHERE status IN (?) ORDER BY id DESC LIMIT 5",
            ("finished",),
        ).all()
    steps = [str(row[3]) for row in plan]
    assert any("ix_runs_status_id" in step for step in steps), steps
    assert not any("TEMP B-TREE" in step for step in steps), steps
