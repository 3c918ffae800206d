"""PostgreSQL: ``FOR UPDATE SKIP LOCKED`` claims, row locks per run, LISTEN/NOTIFY wake-ups."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import os
import secrets
import select
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from flowplane.jsontext import dumps
from flowplane.store import schema as t
from flowplane.store import statements as q
from flowplane.store.base import Listener, Store
from flowplane.store.prepared import (
    UNKNOWN_STATEMENT,
    Prepared,
    commit_batched,
    disable_batching,
    enable_batching,
    flush_pending,
    resync,
)
from flowplane.store.records import RunRecord
from flowplane.store.tx import TERMINAL_RUN, Ahead, Row, Tx
from flowplane.store.tx.events import event_rows
from flowplane.store.workflow_queries import HEAD_CHANGED

_log = logging.getLogger("flowplane.store.postgres")
_LOCK_RUN = Prepared(
    sa.select(*[c for c in t.runs.c if c.name != "document"])
    .where(t.runs.c.id == sa.bindparam("_run"))
    .with_for_update(),
    record=RunRecord,
)
_NOTIFY = Prepared(sa.select(sa.func.pg_notify(sa.bindparam("channel"), sa.bindparam("message"))))
_WRITE_EVENTS = Prepared(
    sa.text(
        """
WITH counter AS (
    INSERT INTO event_counter (id, seq) VALUES (1, CAST(:_n AS BIGINT))
    ON CONFLICT (id) DO UPDATE SET seq = event_counter.seq + EXCLUDED.seq
    RETURNING seq - CAST(:_n AS BIGINT) AS base
), batches AS (
    SELECT * FROM jsonb_to_recordset(CAST(:_batches AS JSONB)) AS v(
        last_seq BIGINT, size INTEGER, run_id VARCHAR, namespace VARCHAR, events JSON,
        frame_no INTEGER, changes JSON, set_frame BOOLEAN)
), written AS (
    INSERT INTO event_batches (last_seq, size, run_id, namespace, ts_ms, events, frame_no,
                               changes)
    SELECT counter.base + v.last_seq, v.size, v.run_id, v.namespace, CAST(:_ts AS BIGINT),
           v.events, v.frame_no, v.changes
    FROM counter, batches AS v
), framed AS (
    UPDATE runs SET frame_no = v.frame_no FROM batches AS v
    WHERE v.set_frame AND runs.id = v.run_id
)
SELECT counter.base + CAST(:_n AS BIGINT) AS last,
       pg_notify(CAST(:_channel AS TEXT),
                 CAST(:_prefix AS TEXT) || (counter.base + CAST(:_n AS BIGINT)))
