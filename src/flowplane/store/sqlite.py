"""SQLite: WAL, ``BEGIN IMMEDIATE`` for writes, a busy timeout, in-process wake-ups."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc

from flowplane.errors import StorageError
from flowplane.store.base import Busy, Store
from flowplane.store.prepared import driver_error, execute_sql
from flowplane.store.tx import OffLoop, Tx

BUSY_TIMEOUT_MS = 10_000
# Inline (event-loop thread) commits between two WAL checkpoints on the writer thread.
CHECKPOINT_EVERY = 200
RESTART_WAL_PAGES = 4096
"""A WAL still longer than this (pages: 16 MiB of 4 KiB pages) after a passive checkpoint
is started over (a ``RESTART`` checkpoint). SQLite writes the WAL from its start again only
once a checkpoint caught up with the last commit, which a passive one running beside
steady inline commits never does: under ``bench/api.py``'s POST load the WAL grew by ~50
MB/s, without end, and every read, which searches the WAL's index, slowed with it."""
RESTART_WAIT_MS = 100
"""How long a ``RESTART`` checkpoint waits for the write lock and for readers (it holds
writers off meanwhile); when that is not enough it gives up until the next one."""
WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024
"""The size the WAL file is cut back to when it is started over (``journal_size_limit``):
a burst of writes does not leave a large file behind for good."""
T = TypeVar("T")


class SQLiteTx(Tx):
    """SQLite transaction: writes hold the database lock from ``BEGIN IMMEDIATE``."""


class SQLiteStore(Store):
    """The embedded default."""

    dialect = "sqlite"
    keep_writer_connections = True
    _inline_commits = 0
    # Write transactions sent to the writer thread and not yet ended, and the inline ones
    # waiting for them to end (see transact).
    _queued = 0
    _drain_waiters: list[asyncio.Future[None]]

    def __init__(self, url: str, *, schema: str = "flowplane") -> None:
        super().__init__(url, schema=schema)
        self._drain_waiters = []
        self._checkpoints: set[asyncio.Task[None]] = set()

    async def close(self) -> None:
        # A checkpoint under way ends first (the writer thread finishes what it started).
        # (Only this loop's: a task of another, closed loop was dropped with it.)
        loop = asyncio.get_running_loop()
        checkpoints = [task for task in self._checkpoints if task.get_loop() is loop]
        for task in checkpoints:
            task.cancel()
        await asyncio.gather(*checkpoints, return_exceptions=True)
        await super().close()

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
            # A WAL started over is cut back to this (SQLite does not shrink it otherwise).
            cur.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT_BYTES}")
            cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: sa.Connection) -> None:
            dbapi_conn: Any = conn.connection.dbapi_connection
            if dbapi_conn.in_transaction:
                # Store.run_sync began it on the driver (see _DriverTransaction) and a
                # statement run through SQLAlchemy now makes SQLAlchemy join it.
                return
            readonly = conn.get_execution_options().get("flowplane_readonly", False)
            execute_sql(conn, "BEGIN" if readonly else "BEGIN IMMEDIATE")

        return engine

    async def transact(self, fn: Callable[[Tx], T], *, scan: bool = False) -> T:
        """Run ``fn(tx)`` in one write transaction: on the calling event loop's thread when
        the database is free, else on the writer thread.

        SQLite runs one writer at a time and a write transaction here takes a fraction of
        a millisecond (WAL, no fsync at commit): the thread hop to the writer and the
        loop's wake-up back cost more than the transaction. The loop thread's connection
        does not wait for the lock (``busy_timeout=0``): if another connection (the writer
        thread, another process) holds it, ``BEGIN IMMEDIATE`` fails at once, nothing has
        been done, and the transaction goes to the writer thread, which waits as before.
        Its commits do not checkpoint (no fsync on the loop); the writer thread does, every
        :data:`CHECKPOINT_EVERY` of them.

        A long transaction would hold the loop, and every request the process serves, for
        its whole length. A ``scan`` (known to be long: a big ``foreach`` expanding, an item
        of one with ``max_parallel`` settling, which counts the items) goes to the writer
        thread at once; one that finds out it is long (the last item of a big ``foreach``)
        calls ``tx.off_loop()``: inline, it is rolled back and goes to the writer thread.

        While transactions are on the writer thread, new ones wait for them to end before
        they run inline: the loop would otherwise take the lock again and again between
        the writer's attempts (SQLite's busy handler sleeps up to 100 ms between them), and
        the queued ones, nodes of running runs, would wait for a lull that a busy process
        never has (tails of 0.2-2 s after another connection, e.g. the heartbeats', held
        the lock for a moment).
        """
        if self._closed:
            raise StorageError("store is closed")
        if scan:
            return await self._on_writer(fn)
        # Still a suspension point, as a hop to a thread was: callers (and asyncio's own
        # cancellation, e.g. wait_for's) were written against transactions that yield.
        await asyncio.sleep(0)
        while self._queued:
            drained = asyncio.get_running_loop().create_future()
            self._drain_waiters.append(drained)
            await drained
        self._writer.inline = True
        try:
            result = self.run_sync(fn, False, inline=True)
        except (Busy, OffLoop):  # rolled back: nothing happened
            return await self._on_writer(fn)
        self._inline_commits += 1
        if self._inline_commits % CHECKPOINT_EVERY == 0:
            task = asyncio.get_running_loop().create_task(self.checkpoint())
            self._checkpoints.add(task)
            task.add_done_callback(self._checkpoints.discard)
        return result

    async def checkpoint(self) -> None:
        """Copy the WAL into the database on the writer thread (a passive checkpoint,
        beside the inline commits); if the WAL is still longer than
        :data:`RESTART_WAL_PAGES`, start it over (``RESTART``), inline commits waiting
        meanwhile as for a transaction on the writer thread: one that found the lock free
        in every gap would keep the checkpoint from ever taking it."""
        loop = asyncio.get_running_loop()
        with contextlib.suppress(Exception):  # closing, or the database went away
            if await loop.run_in_executor(self._write_executor, self._checkpoint):
                await self._holding_inline(
                    loop.run_in_executor(self._write_executor, self._restart_wal)
                )

    async def _on_writer(self, fn: Callable[[Tx], T]) -> T:
        """``fn`` in a write transaction on the writer thread, counted in :attr:`_queued`
        until it ends."""
        return await self._holding_inline(super().transact(fn))

    async def _holding_inline(self, work: Awaitable[T]) -> T:
        """Await ``work`` (on the writer thread) counted in :attr:`_queued`: inline
        transactions wait for it to end."""
        self._queued += 1
        try:
            return await work
        finally:
            self._queued -= 1
            if not self._queued:
                waiters, self._drain_waiters = self._drain_waiters, []
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(None)

    async def read(self, fn: Callable[[Tx], T], *, scan: bool = False) -> T:
        """Run ``fn(tx)`` in a read-only transaction, inline like :meth:`transact` (a WAL
        reader does not wait for writers), on a reader thread if the database is busy or
        the read is a ``scan`` (SQLite releases the GIL there, so the loop keeps serving)."""
        if self._closed:
            raise StorageError("store is closed")
        if scan:
            return await super().read(fn)
        await asyncio.sleep(0)  # a suspension point, as in transact()
        self._writer.inline = True
        try:
            return self.run_sync(fn, True, inline=True)
        except Busy:
            return await super().read(fn)

    def _configure_writer(self, conn: sa.Connection) -> None:
        if getattr(self._writer, "inline", False):
            execute_sql(conn, "PRAGMA busy_timeout=0")
            execute_sql(conn, "PRAGMA wal_autocheckpoint=0")

    def _checkpoint(self) -> bool:
        """A passive checkpoint; whether the WAL is longer than :data:`RESTART_WAL_PAGES`."""
        with self.engine.connect() as conn:
            dbapi_conn: Any = conn.connection.dbapi_connection
            _busy, pages, _copied = dbapi_conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            conn.commit()
        return bool(pages > RESTART_WAL_PAGES)

    def _restart_wal(self) -> None:
        # Most of the WAL was just copied: what this copies is what was committed since.
        with self.engine.connect() as conn:
            dbapi_conn: Any = conn.connection.dbapi_connection
            dbapi_conn.execute(f"PRAGMA busy_timeout={RESTART_WAIT_MS}")
            try:
                dbapi_conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
            finally:
                dbapi_conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            conn.commit()

    def _write_threads(self) -> int:
        # One writer thread: SQLite serialises writers anyway; contention would only add
        # busy-wait retries.
        return 1

    def _begin(
        self, conn: sa.Connection, readonly: bool
    ) -> contextlib.AbstractContextManager[object]:
        return _DriverTransaction(conn, readonly)

    def _make_tx(self, conn: sa.Connection) -> Tx:
        return SQLiteTx(conn, self.dialect)

    def _is_transient(self, exc: sa_exc.DBAPIError) -> bool:
        message = str(exc.orig).lower()
        return "locked" in message or "busy" in message


