"""The store contract on both backends: migrations, events, claims."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from flowplane.store.base import Store
from flowplane.store.migrate import current_revision, head_revision
from flowplane.store.schema import metadata


async def test_upgrade_head_matches_metadata(store: Store) -> None:
    assert current_revision(store) == head_revision()

    def diff(tx: Any) -> list[Any]:
        ctx = MigrationContext.configure(tx.conn, opts={"compare_type": True})
        return compare_metadata(ctx, metadata)

    assert await store.read(diff) == []


async def test_event_seq_is_gap_free_and_ordered(store: Store) -> None:
    def write(tx: Any) -> None:
        for i in range(3):
            tx.event("run-1", "default", "NodeLog", "a", message=str(i))

    for _ in range(4):
        await store.transact(write)

    def read(tx: Any) -> list[int]:
        return [r[0] for r in tx.conn.execute(sa.text("SELECT seq FROM events ORDER BY seq"))]

    assert await store.read(read) == list(range(1, 13))


async def test_ping(store: Store) -> None:
    assert await store.ping()
