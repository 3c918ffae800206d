"""Reading a run's attempts: the ``attempts`` rows and the successes kept on node runs.

A failed, lost or superseded attempt is a row of ``attempts``; a node run's successful
attempt is kept on the node run's own row (``worker``, ``attempt_started_ms``,
``finished_at_ms``: see :mod:`flowplane.engine.attempts`). Readers see one list, as before:
an :class:`AttemptRecord` per attempt, in the order the attempts finished; attempts that
finished in the same millisecond in node run order, then attempt order (before migration
0008, when every attempt was a row, such ties were listed in the order their rows were
written, e.g. the completion order of foreach items recorded together; nothing orders by
more than the finish time, so ties now have one stable order on both backends). A success
kept on a node run has no row id:
its record's ``id`` is minus the node run's id (nothing shows attempt ids; they are not a
cursor, see ``RunReads.log_page``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from flowplane.store import schema as t
from flowplane.store.prepared import Prepared
from flowplane.store.records import AttemptRecord, NodeRunRecord
from flowplane.store.tx import Tx

__all__ = ["attempts_of", "attempts_of_nodes", "kept_success", "merge_attempts"]

_ROWS_OF_RUN = Prepared(
    sa.select(t.attempts).where(t.attempts.c.run_id == sa.bindparam("_run")),
    record=AttemptRecord,
)
_N = t.node_runs.c
# What ordering and the kept successes need of every node run of the run.
_NODES_OF_RUN = Prepared(
    sa.select(
        _N.id,
        _N.node_id,
        _N.iteration,
        _N.attempt,
        _N.worker,
        _N.attempt_started_ms,
        _N.finished_at_ms,
    ).where(_N.run_id == sa.bindparam("_run"))
)


def kept_success(run_id: str, node: Any) -> AttemptRecord | None:
    """The successful attempt kept on node run ``node`` (a record or a row with its
    ``id``, ``node_id``, ``iteration``, ``attempt``, ``worker``, ``attempt_started_ms`` and
    ``finished_at_ms``), or ``None`` when it has none."""
    worker = node.worker if isinstance(node, NodeRunRecord) else node["worker"]
    if worker is None:
        return None
    get = (lambda k: getattr(node, k)) if isinstance(node, NodeRunRecord) else node.__getitem__
    return AttemptRecord(
        id=-int(get("id")),
        run_id=run_id,
        node_id=get("node_id"),
        iteration=int(get("iteration")),
        attempt=max(1, int(get("attempt"))),
        status="finished",
        finished_at_ms=int(get("finished_at_ms")),
        worker=worker or None,
        started_at_ms=get("attempt_started_ms"),
        error=None,
    )


def merge_attempts(
    rows: Iterable[AttemptRecord],
    kept: Iterable[AttemptRecord],
    order: dict[tuple[str, int], int],
) -> list[AttemptRecord]:
    """The attempts ``rows`` and ``kept`` in the order they finished; ``order`` maps a node
    run's ``(node_id, iteration)`` to its id (ties in the same millisecond)."""
    every = [*rows, *kept]
    last = max(order.values(), default=0) + 1

    def key(a: AttemptRecord) -> tuple[int, int, int, int]:
        return (a.finished_at_ms, order.get((a.node_id, a.iteration), last), a.attempt, a.id)

    every.sort(key=key)
    return every


def attempts_of(
    tx: Tx, run_id: str, nodes: Sequence[NodeRunRecord] | None = None
) -> list[AttemptRecord]:
    """Every attempt of the run's node runs, in the order they finished. ``nodes``: every
    node run of the run, when the caller has read them already (then they are not read
    again)."""
    params = {"_run": run_id}
    rows, _count = _ROWS_OF_RUN.execute(tx.conn, params)
    if nodes is not None:
        order = {(n.node_id, n.iteration): n.id for n in nodes}
        kept = (kept_success(run_id, n) for n in nodes)
        return merge_attempts(rows, (a for a in kept if a is not None), order)
    light, _count = _NODES_OF_RUN.execute(tx.conn, params)
    order = {(n["node_id"], int(n["iteration"])): int(n["id"]) for n in light}
    kept = (kept_success(run_id, n) for n in light)
    return merge_attempts(rows, (a for a in kept if a is not None), order)


def attempts_of_nodes(tx: Tx, run_id: str, nodes: Sequence[NodeRunRecord]) -> list[AttemptRecord]:
    """The attempts of the node runs ``nodes`` (full records: their kept successes are
    read from them), in the order they finished."""
    if not nodes:
        return []
    keys = {(node.node_id, node.iteration) for node in nodes}
    c = t.attempts.c
    query = sa.select(t.attempts).where(
        c.run_id == run_id,
        c.node_id.in_(sorted({node_id for node_id, _ in keys})),
        c.iteration.between(min(i for _, i in keys), max(i for _, i in keys)),
    )
    rows = (AttemptRecord.from_row(r._mapping) for r in tx.conn.execute(query))
    order = {(node.node_id, node.iteration): node.id for node in nodes}
    kept = (kept_success(run_id, node) for node in nodes)
    return merge_attempts(
        (row for row in rows if (row.node_id, row.iteration) in keys),
        (a for a in kept if a is not None),
        order,
    )
