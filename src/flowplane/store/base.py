"""The store: one interface over SQLite and PostgreSQL.

Every operation is a whole transaction: a synchronous function ``fn(tx)`` that runs in a
worker thread, so the event loop pays one thread hop per transaction rather than one per
statement (the shape of dbos-transact-py). On SQLite, where a transaction takes less than
the hop, it runs on the calling loop's thread instead whenever the database is free (see
``SQLiteStore.transact``). Dialects override only what differs: engine set-up, how a
transaction begins and commits, the claim query, row locks, error classification and
wake-ups (in-process on SQLite, LISTEN/NOTIFY on PostgreSQL).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from flowplane.errors import DatabaseUnavailable, FlowplaneError, InvalidInput, StorageError
from flowplane.store.prepared import begin_transaction, end_transaction
from flowplane.store.tx import Tx

T = TypeVar("T")
Listener = Callable[[str, str], None]
Notification = tuple[str, str]

OUT_OF_RANGE_SQLSTATES = frozenset({"22003", "22008"})
"""numeric_value_out_of_range, datetime_field_overflow: a value the statement refused."""
OUT_OF_RANGE = "a number in the request is out of range for the database"

MAX_TX_ATTEMPTS = 8
_log = logging.getLogger("flowplane.store")


class Store:
    """Access to the database. Create one with :meth:`Store.open`."""

    dialect: str = "base"
    # Whether each writer thread keeps its connection across transactions (SQLite: its
    # single writer then pays no pool checkout, reset and return per transaction).
    keep_writer_connections = False

    def __init__(self, url: str, *, schema: str = "flowplane") -> None:
        self.url = url
        self.schema = schema
        self.engine: sa.Engine = self._create_engine(url)
        self._write_executor = ThreadPoolExecutor(
            max_workers=self._write_threads(), thread_name_prefix="fp-store-w"
        )
        self._read_executor = ThreadPoolExecutor(
            max_workers=self._read_threads(), thread_name_prefix="fp-store-r"
        )
        self._listeners: list[
            tuple[asyncio.AbstractEventLoop, Listener, frozenset[str] | None]
        ] = []
        self._listeners_lock = threading.Lock()
        self._commit_hooks: list[Callable[[list[Notification]], None]] = []
        self._event_row_hooks: list[Callable[[list[dict[str, Any]]], None]] = []
        # Writer threads' own connections (with keep_writer_connections).
        self._writer = threading.local()
        self._writer_conns: list[sa.Connection] = []
        self._writer_lock = threading.Lock()
        self._closed = False

    # --- construction -------------------------------------------------------------------

    @staticmethod
    def create(url: str, *, schema: str = "flowplane") -> Store:
        """Return the store subclass for ``url`` (``sqlite:///...`` or ``postgresql://...``)."""
        if url.startswith("sqlite"):
            from flowplane.store.sqlite import SQLiteStore

            return SQLiteStore(url, schema=schema)
        if url.startswith(("postgresql", "postgres")):
            from flowplane.store.postgres import PostgresStore

            return PostgresStore(url, schema=schema)
        raise StorageError(f"unsupported database URL scheme: {url.split(':', 1)[0]!r}")

    @classmethod
    async def open(cls, url: str, *, schema: str = "flowplane", migrate: bool = True) -> Store:
        """Create the store, optionally bring the schema to the latest migration, start wake-ups."""
        store = cls.create(url, schema=schema)
        try:
            if migrate:
                await asyncio.get_running_loop().run_in_executor(
                    store._write_executor, store.migrate
                )
            await store._start()
        except sa_exc.DBAPIError as exc:
            await store.close()
            # Callers (``flowplane worker``) wait and retry on an unavailable database.
            raise store._storage_error(exc) from exc
        except BaseException:
            await store.close()
            raise
        return store

    def _create_engine(self, url: str) -> sa.Engine:
        raise NotImplementedError

    def _write_threads(self) -> int:
        return 4

    def _read_threads(self) -> int:
        return 4

    async def _start(self) -> None:
        """Start background machinery (the PostgreSQL listener)."""

    def migrate(self) -> None:
        """Upgrade the database to the latest migration (synchronous)."""
        from flowplane.store.migrate import upgrade

        upgrade(self)

    async def close(self) -> None:
        """Stop background machinery and dispose of connections."""
        if self._closed:
            return
        self._closed = True
        self._write_executor.shutdown(wait=True)
        self._read_executor.shutdown(wait=True)
        self._dispose()

    def _dispose(self) -> None:
        """Close connections (the executors have stopped)."""
        with self._writer_lock:
            conns, self._writer_conns = self._writer_conns, []
        for conn in conns:
            with contextlib.suppress(Exception):
                conn.close()
        self.engine.dispose()

    # --- transactions -------------------------------------------------------------------

    async def transact(self, fn: Callable[[Tx], T], *, scan: bool = False) -> T:
        """Run ``fn(tx)`` in one write transaction, retrying on transient conflicts.

        ``scan``: the transaction may take long (it writes or counts thousands of rows, as
        a big ``foreach`` does): never run it on the event loop's thread (see
        :meth:`SQLiteStore.transact`).
        """
        if self._closed:
            raise StorageError("store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._write_executor, self.run_sync, fn, False)

    async def read(self, fn: Callable[[Tx], T], *, scan: bool = False) -> T:
        """Run ``fn(tx)`` in a read-only transaction.

        ``scan``: the read may take long (aggregates over whole tables): never run it on the
        event loop's thread (see :meth:`SQLiteStore.read`).
        """
        if self._closed:
            raise StorageError("store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._read_executor, self.run_sync, fn, True)

    def run_sync(self, fn: Callable[[Tx], T], readonly: bool = False, *, inline: bool = False) -> T:
        """Run ``fn(tx)`` in a transaction on the calling thread (retries included).

        ``inline``: the caller is an event loop's thread; a transient error (the database
        is busy) raises :class:`Busy` at once instead of sleeping and retrying there.
        """
        delay = 0.002
        for attempt in range(1, MAX_TX_ATTEMPTS + 1):
            try:
                with self._connect(readonly, inline) as conn:
                    tx = self._make_tx(conn)
                    tx.inline = inline
                    try:
                        begin_transaction(conn)
                        with self._begin(conn, readonly):
                            self._on_begin(tx)
                            result = fn(tx)
                            if not readonly:
                                tx.flush()
                                self._before_commit(tx)
                    except BaseException:
                        tx.run_hooks(committed=False)
                        raise
                    finally:
                        with contextlib.suppress(Exception):
                            end_transaction(conn)
                        self._on_end(tx)
                for hook in self._commit_hooks:
                    hook(tx.notifications)
                if tx.event_rows:
                    self._run_event_row_hooks(tx.event_rows)
                self._deliver_local(tx.notifications)
                tx.run_hooks(committed=True)
                return result
            except FlowplaneError:
                raise
            except OverflowError as exc:
                # The safety net behind the bounded types at the edge: sqlite3 cannot bind
                # an int past 64 bits, ``datetime`` ends at year 9999. Bad input, not a
                # failing database (no retry, no 500).
                raise InvalidInput(OUT_OF_RANGE) from exc
            except sa_exc.DBAPIError as exc:
                if self._is_out_of_range(exc):
                    raise InvalidInput(OUT_OF_RANGE) from exc
                if inline and self._is_transient(exc):
                    raise Busy from exc
                if attempt < MAX_TX_ATTEMPTS and self._is_transient(exc):
                    time.sleep(delay)
                    delay = min(delay * 2, 0.25)
                    continue
                raise self._storage_error(exc) from exc
            except sa_exc.PendingRollbackError as exc:
                # A connection invalidated inside its transaction (the server went away):
                # it has been discarded; the next attempt connects afresh.
                if attempt < MAX_TX_ATTEMPTS:
                    time.sleep(delay)
                    delay = min(delay * 2, 0.25)
                    continue
                raise DatabaseUnavailable("database unavailable: connection lost") from exc
        raise StorageError("transaction retries exhausted")  # pragma: no cover

    def _storage_error(self, exc: sa_exc.DBAPIError) -> StorageError:
        """The Flowplane error of a driver error: :class:`DatabaseUnavailable` (transient:
        wait and retry) when the database cannot be reached, else :class:`StorageError`."""
        name = type(exc.orig).__name__
        if self._is_unavailable(exc):
            return DatabaseUnavailable(f"database unavailable: {name}")
        return StorageError(f"database error: {name}")

    def _connect(
        self, readonly: bool, inline: bool = False
    ) -> contextlib.AbstractContextManager[sa.Connection]:
        """A connection for one transaction: one from the pool (returned on exit), or for
        writes with :attr:`keep_writer_connections` (and inline reads), the calling
        thread's own."""
        if inline:
            return self._writer_connection(readonly)
        if readonly or not self.keep_writer_connections:
            return self.engine.connect().execution_options(flowplane_readonly=readonly)
        return self._writer_connection()

    @contextlib.contextmanager
    def _writer_connection(self, readonly: bool = False) -> Iterator[sa.Connection]:
        slot = "reader" if readonly else "conn"
        conn: sa.Connection | None = getattr(self._writer, slot, None)
        if conn is None or conn.closed or conn.invalidated:
            conn = self.engine.connect().execution_options(flowplane_readonly=readonly)
            self._configure_writer(conn)
            setattr(self._writer, slot, conn)
            with self._writer_lock:
                self._writer_conns.append(conn)
        try:
            yield conn
        except BaseException as exc:
            # A database error (or a transaction left open) may leave the connection in
            # an unknown state: the next transaction starts on a fresh one. (Not when an
            # inline transaction merely found the database locked at BEGIN.)
            busy = (
                isinstance(exc, sa_exc.DBAPIError)
                and getattr(self._writer, "inline", False)
                and self._is_transient(exc)
                and not conn.invalidated
            )
            if (
                (isinstance(exc, sa_exc.DBAPIError) and not busy)
                or isinstance(exc, sa_exc.PendingRollbackError)
                or conn.invalidated
                or conn.in_transaction()
            ):
                setattr(self._writer, slot, None)
                with self._writer_lock, contextlib.suppress(ValueError):
                    self._writer_conns.remove(conn)
                with contextlib.suppress(Exception):
                    conn.invalidate()
                    conn.close()
            raise

    def _configure_writer(self, conn: sa.Connection) -> None:
        """Hook for a new kept writer connection of the calling thread."""

    def _begin(
        self, conn: sa.Connection, readonly: bool
    ) -> contextlib.AbstractContextManager[object]:
        """The transaction of :meth:`run_sync`: committed on success, else rolled back."""
        return conn.begin()

    def _make_tx(self, conn: sa.Connection) -> Tx:
        return Tx(conn, self.dialect)

    def _on_begin(self, tx: Tx) -> None:
        """Hook run first inside every transaction."""

    def _before_commit(self, tx: Tx) -> None:
        """Hook run last inside every write transaction, after :meth:`Tx.flush`."""

    def _on_end(self, tx: Tx) -> None:
        """Hook run after every transaction, committed or not."""

    def _is_transient(self, exc: sa_exc.DBAPIError) -> bool:
        """Whether retrying the transaction may succeed (a conflict, a lost connection)."""
        return False

    def _is_out_of_range(self, exc: sa_exc.DBAPIError) -> bool:
        """Whether the database refused a value out of its column's range (PostgreSQL's
        ``bigint out of range``): the request's fault, not the database's."""
        return getattr(exc.orig, "sqlstate", None) in OUT_OF_RANGE_SQLSTATES

    def _is_unavailable(self, exc: sa_exc.DBAPIError) -> bool:
        """Whether ``exc`` says the database cannot be reached now (refused, shutting
        down, starting up, connection lost): transient, unlike a refused statement."""
        return bool(exc.connection_invalidated)

    # --- wake-ups -----------------------------------------------------------------------

    def add_listener(
        self, listener: Listener, kinds: Iterable[str] | None = None
    ) -> Callable[[], None]:
        """Call ``listener(kind, payload)`` on the current loop for each notification.

        Kinds: ``ready`` (work may be claimable), ``cancel`` (payload = run id), ``event``
        (payload = ``"<namespace> <run id> <seq>"``). With ``kinds``, only notifications of
        those kinds are delivered to it (and a transaction with none of them does not wake
        its loop). Returns a function that removes it.
        """
        entry = (
            asyncio.get_running_loop(),
            listener,
            frozenset(kinds) if kinds is not None else None,
        )
        with self._listeners_lock:
            self._listeners.append(entry)

        def remove() -> None:
            with self._listeners_lock, contextlib.suppress(ValueError):
                self._listeners.remove(entry)

        return remove

    def add_commit_hook(self, hook: Callable[[list[Notification]], None]) -> Callable[[], None]:
        """Call ``hook(notifications)`` after every committed transaction, in the thread
        that committed it and before :meth:`transact` returns (a listener is called on its
        loop later: a coroutine that committed inline would run on before it). For caches
        that must not serve their own process's writes stale. Returns a remover."""
        self._commit_hooks = [*self._commit_hooks, hook]

        def remove() -> None:
            self._commit_hooks = [h for h in self._commit_hooks if h is not hook]

        return remove

    def add_event_rows_hook(
        self, hook: Callable[[list[dict[str, Any]]], None]
    ) -> Callable[[], None]:
        """Call ``hook(rows)`` after every committed transaction that wrote events, with
        the ``event_batches`` rows it wrote (as inserted: their ``events`` are the Python
        values, not yet read back; on PostgreSQL numbered with the seqs the writing
        statement allocated, which come back with the commit), in the thread that committed it,
        after the commit hooks and before the transaction's notifications are delivered.
        The rows are the transaction's own: a hook that keeps them copies what it keeps. A
        hook that raises is logged, not raised (the transaction committed). Returns a
        remover."""
        self._event_row_hooks = [*self._event_row_hooks, hook]

        def remove() -> None:
            self._event_row_hooks = [h for h in self._event_row_hooks if h is not hook]

        return remove

    def _run_event_row_hooks(self, rows: list[dict[str, Any]]) -> None:
        for hook in self._event_row_hooks:
            try:
                hook(rows)
            except Exception:  # the transaction committed: never an error for its caller
                _log.exception("an event-row hook failed")

    def _deliver_local(self, notifications: list[tuple[str, str]]) -> None:
        if not notifications:
            return
        with self._listeners_lock:
            listeners = list(self._listeners)
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Listener, list[Notification]]]] = {}
        for loop, listener, kinds in listeners:
            wanted = (
                list(notifications)
                if kinds is None
                else [item for item in notifications if item[0] in kinds]
            )
            if wanted:
                by_loop.setdefault(loop, []).append((listener, wanted))
        # One wake-up of each loop per transaction, however many listeners it has, and
        # none for a loop whose listeners want none of these notifications. The calling
        # thread's own loop (an inline transaction) needs no self-pipe wake-up.
        current = asyncio._get_running_loop()
        for loop, targets in by_loop.items():
            with contextlib.suppress(RuntimeError):  # loop closed
                if loop is current:
                    loop.call_soon(_fan_out, targets)
                else:
                    loop.call_soon_threadsafe(_fan_out, targets)

    def _deliver_remote(self, kind: str, payload: str) -> None:
        """Deliver a notification that arrived from another process."""
        self._deliver_local([(kind, payload)])

    # --- health -------------------------------------------------------------------------

    async def ping(self) -> bool:
        """Return whether the database answers."""
        try:
            await self.read(lambda tx: tx.conn.execute(sa.text("SELECT 1")).scalar())
        except Exception:
            return False
        return True


class Busy(Exception):
    """An inline transaction found the database busy (and was rolled back): run it on
    the store's writer thread instead."""


def _fan_out(targets: list[tuple[Listener, list[Notification]]]) -> None:
    for listener, notifications in targets:
        for kind, payload in notifications:
            try:
                listener(kind, payload)
            except Exception:  # one bad listener must not starve the others
                _log.exception("notification listener failed")
