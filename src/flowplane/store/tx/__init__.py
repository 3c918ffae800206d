"""One transaction: the small named operations the engine and services are built from.

:class:`Tx` is the one transaction object; its operations are grouped by the table they
work on, one module each (runs, node runs, attempts, approvals, signals, workflows, and the
events and frames written at commit).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flowplane.ids import now_ms as now_ms
from flowplane.status import TERMINAL_NODE as TERMINAL_NODE
from flowplane.status import TERMINAL_RUN as TERMINAL_RUN
from flowplane.status import WAITING_NODE as WAITING_NODE
from flowplane.store.records import RunRecord
from flowplane.store.tx.approvals import ApprovalsTx
from flowplane.store.tx.attempts import AttemptsTx
from flowplane.store.tx.base import Ahead as Ahead
from flowplane.store.tx.base import OffLoop as OffLoop
from flowplane.store.tx.base import Row as Row
from flowplane.store.tx.events import EventsTx
from flowplane.store.tx.node_runs import NodeRunsTx
from flowplane.store.tx.runs import RunsTx
from flowplane.store.tx.signals import SignalsTx
from flowplane.store.tx.workflows import WorkflowsTx


class Tx(RunsTx, NodeRunsTx, AttemptsTx, ApprovalsTx, SignalsTx, WorkflowsTx, EventsTx):
    """A transaction on one connection. Not thread-safe; lives for one ``fn(tx)`` call.

    Dialects subclass it to override a few operations (the claim query, statements sent
    together, how notifications are published).
    """

    def lock_run_and_update_node(
        self, run_id: str, row_id: int, epoch: int, ahead: Ahead | None = None, **values: Any
    ) -> tuple[RunRecord | None, bool]:
        """:meth:`lock_run`, then, if the run is not terminal, update the node run
        ``row_id`` if it is still ``in-progress`` under lease ``epoch`` (a fenced
        completion). Returns the locked run and whether the node run was updated.
        (One statement on PostgreSQL.)

        ``ahead``: what the caller will do next if the update applies. A store where each
        statement costs a round trip sends those statements with this one (the claims
        applying only if the update did) and answers the later :meth:`claim_pending`,
        :meth:`item_counts` and :meth:`status_counts` calls from :attr:`ahead`; here
        nothing is done ahead."""
        run = self.lock_run(run_id)
        if run is None or run.status in TERMINAL_RUN:
            return run, False
        updated = self.update_node_run(
            row_id, expect_status="in-progress", expect_epoch=epoch, **values
        )
        return run, updated

    def lock_run_and_finish_items(
        self, run_id: str, finishes: Sequence[tuple[int, int, Any, int | None]], worker: str
    ) -> tuple[RunRecord | None, set[int]]:
        """:meth:`lock_run`, then, if the run is not terminal, finish each node run
        ``(row id, lease epoch, output, attempt start)`` that is still ``in-progress`` under
        that epoch (each fenced on its own lease; the lease is released), recording its
        successful attempt on ``worker``. Returns the locked run and the ids of the node
        runs finished. (One statement on PostgreSQL.)

        Several completions of one run (a ``foreach``'s items) recorded in one transaction:
        the run is locked once for all of them (see ``Worker``'s group completions)."""
        run = self.lock_run(run_id)
        if run is None or run.status in TERMINAL_RUN:
            return run, set()
        done: set[int] = set()
        for row_id, epoch, output, started in finishes:
            if self.update_node_run(
                row_id,
                expect_status="in-progress",
                expect_epoch=epoch,
                status="finished",
                output=output,
                error=None,
                finished_at_ms=self.now_ms,
                lease_owner=None,
                lease_expires_ms=None,
                worker=worker,
                attempt_started_ms=started,
            ):
                done.add(row_id)
        return run, done
