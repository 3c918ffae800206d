"""Events stored as one compact row per (transaction, run), on both backends.

* Resuming a run's event stream after any ``seq`` — also one in the middle of a stored
  batch — gives exactly the events after it, with the bodies of a full replay.
* An existing database (events and frames written in the old one-row-per-event form) is
  converted by migration 0007: every event keeps its ``seq`` and its wire body byte for byte,
  every frame its number and changes; the log goes on gap-free afterwards, and a downgrade
  gives the old rows back.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from migration_support import downgrade, store_at
from runs_support import LOG_WORKFLOW, VIEWER, Api, started_api
from sqlalchemy.dialects import postgresql
from test_runs_api import parse_sse

from flowplane.store import migrate, reads

OLD_REVISION = "0006"


@pytest.fixture
async def api(db: tuple[str, str], tmp_path: Path) -> AsyncIterator[Api]:
    root = tmp_path / "root"
    root.mkdir()
    async with started_api(db, root) as started:
        yield started


def _bytes(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"))


async def test_resume_after_every_seq_of_a_run(api: Api) -> None:
    run_id = await api.dispatch_file("logs.yaml", LOG_WORKFLOW, {"who": "eve"})
    await api.wait_status(run_id, "finished")
    url = f"/v1/runs/{run_id}/events"
    full = parse_sse((await api.http.get(url, headers=api.headers(VIEWER))).text)
    seqs = [int(e["id"]) for e in full]
    assert len(seqs) > 6
    # Several events share a transaction (a stored batch): cuts fall inside batches too.
    assert len({e["data"]["timestampMs"] for e in full}) < len(full)
    for cut in [0, *seqs]:
        headers = {**api.headers(VIEWER), "Last-Event-ID": str(cut)}
        resumed = parse_sse((await api.http.get(url, headers=headers)).text)
        assert [e["data"] for e in resumed] == [e["data"] for e in full if int(e["id"]) > cut]


def _old_tables() -> tuple[sa.Table, sa.Table]:
    meta = sa.MetaData()
    json_type = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    events = sa.Table(
        "events",
        meta,
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("run_id", sa.String),
        sa.Column("namespace", sa.String),
        sa.Column("type", sa.String),
        sa.Column("node_id", sa.String),
        sa.Column("ts_ms", sa.BigInteger),
        sa.Column("payload", json_type),
    )
    frames = sa.Table(
        "frames",
        meta,
        sa.Column("run_id", sa.String, primary_key=True),
        sa.Column("frame_no", sa.Integer, primary_key=True),
        sa.Column("seq", sa.BigInteger),
        sa.Column("ts_ms", sa.BigInteger),
        sa.Column("changes", json_type),
    )
    return events, frames


def _old_log(run_a: str, run_b: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Old-form rows as the old writer made them: two runs' events interleaved in one
    transaction, a FrameCommitted event per frame, payloads with nested objects."""
    events: list[dict[str, Any]] = []
    frames: list[dict[str, Any]] = []

    def event(run: str, type_: str, ts: int, node: str | None = None, **payload: Any) -> int:
        seq = len(events) + 1
        body = {"type": type_, "runId": run, "seq": seq, "timestampMs": ts}
        if node is not None:
            body["nodeId"] = node
        body.update(payload)
        events.append(
            {
                "seq": seq,
                "run_id": run,
                "namespace": "default",
                "type": type_,
                "node_id": node,
                "ts_ms": ts,
                "payload": body,
            }
        )
        return seq

    def frame(run: str, frame_no: int, ts: int, changes: list[dict[str, Any]]) -> None:
        seq = event(run, "FrameCommitted", ts, frameNo=frame_no)
        frames.append(
            {"run_id": run, "frame_no": frame_no, "seq": seq, "ts_ms": ts, "changes": changes}
        )

    change = {"nodeId": "a", "iteration": 0, "status": "ready", "attempt": 0}
    event(run_a, "RunStarted", 1000, trigger="api", parentRunId=None, workflowName="w")
    event(run_a, "NodeReady", 1000, "a", iteration=0)
    event(run_b, "RunStarted", 1000, trigger="api", parentRunId=run_a, workflowName="w")
    frame(run_a, 1, 1000, [change])
    frame(run_b, 1, 1000, [{**change, "nodeId": "b"}])
    event(run_a, "NodeFinished", 1005, "a", output={"zeta": [1, 2.5, {"b": 1, "a": "é"}]})
    event(run_a, "NodeLog", 1006, "a", message="hi", level="info")
    frame(run_a, 2, 1006, [{**change, "status": "finished", "attempt": 1}])
    event(run_a, "RunFinished", 1007, output={"a": {"zeta": 1}})
    return events, frames


