"""SQLite: WAL, ``BEGIN IMMEDIATE`` for writes, a busy timeout, in-process wake-ups."""

from __future__ import annotations

import sqlite3
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc

from flowplane.store import schema as t
from flowplane.store.base import Store
from flowplane.store.tx import Row, Tx

BUSY_TIMEOUT_MS = 10_000


class SQLiteTx(Tx):
    """SQLite transaction: writes hold the database lock from ``BEGIN IMMEDIATE``."""

    def claim(self, owner: str, limit: int, lease_ms: int) -> list[Row]:
        """Lease up to ``limit`` due node runs; safe because the write lock is held."""
        c = t.node_runs.c
        ids = [
            r[0]
            for r in self.conn.execute(
                sa.select(c.id)
                .where(c.status.in_(("ready", "waiting-timer")), c.available_at_ms <= self.now_ms)
                .order_by(c.available_at_ms, c.id)
                .limit(limit)
            )
        ]
        if not ids:
            return []
        rows = self.conn.execute(
            t.node_runs.update()
            .where(c.id.in_(ids))
            .values(
                status="in-progress",
                lease_owner=owner,
                lease_expires_ms=self.now_ms + lease_ms,
                lease_epoch=c.lease_epoch + 1,
                attempt=c.attempt + sa.case((c.status == "ready", 1), else_=0),
                started_at_ms=self.now_ms,
            )
            .returning(*t.node_runs.c)
        )
        return sorted((dict(r._mapping) for r in rows), key=lambda r: r["id"])


class SQLiteStore(Store):
    """The embedded default."""

    dialect = "sqlite"

    def _create_engine(self, url: str) -> sa.Engine:
        engine = sa.create_engine(
            url,
            connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            pool_size=8,
            max_overflow=8,
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own is deferred).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: sa.Connection) -> None:
            readonly = conn.get_execution_options().get("flowplane_readonly", False)
            conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

        return engine

    def _write_threads(self) -> int:
        # One writer thread: SQLite serialises writers anyway; contention would only add
        # busy-wait retries.
        return 1

    def _make_tx(self, conn: sa.Connection) -> Tx:
        return SQLiteTx(conn, self.dialect)

    def _is_transient(self, exc: sa_exc.DBAPIError) -> bool:
        message = str(exc.orig).lower()
        return "locked" in message or "busy" in message