FROM counter
"""
    ).columns(sa.column("last", sa.BigInteger), sa.column("pg_notify", sa.String))
)
_LOCK_AND_UPDATE: dict[tuple[str, ...], Prepared[RunRecord]] = {}


def _lock_and_update(keys: tuple[str, ...]) -> Prepared[RunRecord]:
    runs, nodes = t.runs.c, t.node_runs.c
    locked = (
        sa.select(*[c for c in t.runs.c if c.name != "document"])
        .where(runs.id == sa.bindparam("_run"))
        .with_for_update()
        .cte("locked")
    )
    updated = (
        t.node_runs.update()
        .where(
            nodes.id == sa.bindparam("_id"),
            nodes.status == "in-progress",
            nodes.lease_epoch == sa.bindparam("_epoch"),
            sa.exists().where(*(locked.c.status != status for status in TERMINAL_RUN)),
        )
        .values({k: sa.bindparam(f"_v_{k}", type_=nodes[k].type) for k in keys})
        .returning(nodes.id)
        .cte("updated")
    )
    count = sa.select(sa.func.count()).select_from(updated).scalar_subquery()
    # The run's record, with the count in ``_updated`` (taken out by its reader).
    return Prepared(sa.select(*locked.c, count.label("_updated")), record=RunRecord)


def _lock_and_finish_items(count: int) -> Prepared[RunRecord]:
    """Lock the run and finish ``count`` node runs (``_i<k>``, with lease epoch ``_e<k>``
    and output ``_o<k>``), each fenced on its status and its own epoch, only if the run is
    not terminal: the run's record, with ``_u<k>`` 1 where node run ``k`` was finished.

    One single-row update per node run, by primary key (``status || ''`` keeps the status
    index out of it): a list of rows joined in one update was planned, with young table
    statistics, as a scan of the table or of the status index (see
    ``tests/integration/test_postgres_plans.py``)."""
    runs, nodes = t.runs.c, t.node_runs.c
    locked = (
        sa.select(*[c for c in t.runs.c if c.name != "document"])
        .where(runs.id == sa.bindparam("_run"))
        .with_for_update()
        .cte("locked")
    )
    live = sa.exists().where(*(locked.c.status != status for status in TERMINAL_RUN))
    flags = []
    for k in range(count):
        updated = (
            t.node_runs.update()
            .where(
                nodes.id == sa.bindparam(f"_i{k}", type_=sa.BigInteger),
                nodes.status + "" == "in-progress",
                nodes.lease_epoch == sa.bindparam(f"_e{k}", type_=sa.Integer),
                live,
            )
            .values(
                status="finished",
                output=sa.bindparam(f"_o{k}", type_=nodes.output.type),
                error=None,
                finished_at_ms=sa.bindparam("_now", type_=sa.BigInteger),
                lease_owner=None,
                lease_expires_ms=None,
                worker=sa.bindparam("_worker", type_=nodes.worker.type),
                attempt_started_ms=sa.bindparam(f"_s{k}", type_=sa.BigInteger),
            )
            .returning(nodes.id)
            .cte(f"u{k}")
        )
        count_k = sa.select(sa.func.count()).select_from(updated).scalar_subquery()
        flags.append(count_k.label(f"_u{k}"))
    return Prepared(sa.select(*locked.c, *flags), record=RunRecord)


_LOCK_AND_FINISH_ITEMS: dict[int, Prepared[RunRecord]] = {}


def _collect(into: list[str], note: psycopg.Notify) -> None:
    into.append(note.payload)


MAX_CHANNEL_BYTES = 63  # NAMEDATALEN - 1: pg_notify refuses longer channel names


def channel_name(schema: str, suffix: str = "") -> str:
    """The NOTIFY channel of a schema (``flowplane_<schema><suffix>``), shortened with a
    hash of the schema name when that would be too long for PostgreSQL."""
    name = f"flowplane_{schema}{suffix}"
    if len(name.encode()) <= MAX_CHANNEL_BYTES:
        return name
    digest = hashlib.sha256(schema.encode()).hexdigest()[:12]
    keep = MAX_CHANNEL_BYTES - len(f"flowplane__{digest}{suffix}".encode())
    return f"flowplane_{schema.encode()[:keep].decode(errors='ignore')}_{digest}{suffix}"


ROLLED_BACK = "flowplane_rolled_back"
# The listener's connection: a bounded connect, and TCP keepalives so that a server that
# vanished without closing the connection is noticed (then it reconnects).
_LISTEN_OPTIONS: dict[str, Any] = {
    "connect_timeout": 10,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}
_LISTEN_POLL_MS = 60_000
# UNKNOWN_STATEMENT: a prepared statement dropped behind our back (see prepared._Session);
# the batch that found out renamed them, so the retry prepares afresh.
TRANSIENT_SQLSTATES = {
    "40001",
    "40P01",
    "55P03",
    "57P01",
    "08006",
    "08003",
    "23505",
    UNKNOWN_STATEMENT,
    # A workflow head a start assumed was no longer current (workflow_queries
    # .assume_workflow_head); the start forgot it when it rolled back and reads it again.
    HEAD_CHANGED,
}
# The server cannot be reached now: shutting down (57P01 admin_shutdown, 57P02
# crash_shutdown), starting up (57P03 cannot_connect_now), out of connection slots (53300)
# and class 08 (connection exceptions). An error without an SQLSTATE came from the client
# library (connection refused, connection closed).
UNAVAILABLE_SQLSTATES = {"57P01", "57P02", "57P03", "53300"}
# Connection failures that waiting does not cure (libpq reports them without an SQLSTATE):
# a wrong database, role or password is a configuration error, not an outage.
_MISCONFIGURED = ("does not exist", "authentication failed", "no pg_hba.conf entry")


def driver_url(url: str) -> str:
    """Return ``url`` with the psycopg (v3) driver selected."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def libpq_url(url: str) -> str:
    """Return ``url`` in the form libpq understands."""
    return "postgresql://" + driver_url(url)[len("postgresql+psycopg://") :]


