"""Migration 0009 on both backends: ``ix_runs_namespace_id`` (a namespace's runs in id
order), and the run list of a caller limited to namespaces reads a page, not the whole
namespace (SQLite's plan: no sort of the namespace's runs)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from migration_support import downgrade, store_at

from flowplane.store import migrate, reads
from flowplane.store import schema as t
from flowplane.store.base import Store

BEFORE = "0008"
INDEX = "ix_runs_namespace_id"


def _indexes(store: Store) -> set[str]:
    with store.engine.connect() as conn:
        return {index["name"] or "" for index in sa.inspect(conn).get_indexes("runs")}


async def test_migration_adds_the_index_and_takes_it_away(db: tuple[str, str]) -> None:
    async with store_at(db, BEFORE) as store:
        assert INDEX not in _indexes(store)
        migrate.upgrade(store)
        assert migrate.current_revision(store) == migrate.head_revision()
        assert INDEX in _indexes(store)
        downgrade(store, db[1], BEFORE)
        assert INDEX not in _indexes(store)


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
