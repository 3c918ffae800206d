"""The store's hot statements, built once.

SQLAlchemy then only binds parameters and hits its compile cache, instead of building and
hashing a new statement on every call; :class:`~flowplane.store.prepared.Prepared` ones
skip SQLAlchemy's execution machinery altogether. UPDATE and INSERT statements without
``.values()`` take their SET columns from the parameter keys. Those whose rows leave the
store return :mod:`~flowplane.store.records` (``record=``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from flowplane.status import TERMINAL_RUN
from flowplane.store import schema as t
from flowplane.store.prepared import Prepared
from flowplane.store.records import NodeRunRecord, NodeState, RunRecord

_N = t.node_runs.c
RUN_COLUMNS = [c for c in t.runs.c if c.name != "document"]
GET_RUN = Prepared(sa.select(t.runs).where(t.runs.c.id == sa.bindparam("_run")), record=RunRecord)
GET_RUN_NO_DOC = Prepared(
    sa.select(*RUN_COLUMNS).where(t.runs.c.id == sa.bindparam("_run")), record=RunRecord
)
INSERT_RUN = Prepared(t.runs.insert())
UPDATE_RUN = Prepared(t.runs.update().where(t.runs.c.id == sa.bindparam("_run")))
STATE_COLUMNS = (
    _N.id,
    _N.node_id,
    _N.iteration,
    _N.status,
    _N.attempt,
    _N.lease_epoch,
    _N.available_at_ms,
)
NODE_STATES_ALL = sa.select(*STATE_COLUMNS).where(_N.run_id == sa.bindparam("_run"))
NODE_STATES = Prepared(NODE_STATES_ALL, record=NodeState)
NODE_STATES_OF = NODE_STATES_ALL.where(_N.node_id.in_(sa.bindparam("_nodes", expanding=True)))
_NODE_OUTPUT_COLUMNS = (_N.node_id, _N.iteration, _N.status, _N.output, _N.error)
NODE_OUTPUTS = sa.select(*_NODE_OUTPUT_COLUMNS).where(
    _N.run_id == sa.bindparam("_run"), _N.node_id.in_(sa.bindparam("_nodes", expanding=True))
)
NODE_OUTPUTS_PREPARED_MAX = 16
"""The most node ids :func:`node_outputs_of` takes (more: :data:`NODE_OUTPUTS`)."""
_NODE_OUTPUTS_OF: dict[int, Prepared[dict[str, Any]]] = {}


def node_outputs_of(count: int) -> Prepared[dict[str, Any]]:
    """:data:`NODE_OUTPUTS` for ``count`` node ids (``_n0`` ... ``_n<count-1>``), prepared:
    a run's finish reads its leaves' outputs, a handful of ids."""
    prepared = _NODE_OUTPUTS_OF.get(count)
    if prepared is None:
        prepared = _NODE_OUTPUTS_OF[count] = Prepared(
            sa.select(*_NODE_OUTPUT_COLUMNS).where(
                _N.run_id == sa.bindparam("_run"),
                _N.node_id.in_([sa.bindparam(f"_n{i}") for i in range(count)]),
            )
        )
    return prepared


UPDATE_NODE = {
    (by_status, by_epoch): t.node_runs.update().where(
        _N.id == sa.bindparam("_id"),
        *([_N.status.in_(sa.bindparam("_statuses", expanding=True))] if by_status else []),
        *([_N.lease_epoch == sa.bindparam("_epoch")] if by_epoch else []),
    )
    for by_status in (False, True)
    for by_epoch in (False, True)
}
# The same, expecting one status: no expanding parameter, so it can be prepared.
UPDATE_NODE_PREPARED = {
    (by_status, by_epoch): Prepared(
        t.node_runs.update().where(
            _N.id == sa.bindparam("_id"),
            *([_N.status == sa.bindparam("_status")] if by_status else []),
            *([_N.lease_epoch == sa.bindparam("_epoch")] if by_epoch else []),
        )
    )
    for by_status in (False, True)
    for by_epoch in (False, True)
}
# One node run of a run (``_run``, ``_node``, ``_iteration``) that has not started yet.
_PENDING_NODE_RUN = (
    _N.run_id == sa.bindparam("_run"),
    _N.node_id == sa.bindparam("_node"),
    _N.iteration == sa.bindparam("_iteration"),
    _N.status == "pending",
)
SETTLE_PENDING = Prepared(t.node_runs.update().where(*_PENDING_NODE_RUN).returning(_N.id))


DEADLINED_ROWS = sa.text(t.DEADLINED)
"""The predicate of ``ix_runs_deadline``, word for word (SQLite uses the partial index then:
the run-timeout sweep read every run without it)."""
CLAIMABLE_ROWS = sa.text(t.CLAIMABLE)
"""The predicate of ``ix_node_runs_claim``, word for word: SQLite uses a partial index only
for a query whose WHERE holds the index's own (it does not infer it from ``status =
'ready'``), and scanned every node run of the table for each claim without it. PostgreSQL
infers it either way."""
# Lease up to ``_limit`` due node runs (the worker's claim), one prepared statement on both
# backends: SQLite's write lock (BEGIN IMMEDIATE) makes it safe there; PostgreSQL skips the
# rows other workers hold (SQLite's compiler leaves FOR UPDATE out).
CLAIM = Prepared(
    t.node_runs.update()
    .where(
        _N.id.in_(
            sa.select(_N.id)
            .where(
                CLAIMABLE_ROWS,
                sa.or_(_N.status == "ready", _N.status == "waiting-timer"),
                _N.available_at_ms <= sa.bindparam("_now"),
            )
            .order_by(_N.available_at_ms, _N.id)
            .limit(sa.bindparam("_limit"))
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
    )
    .values(
        status="in-progress",
        lease_owner=sa.bindparam("_owner"),
        lease_expires_ms=sa.bindparam("_expires"),
        lease_epoch=_N.lease_epoch + 1,
        attempt=_N.attempt + sa.case((_N.status == "ready", 1), else_=0),
        started_at_ms=sa.bindparam("_now"),
    )
    .returning(*t.node_runs.c),
    record=NodeRunRecord,
)


def _claim_ids(ids: Any) -> Any:
    return (
        t.node_runs.update()
        .where(
            ids,
            _N.status == "ready",
            _N.available_at_ms <= sa.bindparam("_now"),
        )
        .values(
            status="in-progress",
            lease_owner=sa.bindparam("_owner"),
            lease_expires_ms=sa.bindparam("_expires"),
            lease_epoch=_N.lease_epoch + 1,
            attempt=_N.attempt + 1,
            started_at_ms=sa.bindparam("_now"),
        )
        .returning(*t.node_runs.c)
    )


CLAIM_IDS = _claim_ids(_N.id.in_(sa.bindparam("_ids", expanding=True)))
# A pending node run made ready and leased at once (the completing worker's hand-off).
CLAIM_PENDING = Prepared(
    t.node_runs.update()
    .where(*_PENDING_NODE_RUN)
    .values(
        status="in-progress",
        available_at_ms=sa.bindparam("_now"),
        lease_owner=sa.bindparam("_owner"),
        lease_expires_ms=sa.bindparam("_expires"),
        lease_epoch=_N.lease_epoch + 1,
        attempt=_N.attempt + 1,
        started_at_ms=sa.bindparam("_now"),
    )
    .returning(*t.node_runs.c),
    record=NodeRunRecord,
)
CLAIM_ID = Prepared(_claim_ids(_N.id == sa.bindparam("_id")), record=NodeRunRecord)
_DONE = t.node_runs.alias("done")
_RUN = t.runs.alias("run")
# Whether this transaction finished node run ``_done`` under lease ``_epoch``: the row is
# looked up by its id alone and then checked (NULL, i.e. false, when absent), so that the
# planner cannot scan the status index's "finished" rows instead (it did, with young table
# statistics: a cost growing with every node run ever finished).
_DONE_BY_US = (
    sa.select(
        sa.and_(
            _DONE.c.status == "finished",
            _DONE.c.lease_epoch == sa.bindparam("_epoch"),
            sa.text("done.xmin = pg_current_xact_id()::xid"),
        )
    )
    .where(_DONE.c.id == sa.bindparam("_done"))
    .scalar_subquery()
)
# CLAIM_PENDING sent together with a completion's first statement, before the engine has
# decided on successors (see Tx.lock_run_and_update_node): it applies only if that
# statement finished node run ``_done`` under lease ``_epoch`` in a run that is not over.
# (PostgreSQL only: "this transaction wrote the row" is its xmin being our transaction id;
# a row finished earlier under the same epoch, a duplicate completion, does not count.)
GATED_CLAIM_PENDING = Prepared(
    CLAIM_PENDING.stmt.where(
        _DONE_BY_US,
        sa.exists().where(
            _RUN.c.id == sa.bindparam("_run"),
            *(_RUN.c.status != status for status in TERMINAL_RUN),
        ),
    ),
    record=NodeRunRecord,
)
UNLEASED = _N.lease_owner.is_(None).label("unleased")
STATUS_COUNTS = Prepared(
    sa.select(_N.status, UNLEASED, sa.func.count().label("n"))
    .where(_N.run_id == sa.bindparam("_run"))
    .group_by(_N.status, UNLEASED)
)
INSERT_ATTEMPT = Prepared(t.attempts.insert())
INSERT_NODE_RUNS = Prepared(t.node_runs.insert())
INSERT_NODE_RUN_RETURNING = Prepared(
    t.node_runs.insert().returning(*t.node_runs.c), record=NodeRunRecord
)
INSERT_EVENT_BATCHES = Prepared(t.event_batches.insert())
BUMP_COUNTER = Prepared(
    t.event_counter.update()
    .where(t.event_counter.c.id == 1)
    .values(seq=t.event_counter.c.seq + sa.bindparam("_count"))
    .returning(t.event_counter.c.seq)
)
# The frame of a run this transaction holds locked: its number is known, nothing to read.
BUMP_FRAME_TO = Prepared(
    t.runs.update()
    .where(t.runs.c.id == sa.bindparam("_run"))
    .values(frame_no=sa.bindparam("_frame"))
)
BUMP_FRAME = Prepared(
    t.runs.update()
    .where(t.runs.c.id == sa.bindparam("_run"))
    .values(frame_no=t.runs.c.frame_no + 1)
    .returning(t.runs.c.frame_no, t.runs.c.namespace)
)
NEXT_DUE = Prepared(
    sa.select(sa.func.min(_N.available_at_ms).label("next_due")).where(
        CLAIMABLE_ROWS, sa.or_(_N.status == "ready", _N.status == "waiting-timer")
    )
)
# A foreach node's items, counted by status / the first pending ones (item completions).
ITEM_COUNTS = Prepared(
    sa.select(_N.status, sa.func.count().label("n"))
    .where(
        _N.run_id == sa.bindparam("_run"), _N.node_id == sa.bindparam("_node"), _N.iteration >= 0
    )
    .group_by(_N.status)
)
# One ready item of a foreach node, through the (run, status) index: ``node_id || ''`` and
# ``iteration + 0`` keep the planner off the (run, node, iteration) key, where items settle
# in order and the ready ones would be found last.
READY_ITEM = Prepared(
    sa.select(_N.id)
    .where(
        _N.run_id == sa.bindparam("_run"),
        _N.status == "ready",
        _N.node_id + "" == sa.bindparam("_node"),
        _N.iteration + 0 >= 0,
    )
    .limit(1)
)
# Up to ``_limit`` ready items of a foreach node leased at once (a completing worker's
# hand-off of the next items), through the (run, status) index as READY_ITEM; rows another
# transaction is claiming are skipped.
_PICKED_ITEMS = (
    sa.select(_N.id)
    .where(
        _N.run_id == sa.bindparam("_run"),
        _N.status == "ready",
        _N.node_id + "" == sa.bindparam("_node"),
        _N.iteration + 0 >= 0,
        _N.available_at_ms <= sa.bindparam("_now"),
    )
    .limit(sa.bindparam("_limit"))
    .with_for_update(skip_locked=True)
    # Evaluated once: an IN (subquery) with LIMIT and SKIP LOCKED may be run again (a
    # semi-join rescan) and lease more than ``_limit`` rows (seen on PostgreSQL).
    .cte("picked")
    .prefix_with("MATERIALIZED", dialect="postgresql")
)
CLAIM_READY_ITEMS = Prepared(
    _claim_ids(_N.id.in_(sa.select(_PICKED_ITEMS.c.id).scalar_subquery())),
    record=NodeRunRecord,
)
PENDING_ITEMS = Prepared(
    sa.select(*STATE_COLUMNS)
    .where(
        _N.run_id == sa.bindparam("_run"),
        _N.node_id == sa.bindparam("_node"),
        _N.iteration >= 0,
        _N.status == "pending",
    )
    .order_by(_N.iteration)
    .limit(sa.bindparam("_limit")),
    record=NodeState,
)


def claim(
    conn: sa.Connection, now_ms: int, owner: str, limit: int, lease_ms: int
) -> list[NodeRunRecord]:
    """Lease up to ``limit`` due node runs to ``owner`` (:data:`CLAIM`), by id."""
    params = {"_now": now_ms, "_limit": limit, "_owner": owner, "_expires": now_ms + lease_ms}
    rows, _count = CLAIM.execute(conn, params)
    return sorted(rows, key=_node_run_id)


def _node_run_id(node: NodeRunRecord) -> int:
    return node.id