class PostgresTx(Tx):
    """PostgreSQL transaction."""

    def __init__(
        self, conn: sa.Connection, dialect: str, channel: str, sender: str, event_channel: str
    ) -> None:
        super().__init__(conn, dialect)
        self._channel = channel
        self._event_channel = event_channel
        # Prefixed to every NOTIFY so that the sending store's listener can drop its own
        # (delivered in-process at commit already).
        self._sender = sender

    def lock_run(self, run_id: str) -> RunRecord | None:
        """Lock the run row so transitions of one run are serialised."""
        rows, _count = _LOCK_RUN.execute(self.conn, {"_run": run_id})
        return self._locked(rows[0] if rows else None)

    def lock_run_and_update_node(
        self, run_id: str, row_id: int, epoch: int, ahead: Ahead | None = None, **values: Any
    ) -> tuple[RunRecord | None, bool]:
        """One statement: lock the run row and, if the run is not terminal, apply the fenced
        update to the node run (the same row locks, in the same order, as two).

        What ``ahead`` names travels in the same round trip: the claims each applied only
        if the update did (see :data:`~flowplane.store.statements.GATED_CLAIM_PENDING`),
        the counts read after it."""
        keys = tuple(values)
        stmt = _LOCK_AND_UPDATE.get(keys)
        if stmt is None:
            stmt = _LOCK_AND_UPDATE[keys] = _lock_and_update(keys)
        params = {f"_v_{k}": v for k, v in values.items()}
        params.update(_run=run_id, _id=row_id, _epoch=epoch)
        if ahead is not None:
            rows = self._with_ahead(stmt, params, ahead)
        else:
            rows, _count = stmt.execute(self.conn, params)
        if not rows:
            return None, False
        run = rows[0]
        updated = bool(vars(run).pop("_updated"))
        return self._locked(run), updated

    def lock_run_and_finish_items(
        self, run_id: str, finishes: Sequence[tuple[int, int, Any, int | None]], worker: str
    ) -> tuple[RunRecord | None, set[int]]:
        """One statement (one round trip) for the lock and every fenced finish."""
        count = len(finishes)
        # A statement per power of two (padded with id -1, which no row has): a few
        # statements to prepare on each connection, not one per group size.
        size = 1 << max(0, count - 1).bit_length()
        stmt = _LOCK_AND_FINISH_ITEMS.get(size)
        if stmt is None:
            stmt = _LOCK_AND_FINISH_ITEMS[size] = _lock_and_finish_items(size)
        params: dict[str, Any] = {"_run": run_id, "_now": self.now_ms, "_worker": worker}
        for k in range(size):
            row_id, epoch, output, started = finishes[k] if k < count else (-1, -1, None, None)
            params.update({f"_i{k}": row_id, f"_e{k}": epoch, f"_o{k}": output, f"_s{k}": started})
        rows, _count = stmt.execute(self.conn, params)
        if not rows:
            return None, set()
        run = rows[0]
        flags = [vars(run).pop(f"_u{k}") for k in range(size)]  # (padding's too)
        done = {finishes[k][0] for k in range(count) if flags[k]}
        if done:
            self._nodes_written()
        return self._locked(run), done

    def _with_ahead(
        self, stmt: Prepared[RunRecord], params: dict[str, Any], ahead: Ahead
    ) -> list[RunRecord]:
        run_id = params["_run"]
        answer: list[list[RunRecord]] = []
        stmt.defer(self.conn, params, on_result=answer.append)

        def keep(key: tuple[Any, ...], first: bool = False) -> Callable[[list[Any]], None]:
            def store(rows: list[Any]) -> None:
                self.ahead[key] = (rows[0] if rows else None) if first else rows

            return store

        for node_id, iteration in ahead.claims:
            claim = self._claim_params(run_id, node_id, iteration, ahead.owner, ahead.lease_ms)
            claim.update(_done=params["_id"], _epoch=params["_epoch"])
            q.GATED_CLAIM_PENDING.defer(
                self.conn, claim, on_result=keep(("claim", run_id, node_id, iteration), True)
            )
        if ahead.item_counts_of is not None:
            node_id = ahead.item_counts_of
            q.ITEM_COUNTS.defer(
                self.conn,
                {"_run": run_id, "_node": node_id},
                on_result=keep(("items", run_id, node_id)),
            )
        if ahead.status_counts:
            q.STATUS_COUNTS.defer(self.conn, {"_run": run_id}, on_result=keep(("status", run_id)))
        flush_pending(self.conn)
        return answer[0]

    def _write_events(self) -> None:
        """One queued statement allocates the ``seq`` numbers, writes the event batches
        (with their frames), sets the frame numbers of runs this transaction holds locked
        and sends the ``event`` NOTIFY (its seq only known there): it travels with the
        COMMIT, so writing the events costs no round trip of its own. The counter row is
        locked from this statement to the commit, as with a separate bump: ``seq`` stays
        gap-free and in commit order."""
        batches, self._batches = self._batches, []
        # Other wake-ups first, as Tx.flush sends them before its "event" one.
        self._publish(self.notifications)
        now = self.now_ms
        # The rows numbered from seq 1: the statement adds the counter's base to each.
        offset = sum(batch.size for batch in batches)
        rows = event_rows(batches, offset, now)
        for row, batch in zip(rows, batches, strict=True):
            row["set_frame"] = batch.set_frame

        def written(result: list[Row]) -> None:
            last = int(result[0]["last"])
            self.notify("event", str(last))
            # The rows as written (for Store.add_event_rows_hook), numbered now that the
            # statement has allocated their seqs (they were sent as JSON already).
            base = last - offset
            for row in rows:
                del row["set_frame"]
                row["last_seq"] += base
            self.event_rows = rows

        _WRITE_EVENTS.defer(
            self.conn,
            {
                "_n": offset,
                "_ts": now,
                "_batches": dumps(rows),
                "_channel": self._event_channel,
                "_prefix": self._prefix("event"),
            },
            on_result=written,
        )

    def _skip_locked(self, query: sa.Select[Any]) -> sa.Select[Any]:
        return query.with_for_update(skip_locked=True)

    def _prefix(self, kind: str) -> str:
        """What a NOTIFY payload of ``kind`` starts with: ``<sender token>|<kind>|``."""
        return f"{self._sender}|{kind}|"

    def _publish(self, notifications: list[tuple[str, str]]) -> None:
        # Queued: sent with the COMMIT (NOTIFY is delivered at commit anyway).
        for kind, payload in notifications:
            message = self._prefix(kind) + payload
            channel = self._event_channel if kind == "event" else self._channel
            _NOTIFY.defer(self.conn, {"channel": channel, "message": message})