async def test_migration_converts_an_existing_log(db: tuple[str, str]) -> None:
    schema = db[1]
    async with store_at(db, OLD_REVISION) as store:
        old_events, old_frames = _old_tables()
        run_a, run_b = str(uuid.uuid4()), str(uuid.uuid4())
        events, frames = _old_log(run_a, run_b)
        with store.engine.begin() as conn:
            conn.execute(old_events.insert(), events)
            conn.execute(old_frames.insert(), frames)
            conn.execute(
                sa.text("UPDATE event_counter SET seq = :n WHERE id = 1"), {"n": len(events)}
            )
            # The wire bodies as the old reads returned them (JSONB's order on PostgreSQL).
            before = [
                _bytes(dict(r.payload))
                for r in conn.execute(sa.select(old_events).order_by(old_events.c.seq))
            ]
            before_frames = [
                (r.run_id, r.frame_no, r.seq, r.ts_ms, [dict(c) for c in r.changes])
                for r in conn.execute(sa.select(old_frames).order_by(old_frames.c.seq))
            ]

        migrate.upgrade(store)
        assert migrate.current_revision(store) == migrate.head_revision()

        def replay(tx: Any) -> list[str]:
            return [_bytes(e.payload) for e in reads.events_after(tx, limit=100)]

        assert await store.read(replay) == before
        for cut in range(len(before) + 1):
            tail = await store.read(
                lambda tx, cut=cut: [
                    _bytes(e.payload) for e in reads.events_after(tx, after_seq=cut, limit=100)
                ]
            )
            assert tail == before[cut:]
        b_only = await store.read(lambda tx: reads.events_after(tx, run_id=run_b))
        assert [e.seq for e in b_only] == [3, 5]
        no_frames = await store.read(
            lambda tx: reads.events_after(tx, types=["NodeLog", "RunFinished"], limit=1)
        )
        assert [e.type for e in no_frames] == ["NodeLog"]

        def frames_of(tx: Any) -> list[Any]:
            out = []
            for run in (run_a, run_b):
                for f in reads.frames_after(tx, run):
                    out.append((f.run_id, f.frame_no, f.seq, f.ts_ms, f.changes))
            return sorted(out, key=lambda f: f[2])

        after_frames = await store.read(frames_of)
        assert [(*f[:4], [_bytes(c) for c in f[4]]) for f in after_frames] == [
            (*f[:4], [_bytes(c) for c in f[4]]) for f in before_frames
        ]
        assert [f.frame_no for f in await store.read(lambda tx: reads.frames_until(tx, run_a, 1))]
        # New events go on from the counter: gap-free after the converted ones.
        await store.transact(lambda tx: tx.event(run_a, "default", "NodeLog", "a", message="x"))
        seqs = await store.read(lambda tx: [e.seq for e in reads.events_after(tx, limit=100)])
        assert seqs == list(range(1, len(before) + 2))

        # And back: the downgrade restores the old rows.
        downgrade(store, schema, OLD_REVISION)
        with store.engine.begin() as conn:
            restored = [
                _bytes(dict(r.payload))
                for r in conn.execute(sa.select(old_events).order_by(old_events.c.seq))
            ]
            restored_frames = conn.execute(sa.select(sa.func.count()).select_from(old_frames))
            assert restored_frames.scalar() == len(frames)
        assert restored[: len(before)] == before and len(restored) == len(before) + 1