class _DriverTransaction:
    """A :meth:`Store.run_sync` transaction begun and ended on the sqlite3 connection
    itself: SQLAlchemy's ``begin()`` and ``commit()`` cost several times what SQLite does
    for them. ``BEGIN`` is sent like the ``begin`` event does (errors are SQLAlchemy's
    ``DBAPIError``, a locked database is transient). If a statement run through
    SQLAlchemy makes it begin a transaction of its own meanwhile, the ``begin`` event
    finds this one open and sends nothing, and SQLAlchemy ends it (commit or rollback).
    """

    __slots__ = ("conn", "readonly")

    def __init__(self, conn: sa.Connection, readonly: bool) -> None:
        self.conn, self.readonly = conn, readonly

    def __enter__(self) -> object:
        execute_sql(self.conn, "BEGIN" if self.readonly else "BEGIN IMMEDIATE")
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        conn = self.conn
        if conn.in_transaction():
            if exc_type is None:
                conn.commit()
            else:
                conn.rollback()
            return
        dbapi_conn: Any = conn.connection.dbapi_connection
        if exc_type is None:
            try:
                dbapi_conn.commit()
            except sqlite3.Error as error:
                _quiet_rollback(conn, dbapi_conn)
                raise driver_error(conn, error, "COMMIT") from error
        else:
            _quiet_rollback(conn, dbapi_conn)


def _quiet_rollback(conn: sa.Connection, dbapi_conn: Any) -> None:
    """Roll back; if even that fails, drop the connection (its state is unknown)."""
    try:
        dbapi_conn.rollback()
    except Exception:
        with contextlib.suppress(Exception):
            conn.invalidate()
