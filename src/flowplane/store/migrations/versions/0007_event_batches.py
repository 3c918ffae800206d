"""event batches

The event log is stored compactly: ``event_batches`` holds one row per (transaction, run)
with that transaction's events of the run (``[type, nodeId, payload]``, without the wire
fields the row holds: ``type``, ``runId``, ``seq``, ``timestampMs``, ``nodeId``) and the
frame it committed, which replaces the ``frames`` table and the stored ``FrameCommitted``
events. Existing events are converted one per row (a batch of one; a ``FrameCommitted``
event with its frame): every event keeps its ``seq`` and its wire body, every frame its
number and changes.

``ix_node_runs_claim`` only covers the statuses claims and the lease reaper look for
(most node runs are settled and were indexed for nothing).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 03:00:00.000000
"""

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
CLAIMABLE = "status IN ('ready', 'waiting-timer', 'in-progress')"
CHUNK = 5000

events = sa.table(
    "events",
    sa.column("seq", sa.BigInteger),
    sa.column("run_id", sa.String),
    sa.column("namespace", sa.String),
    sa.column("type", sa.String),
    sa.column("node_id", sa.String),
    sa.column("ts_ms", sa.BigInteger),
    sa.column("payload", JSON),
)
frames = sa.table(
    "frames",
    sa.column("run_id", sa.String),
    sa.column("frame_no", sa.Integer),
    sa.column("seq", sa.BigInteger),
    sa.column("ts_ms", sa.BigInteger),
    sa.column("changes", JSON),
)
batches = sa.table(
    "event_batches",
    sa.column("last_seq", sa.BigInteger),
    sa.column("size", sa.Integer),
    sa.column("run_id", sa.String),
    sa.column("namespace", sa.String),
    sa.column("ts_ms", sa.BigInteger),
    sa.column("events", sa.JSON),
    sa.column("frame_no", sa.Integer),
    sa.column("changes", sa.JSON),
)


def _chunks(conn: sa.Connection, query: sa.Select[Any], key: Any) -> Iterator[Sequence[Any]]:
    """The rows of ``query`` in ``key`` order, ``CHUNK`` at a time (keyset paging)."""
    after = None
    while True:
        page = query if after is None else query.where(key > after)
        rows = conn.execute(page.order_by(key).limit(CHUNK)).all()
        if not rows:
            return
        yield rows
        after = rows[-1]._mapping[key.name]


def _batch_of(event: Any, frame: Any) -> dict[str, Any]:
    """The ``event_batches`` row of one old event (and its frame, for ``FrameCommitted``)."""
    # The fields the batch row gives back (a key that says something else stays).
    given = {
        "type": event.type,
        "runId": event.run_id,
        "seq": event.seq,
        "timestampMs": event.ts_ms,
        "nodeId": event.node_id,
    }
    rest = {
        k: v
        for k, v in dict(event.payload).items()
        if not (k in given and v == given[k] and v is not None)
    }
    row: dict[str, Any] = {
        "last_seq": event.seq,
        "size": 1,
        "run_id": event.run_id,
        "namespace": event.namespace,
        "ts_ms": event.ts_ms,
        "frame_no": None,
        "changes": None,
    }
    if (
        event.type == "FrameCommitted"
        and frame is not None
        and event.node_id is None
        and rest == {"frameNo": frame.frame_no}
    ):
        row["events"] = []
        row["frame_no"] = frame.frame_no
        row["changes"] = [
            [c["nodeId"], c["iteration"], c["status"], c.get("attempt", 0)] for c in frame.changes
        ]
        return row
    packed: list[Any] = [event.type]
    if rest or event.node_id is not None:
        packed.append(event.node_id)
    if rest:
        packed.append(rest)
    row["events"] = [packed]
    return row


