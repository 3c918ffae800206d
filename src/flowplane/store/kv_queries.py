"""Key-value rows: small named operations over the ``kv`` table.

Expired entries are invisible: readers filter on ``expires_at_ms``, and writers delete an
expired row they meet before treating the key as absent. Writers lock the row they change
(``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite writers already hold the database lock from
``BEGIN IMMEDIATE``), so read-modify-write sequences such as increments lose no update.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from flowplane.store import schema as t
from flowplane.store.records import KVRecord
from flowplane.store.tx import Tx


def _live(tx: Tx) -> sa.ColumnElement[bool]:
    c = t.kv.c
    return sa.or_(c.expires_at_ms.is_(None), c.expires_at_ms > tx.now_ms)


def get(tx: Tx, namespace: str, key: str) -> KVRecord | None:
    """Return the live entry ``key`` of ``namespace`` (``None`` when absent or expired)."""
    c = t.kv.c
    return tx.one(
        KVRecord, sa.select(t.kv).where(c.namespace == namespace, c.key == key, _live(tx))
    )


def lock(tx: Tx, namespace: str, key: str) -> tuple[KVRecord | None, int]:
    """Return the live entry locked for update (``None`` when absent or expired) and the
    version of the expired entry this deleted (0: none).

    A re-created key continues that version sequence instead of restarting it.
    """
    c = t.kv.c
    query = sa.select(t.kv).where(c.namespace == namespace, c.key == key)
    if tx.dialect == "postgresql":
        query = query.with_for_update()
    row = tx.conn.execute(query).first()
    if row is None:
        return None, 0
    entry = KVRecord.from_row(row._mapping)
    if entry.expires_at_ms is not None and entry.expires_at_ms <= tx.now_ms:
        tx.conn.execute(t.kv.delete().where(c.namespace == namespace, c.key == key))
        return None, entry.version
    return entry, 0


def insert(tx: Tx, values: dict[str, Any]) -> None:
    """Insert an entry (a concurrent insert of the same key is a unique violation)."""
    tx.conn.execute(t.kv.insert().values(**values))


def update(tx: Tx, namespace: str, key: str, *, expect_version: int, **values: Any) -> bool:
    """Update an entry if its version is still ``expect_version``; return whether it did."""
    c = t.kv.c
    res = tx.conn.execute(
        t.kv.update()
        .where(c.namespace == namespace, c.key == key, c.version == expect_version)
        .values(**values)
    )
    return bool(res.rowcount)


def delete(tx: Tx, namespace: str, key: str) -> bool:
    """Delete an entry; return whether it existed."""
    c = t.kv.c
    res = tx.conn.execute(t.kv.delete().where(c.namespace == namespace, c.key == key))
    return bool(res.rowcount)


def listing(
    tx: Tx,
    namespace: str,
    *,
    prefix: str | None = None,
    after: str | None = None,
    limit: int = 100,
) -> list[KVRecord]:
    """Return live entries of ``namespace`` ordered by key, after the cursor key."""
    c = t.kv.c
    query = sa.select(t.kv).where(c.namespace == namespace, _live(tx))
    if prefix:
        query = query.where(c.key.like(escape_like(prefix) + "%", escape="\\"))
    if after is not None:
        query = query.where(c.key > after)
    query = query.order_by(c.key).limit(limit)
    return tx.records(KVRecord, query)


def purge_expired(tx: Tx, limit: int = 1000) -> int:
    """Delete up to ``limit`` expired entries; return how many."""
    c = t.kv.c
    expired = (
        sa.select(c.namespace, c.key)
        .where(c.expires_at_ms.is_not(None), c.expires_at_ms <= tx.now_ms)
        .limit(limit)
    )
    rows = [(r.namespace, r.key) for r in tx.conn.execute(expired)]
    for namespace, key in rows:
        tx.conn.execute(
            t.kv.delete().where(
                c.namespace == namespace, c.key == key, c.expires_at_ms <= tx.now_ms
            )
        )
    return len(rows)


def escape_like(text: str) -> str:
    """Escape ``%``, ``_`` and ``\\`` for a ``LIKE ... ESCAPE '\\'`` pattern."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
