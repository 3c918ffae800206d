"""What every table's operations share: the connection, the clock and the buffers of one
transaction (see :class:`flowplane.store.tx.Tx`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa

from flowplane.ids import now_ms
from flowplane.store.records.base import Record

Row = dict[str, Any]
R = TypeVar("R", bound=Record)


@dataclass(frozen=True)
class Ahead:
    """What a completion will do right after its fenced update, if that applies (see
    :meth:`Tx.lock_run_and_update_node`): lease ``claims`` (``(node id, iteration)`` of
    pending node runs of the run) to ``owner``, count the items of ``item_counts_of``, count
    the run's node runs by status."""

    claims: Sequence[tuple[str, int]] = ()
    owner: str = ""
    lease_ms: int = 0
    item_counts_of: str | None = None
    status_counts: bool = False


class OffLoop(Exception):
    """Raised by :meth:`TxBase.off_loop` in a transaction running on the event loop's
    thread: it is rolled back and run again on the store's writer thread."""


class TxBase:
    """The state of a transaction on one connection. Not thread-safe; lives for one
    ``fn(tx)`` call."""

    def __init__(self, conn: sa.Connection, dialect: str) -> None:
        self.conn = conn
        self.dialect = dialect
        # Whether this transaction runs on the event loop's thread (SQLite's inline path).
        self.inline = False
        self.now_ms = now_ms()
        self.notifications: list[tuple[str, str]] = []
        # The event_batches rows this transaction wrote (EventsTx.flush), for the store's
        # event-row hooks after commit.
        self.event_rows: list[dict[str, Any]] = []
        self._events: list[tuple[str, str, str, str | None, dict[str, Any]]] = []
        self._changes: dict[str, list[list[Any]]] = {}
        # What flush hands to _write_events: one Batch (store.tx.events) per run.
        self._batches: list[Any] = []
        # (frame_no, namespace) of runs this transaction locked or inserted: nobody else
        # can bump their frame before it commits, so flush need not read it back.
        self._frames: dict[str, tuple[int, str]] = {}
        # Called (on the transaction's thread) once it committed, or once it did not.
        self.after_commit: list[Callable[[], None]] = []
        self.after_rollback: list[Callable[[], None]] = []
        # What lock_run_and_update_node did ahead (see Ahead): ("claim", run id, node id,
        # iteration) -> the leased row or None; ("items", run id, node id) and ("status",
        # run id) -> count rows, valid until the transaction writes node runs.
        self.ahead: dict[tuple[Any, ...], Any] = {}
        # What the entries of a grouped transaction (services.group_commit) read once for
        # all of them: the heads of the workflows started (starts write no workflow row).
        self.memo: dict[tuple[Any, ...], Any] = {}
        # Inserts held back to be written together (see coalesce_inserts): rows by
        # (statement, keys), in the order the statements were first used; None: off.
        self._coalesced: dict[tuple[Any, tuple[str, ...]], list[Row]] | None = None
        # The held-back runs rows by run id (flush sets their frame number in place).
        self._queued_runs: dict[str, Row] = {}

    def coalesce_inserts(self) -> None:
        """Hold this transaction's ``runs``, ``node_runs`` and ``audit`` inserts back and
        write them together, one ``executemany`` per statement, at :meth:`flush` or
        earlier: all of them before a read or update of ``runs`` through
        :class:`~flowplane.store.tx.runs.RunsTx`, the node runs before an insert of a node
        run that returns it (ids stay in insertion order). For the starts of a grouped
        transaction (``RunService.start_stored``): N starts cost one statement per table,
        and a new run's frame number is inserted rather than set by an ``UPDATE`` right
        after. Only for transactions that read ``node_runs`` and ``audit`` not at all and
        ``runs`` only through ``RunsTx``, as a start does."""
        if self._coalesced is None:
            self._coalesced = {}

    def queue_insert(self, statement: Any, row: Row) -> bool:
        """Hold ``row`` back for ``statement`` (a :class:`Prepared` insert) when
        :meth:`coalesce_inserts` is on; ``False`` (nothing held) when it is off."""
        held = self._coalesced
        if held is None:
            return False
        held.setdefault((statement, tuple(row)), []).append(row)
        return True

    def write_coalesced(self, only: Any = None) -> None:
        """Write the held-back inserts now (statements in order of first use, rows in the
        order they came); ``only``: those of that statement alone."""
        held = self._coalesced
        if not held:
            return
        if only is not None:
            for key in [key for key in held if key[0] is only]:
                only.defer_many(self.conn, held.pop(key))
            return
        self._coalesced = {}
        self._queued_runs = {}
        for (statement, _keys), rows in held.items():
            statement.defer_many(self.conn, rows)

    def one(self, record: type[R], query: sa.Select[Any]) -> R | None:
        """The first row ``query`` selects, as a ``record`` (``None`` when there is none)."""
        row = self.conn.execute(query).first()
        return None if row is None else record.from_row(row._mapping)

    def records(self, record: type[R], query: sa.Select[Any]) -> list[R]:
        """Every row ``query`` selects, as ``record``s."""
        return [record.from_row(r._mapping) for r in self.conn.execute(query)]

    def off_loop(self) -> None:
        """Say that the rest of this transaction is long (thousands of rows): on the event
        loop's thread it is rolled back and run again, from the start, on the writer thread
        (see ``SQLiteStore.transact``); elsewhere this does nothing.

        Raises:
            OffLoop: the transaction runs on the event loop's thread.
        """
        if self.inline:
            raise OffLoop

    def run_hooks(self, *, committed: bool) -> None:
        """Run the :attr:`after_commit` or :attr:`after_rollback` callbacks (once)."""
        hooks = self.after_commit if committed else self.after_rollback
        self.after_commit, self.after_rollback = [], []
        for hook in hooks:
            hook()
