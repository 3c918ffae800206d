"""Migration 0010 on both backends: ``ix_runs_workflow_name_id`` and
``ix_runs_workflow_id_id``; a run list filtered by workflow (by name or by id) pages in id
order, with every other filter, and reads a page from each index, not every run of the
workflow (SQLite's plan: both indexes, no scan of ``runs``)."""

from __future__ import annotations

from typing import Any

from migration_support import downgrade, indexes, store_at

from flowplane.store import migrate, reads
from flowplane.store import schema as t
from flowplane.store.base import Store

BEFORE = "0009"
INDEXES = {"ix_runs_workflow_name_id", "ix_runs_workflow_id_id"}


def _indexes(store: Store) -> set[str]:
    return indexes(store, "runs")


async def test_migration_adds_the_indexes_and_takes_them_away(db: tuple[str, str]) -> None:
    async with store_at(db, BEFORE) as store:
        before = _indexes(store)
        assert not INDEXES & before
        migrate.upgrade(store)
        assert migrate.current_revision(store) == migrate.head_revision()
        assert INDEXES <= _indexes(store)
        downgrade(store, db[1], BEFORE)
        assert _indexes(store) == before


def _run(i: int, name: str, workflow_id: str | None, **more: Any) -> dict[str, Any]:
    row = {"id": f"r{i:06d}", "namespace": "team" if i % 2 else "other",
           "workflow_name": name, "workflow_id": workflow_id, "document": {}, "input": {},
           "status": "failed" if i % 5 == 0 else "finished",
           "created_at_ms": i, "updated_at_ms": i}  # fmt: skip
    return row | more


async def test_a_workflow_page_by_name_or_id_in_id_order(store: Store) -> None:
    def fill(tx: Any) -> None:
        rows = []
        for i in range(900):
            if i % 3 == 0:
                rows.append(_run(i, "billing", "wf_billing"))  # a stored workflow's runs
            elif i % 3 == 1:
                rows.append(_run(i, "billing", None))  # ad-hoc runs of a document named so
            else:
                rows.append(_run(i, "other", "wf_other"))
        # A run whose name is a workflow id: listed once for that id.
        rows.append(_run(900, "wf_billing", "wf_billing"))
        tx.conn.execute(t.runs.insert(), rows)

    await store.transact(fill)

    async def ids(**filters: Any) -> list[str]:
        page = await store.read(lambda tx: reads.run_summaries(tx, **filters))
        return [run.id for run in page]

    expected_name = [f"r{i:06d}" for i in range(899, -1, -1) if i % 3 != 2]
    assert await ids(workflow="billing", limit=5) == expected_name[:5]
    assert (
        await ids(workflow="billing", limit=5, before_id="r000800")
        == [i for i in expected_name if i < "r000800"][:5]
    )
    by_id = ["r000900", *(f"r{i:06d}" for i in range(897, -1, -3))]
    assert await ids(workflow="wf_billing", limit=4) == by_id[:4]
    # Every other filter holds in both halves.
    page = await store.read(
        lambda tx: reads.run_summaries(
            tx, workflow="wf_billing", namespaces=["team"], statuses=["failed"], limit=3
        )
    )
    assert [run.id for run in page] == ["r000885", "r000855", "r000825"]
    assert all(run.workflow_id == "wf_billing" for run in page)
    assert await ids(workflow="nothing", limit=5) == []
    # Paging all the way gives every run of the workflow once, newest first.
    seen: list[str] = []
    cursor: str | None = None
    while True:
        got = await ids(workflow="billing", limit=50, before_id=cursor)
        if not got:
            break
        seen += got
        cursor = got[-1]
    assert seen == expected_name

    if store.dialect != "sqlite":
        return
    statement = reads._summary_query(False, {"_workflow": "billing", "_limit": 5})
    sql = str(statement.compile(dialect=store.engine.dialect))
    with store.engine.connect() as conn:
        plan = conn.exec_driver_sql(
            f"EXPLAIN QUERY PLAN {sql}",  # (SQLite's LIMIT comes with an OFFSET)
            ("billing", 5, 0, "billing", "billing", 5, 0, 5, 0),
        ).all()
    steps = [str(row[3]) for row in plan]
    assert any("ix_runs_workflow_name_id" in step for step in steps), steps
    assert any("ix_runs_workflow_id_id" in step for step in steps), steps
    assert not any(step.startswith("SCAN runs") for step in steps), steps
    # Each half reads its index in order (no sort of the workflow's runs): only the few
    # rows of the two pages are sorted, outside the halves.
    halves = {row[0] for row in plan if str(row[3]).startswith("CO-ROUTINE")}
    assert len(halves) == 2, steps
    assert not any(row[1] in halves and "TEMP B-TREE" in str(row[3]) for row in plan), steps