def upgrade() -> None:
    op.create_table(
        "event_batches",
        sa.Column(
            "last_seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("namespace", sa.String(length=64), nullable=False),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("frame_no", sa.Integer(), nullable=True),
        sa.Column("changes", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("last_seq"),
    )
    conn = op.get_bind()
    joined = sa.select(
        events.c.seq,
        events.c.run_id,
        events.c.namespace,
        events.c.type,
        events.c.node_id,
        events.c.ts_ms,
        events.c.payload,
        frames.c.frame_no,
        frames.c.changes,
    ).select_from(
        events.outerjoin(
            frames, sa.and_(frames.c.seq == events.c.seq, frames.c.run_id == events.c.run_id)
        )
    )
    for rows in _chunks(conn, joined, events.c.seq):
        converted = [_batch_of(r, r if r.frame_no is not None else None) for r in rows]
        conn.execute(batches.insert(), converted)
    with op.batch_alter_table("event_batches") as batch_op:
        batch_op.create_index("ix_event_batches_run", ["run_id", "last_seq"], unique=False)
        batch_op.create_index("ix_event_batches_namespace", ["namespace", "last_seq"], unique=False)
    with op.batch_alter_table("events") as batch_op:
        batch_op.drop_index("ix_events_run_seq")
        batch_op.drop_index("ix_events_namespace_seq")
    op.drop_table("events")
    op.drop_table("frames")
    with op.batch_alter_table("node_runs") as batch_op:
        batch_op.drop_index("ix_node_runs_claim")
        batch_op.create_index(
            "ix_node_runs_claim",
            ["status", "available_at_ms"],
            unique=False,
            sqlite_where=sa.text(CLAIMABLE),
            postgresql_where=sa.text(CLAIMABLE),
        )


def _old_rows(row: Any) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The ``events`` rows (and ``frames`` row) of one batch."""
    out: list[dict[str, Any]] = []
    seq = row.last_seq - row.size
    for packed in row.events:
        seq += 1
        node_id = packed[1] if len(packed) > 1 else None
        body: dict[str, Any] = {
            "type": packed[0],
            "runId": row.run_id,
            "seq": seq,
            "timestampMs": row.ts_ms,
        }
        if node_id is not None:
            body["nodeId"] = node_id
        if len(packed) > 2:
            body.update(packed[2])
        out.append(_old_event(row, seq, packed[0], node_id, body))
    if row.frame_no is None:
        return out, None
    seq += 1
    body = {"type": "FrameCommitted", "runId": row.run_id, "seq": seq, "timestampMs": row.ts_ms}
    body["frameNo"] = row.frame_no
    out.append(_old_event(row, seq, "FrameCommitted", None, body))
    changes = [
        {"nodeId": n, "iteration": i, "status": s, "attempt": a}
        for n, i, s, a in (_change(row.events, c) for c in row.changes)
    ]
    frame = {
        "run_id": row.run_id,
        "frame_no": row.frame_no,
        "seq": seq,
        "ts_ms": row.ts_ms,
        "changes": changes,
    }
    return out, frame


# What a change stored as an event's index stands for (flowplane.store.event_codec's
# CHANGE_OF_EVENT, as of this revision).
STATED = {"NodeReady": "ready", "NodeStarted": "in-progress", "NodeFinished": "finished"}


def _change(stored_events: list[Any], change: Any) -> list[Any]:
    """A frame's change, ``[nodeId, iteration, status, attempt]``, also when it is stored
    as the index of the event that states it."""
    if not isinstance(change, int):
        return list(change)
    type_, node_id, payload = stored_events[change][:3]
    return [node_id, payload["iteration"], STATED[type_], payload.get("attempt", 0)]


def _old_event(row: Any, seq: int, type_: str, node_id: Any, body: Any) -> dict[str, Any]:
    return {
        "seq": seq,
        "run_id": row.run_id,
        "namespace": row.namespace,
        "type": type_,
        "node_id": node_id,
        "ts_ms": row.ts_ms,
        "payload": body,
    }


def downgrade() -> None:
    with op.batch_alter_table("node_runs") as batch_op:
        batch_op.drop_index(
            "ix_node_runs_claim",
            sqlite_where=sa.text(CLAIMABLE),
            postgresql_where=sa.text(CLAIMABLE),
        )
        batch_op.create_index("ix_node_runs_claim", ["status", "available_at_ms"], unique=False)
    op.create_table(
        "events",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("namespace", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=True),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_table(
        "frames",
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("frame_no", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        sa.Column("changes", JSON, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "frame_no"),
    )
    conn = op.get_bind()
    for rows in _chunks(conn, sa.select(batches), batches.c.last_seq):
        old_events: list[dict[str, Any]] = []
        old_frames: list[dict[str, Any]] = []
        for row in rows:
            written, frame = _old_rows(row)
            old_events.extend(written)
            if frame is not None:
                old_frames.append(frame)
        if old_events:
            conn.execute(events.insert(), old_events)
        if old_frames:
            conn.execute(frames.insert(), old_frames)
    with op.batch_alter_table("events") as batch_op:
        batch_op.create_index("ix_events_namespace_seq", ["namespace", "seq"], unique=False)
        batch_op.create_index("ix_events_run_seq", ["run_id", "seq"], unique=False)
    with op.batch_alter_table("event_batches") as batch_op:
        batch_op.drop_index("ix_event_batches_run")
        batch_op.drop_index("ix_event_batches_namespace")
    op.drop_table("event_batches")