class PostgresStore(Store):
    """PostgreSQL: many API and worker processes on one database.

    Each writer thread keeps its connection (no pool checkout and no pre-ping round trip
    per transaction; a broken one is replaced, and the transaction retried, on the error),
    and transactions batch statements whose results are not read (see
    :mod:`flowplane.store.prepared`): a node's completion is ~4 round trips, not ~13.
    """

    dialect = "postgresql"
    keep_writer_connections = True

    def __init__(self, url: str, *, schema: str = "flowplane") -> None:
        super().__init__(url, schema=schema)
        self.channel = channel_name(schema)
        # "event" notifications (one per committed transaction with events) go on a
        # channel of their own, LISTENed to only by processes with a listener for them
        # (API processes: event streams): a worker-only process is not woken by every
        # commit of every other process, nor by its own.
        self.event_channel = channel_name(schema, "_events")
        self._events_wanted = False
        self._relisten = _StopPipe()
        self._sender = ("", 0)  # (token, pid): see sender
        self._listen_thread: threading.Thread | None = None
        self._stop_listening = _StopPipe()

    def _create_engine(self, url: str) -> sa.Engine:
        engine = sa.create_engine(
            driver_url(url),
            pool_size=10,
            max_overflow=10,
            # No pre-ping: it cost every pooled read a `SELECT 1` round trip (~3 % of a
            # serve process's samples under bench/e2e.py). A connection the server dropped
            # fails its transaction's first statement instead, which `run_sync` classifies
            # as transient and runs again on a fresh connection (SQLAlchemy invalidates the
            # whole pool on a disconnect): tests/acceptance/test_db_restart.py.
            pool_pre_ping=False,
            connect_args={"options": f"-csearch_path={self.schema},public"},
        )

        @sa.event.listens_for(engine, "rollback")
        def _rolled_back(conn: sa.Connection) -> None:
            # An invalidated connection (the server went away) has no DBAPI connection:
            # reading ``conn.info`` would raise PendingRollbackError over the real error.
            # It is discarded anyway, so there is nothing to resync.
            if not conn.invalidated:
                conn.info[ROLLED_BACK] = True

        @sa.event.listens_for(engine, "before_cursor_execute")
        def _send_queued(conn: sa.Connection, *_args: Any) -> None:
            # A statement not run through Prepared: queued ones go first, in order.
            flush_pending(conn)

        return engine

    def _on_begin(self, tx: Tx) -> None:
        enable_batching(tx.conn)

    def _before_commit(self, tx: Tx) -> None:
        commit_batched(tx.conn)

    def _on_end(self, tx: Tx) -> None:
        with contextlib.suppress(Exception):
            if tx.conn.info.pop(ROLLED_BACK, False):
                resync(tx.conn)
        with contextlib.suppress(Exception):
            disable_batching(tx.conn)

    def _make_tx(self, conn: sa.Connection) -> Tx:
        return PostgresTx(conn, self.dialect, self.channel, self.sender, self.event_channel)

    @property
    def sender(self) -> str:
        """The random token prefixed to this store's NOTIFYs (a new one in a forked child:
        its listener must not take the parent's NOTIFYs for its own)."""
        token, pid = self._sender
        if pid != os.getpid():
            token = f"@{secrets.token_hex(8)}"
            self._sender = (token, os.getpid())
        return token

    def _write_threads(self) -> int:
        return 8

    def _is_transient(self, exc: sa_exc.DBAPIError) -> bool:
        if isinstance(exc, sa_exc.IntegrityError):
            # A unique race (e.g. two dispatches with one idempotency key): retrying
            # re-reads and finds the winner.
            return True
        state = getattr(exc.orig, "sqlstate", None)
        return state in TRANSIENT_SQLSTATES or self._is_unavailable(exc)

    def _is_unavailable(self, exc: sa_exc.DBAPIError) -> bool:
        if exc.connection_invalidated:
            return True
        orig = exc.orig
        state = getattr(orig, "sqlstate", None)
        if state is None:
            if any(text in str(orig) for text in _MISCONFIGURED):
                return False
            return isinstance(orig, psycopg.OperationalError | psycopg.InterfaceError)
        return state.startswith("08") or state in UNAVAILABLE_SQLSTATES

    def migrate(self) -> None:
        """Create the schema if needed and upgrade it, one process at a time."""
        with self.engine.connect() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
            conn.commit()
        super().migrate()

    async def _start(self) -> None:
        self._listen_thread = threading.Thread(
            target=self._listen, name="fp-store-listen", daemon=True
        )
        self._listen_thread.start()

    def add_listener(
        self, listener: Listener, kinds: Iterable[str] | None = None
    ) -> Callable[[], None]:
        kinds = None if kinds is None else frozenset(kinds)
        remove = super().add_listener(listener, kinds)
        if not self._events_wanted and (kinds is None or "event" in kinds):
            # From now on this process LISTENs to the event channel too: the listener
            # thread adds it on its connection, then wakes the event listeners to re-read.
            self._events_wanted = True
            self._relisten.set()
        return remove

    def _listen(self) -> None:
        """LISTEN on the store's channels in a thread of its own, until :meth:`close`.

        Waiting is a ``poll`` on the connection's socket and the stop pipe, without the
        GIL; each notification costs a few microseconds of this thread, and the event loops
        are woken only for notifications other stores sent (this store delivered its own
        in-process when their transaction committed).
        """
        delay = 0.1
        while not self._stop_listening.is_set():
            try:
                with psycopg.connect(
                    libpq_url(self.url), autocommit=True, **_LISTEN_OPTIONS
                ) as conn:
                    # Notifications that arrive while a statement runs on the connection
                    # (our LISTENs) are handed to psycopg's handlers, not left for
                    # pgconn.notifies(): take them there.
                    arrived: list[str] = []
                    conn.add_notify_handler(functools.partial(_collect, arrived))
                    conn.execute(f'LISTEN "{self.channel}"')
                    events = self._listen_events(conn)
                    delay = 0.1
                    # A reconnect may have missed notifications: wake everyone to re-poll.
                    self._deliver_local([("ready", ""), ("event", ""), *self._parse(arrived)])
                    arrived.clear()
                    if self._stop_listening.is_set():
                        return
                    self._receive(conn, arrived, events)
            except Exception as exc:  # lost connection (or the server is down): retry
                if self._stop_listening.is_set():
                    return
                _log.warning("LISTEN connection lost (%s); reconnecting", type(exc).__name__)
                if self._stop_listening.wait(delay):
                    return
                delay = min(delay * 2, 5.0)

    def _listen_events(self, conn: psycopg.Connection[Any]) -> bool:
        """LISTEN to the event channel too if a listener wants events; whether it does."""
        self._relisten.clear()  # (before reading the flag: add_listener sets it first)
        if not self._events_wanted:
            return False
        conn.execute(f'LISTEN "{self.event_channel}"')
        return True

    def _receive(self, conn: psycopg.Connection[Any], arrived: list[str], events: bool) -> None:
        """Deliver notifications until :meth:`close`; LISTEN to the event channel on the
        same connection once a listener wants events (nothing is missed meanwhile)."""
        pgconn = conn.pgconn
        encoding = conn.info.encoding
        stop, relisten = self._stop_listening.fileno(), self._relisten.fileno()
        poller = select.poll()  # not select.select: descriptors may exceed FD_SETSIZE
        poller.register(pgconn.socket, select.POLLIN)
        poller.register(stop, select.POLLIN)
        poller.register(relisten, select.POLLIN)
        while True:
            ready = {fd for fd, _event in poller.poll(_LISTEN_POLL_MS)}
            if stop in ready:
                return
            notes: list[tuple[str, str]] = []
            if relisten in ready and not events:
                events = self._listen_events(conn)
                if events:  # events committed before the LISTEN: re-read
                    notes.append(("event", ""))
            elif relisten in ready:
                self._relisten.clear()
            pgconn.consume_input()  # raises when the connection is gone
            while (note := pgconn.notifies()) is not None:
                arrived.append(note.extra.decode(encoding, "replace"))
            notes.extend(self._parse(arrived))
            arrived.clear()
            if notes:
                self._deliver_local(notes)

    def _parse(self, messages: list[str]) -> list[tuple[str, str]]:
        """``(kind, payload)`` of NOTIFY payloads, without those this store sent."""
        own = f"{self.sender}|"
        notes: list[tuple[str, str]] = []
        for message in messages:
            if message.startswith(own):
                continue
            if message.startswith("@"):  # "@<sender>|<kind>|<payload>"
                message = message.partition("|")[2]
            kind, _, payload = message.partition("|")  # (also an unprefixed "<kind>|...")
            notes.append((kind, payload))
        return notes

    async def close(self) -> None:
        """Stop listening, then close."""
        self._stop_listening.set()
        thread = self._listen_thread
        if thread is not None:
            await asyncio.to_thread(thread.join, 15)
        await super().close()
        if thread is None or not thread.is_alive():
            self._stop_listening.close()  # (else the thread may still poll its descriptor)
            self._relisten.close()


class _StopPipe:
    """A flag a ``select`` can wait on (the listener thread's stop signal)."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        self._set = threading.Event()

    def fileno(self) -> int:
        return self._read

    def set(self) -> None:
        if not self._set.is_set():
            self._set.set()
            if self._write >= 0:  # (closed: a reused descriptor number is not ours)
                with contextlib.suppress(OSError):
                    os.write(self._write, b"x")

    def is_set(self) -> bool:
        return self._set.is_set()

    def clear(self) -> None:
        """Unset, and drain the pipe whatever the flag says: a :meth:`set` racing this
        one may have set the flag before and written after it was cleared, and a byte
        left behind would keep every ``poll`` returning at once."""
        self._set.clear()
        with contextlib.suppress(OSError):  # (BlockingIOError once empty)
            os.set_blocking(self._read, False)
            while os.read(self._read, 64):
                pass

    def wait(self, timeout: float) -> bool:
        return self._set.wait(timeout)

    def close(self) -> None:
        fds, (self._read, self._write) = (self._read, self._write), (-1, -1)
        for fd in fds:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
