"""The stored form of events and frames: bodies and changes come back as they went in."""

from __future__ import annotations

import importlib.util
import json
from typing import Any

from flowplane.store import event_codec as codec
from flowplane.store.migrations import versions

RUN = "01a24e64-207d-7a6a-8f3b-f0d9d55358f0"


def _migration() -> Any:
    path = f"{versions.__path__[0]}/0007_event_batches.py"
    spec = importlib.util.spec_from_file_location("m0007", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _row(events: list[list[Any]], frame_no: int | None, changes: Any) -> dict[str, Any]:
    size = len(events) + (frame_no is not None)
    return {
        "last_seq": 10 + size,
        "size": size,
        "run_id": RUN,
        "namespace": "default",
        "ts_ms": 1234,
        "events": events,
        "frame_no": frame_no,
        "changes": changes,
    }


def test_changes_an_event_states_are_stored_as_its_index() -> None:
    events = [
        codec.pack_event("NodeFinished", "n0", {"output": {}, "attempt": 1, "iteration": 0}),
        codec.pack_event("NodeReady", "n1", {"iteration": 0}),
        codec.pack_event("NodeStarted", "n1", {"attempt": 1, "iteration": 0}),
        codec.pack_event("NodeLog", "n1", {"message": "m"}),
    ]
    changes = [
        codec.pack_change("n0", 0, "finished", 1),
        codec.pack_change("n1", 0, "ready", 0),
        codec.pack_change("n1", 0, "in-progress", 1),
        codec.pack_change("n2", 0, "pending", 0),  # no event states it
        codec.pack_change("n1", 0, "ready", 3),  # another attempt than the event's
    ]
    packed = codec.pack_changes(events, changes)
    assert packed == [0, 1, 2, ["n2", 0, "pending", 0], ["n1", 0, "ready", 3]]
    assert [list(c) for c in codec.unpack_changes(events, packed)] == changes
    # What the frame reads give back, on each backend.
    stored = json.loads(json.dumps(_row(events, 7, packed)))
    frame = codec.unpack_frame(stored, "sqlite")
    assert frame.frame_no == 7 and frame.seq == 15 and frame.ts_ms == 1234
    assert frame.changes[0] == {"nodeId": "n0", "iteration": 0, "status": "finished", "attempt": 1}
    assert list(frame.changes[0]) == ["nodeId", "iteration", "status", "attempt"]
    assert list(codec.unpack_frame(stored, "postgresql").changes[0]) == [
        "nodeId",
        "status",
        "attempt",
        "iteration",
    ]
    # The migration's downgrade reads the same changes out of a stored batch.
    migration = _migration()
    assert [migration._change(stored["events"], c) for c in packed] == changes


def test_bodies_come_back_in_the_backends_key_order() -> None:
    events = [
        codec.pack_event("RunStarted", None, {"trigger": "api", "parentRunId": None}),
        codec.pack_event("NodeReady", "a", {"iteration": 0}),
        codec.pack_event("Marker", None, {}),
    ]
    row = _row(events, 3, [])
    sqlite = codec.unpack_events(row, "sqlite")
    assert [e.seq for e in sqlite] == [11, 12, 13, 14]
    assert [e.type for e in sqlite] == ["RunStarted", "NodeReady", "Marker", "FrameCommitted"]
    assert list(sqlite[1].payload) == ["type", "runId", "seq", "timestampMs", "nodeId", "iteration"]
    assert sqlite[3].payload == {
        "type": "FrameCommitted",
        "runId": RUN,
        "seq": 14,
        "timestampMs": 1234,
        "frameNo": 3,
    }
    postgres = codec.unpack_events(row, "postgresql")
    # JSONB's order: shorter keys first, then bytewise.
    assert list(postgres[1].payload) == [
        "seq",
        "type",
        "runId",
        "nodeId",
        "iteration",
        "timestampMs",
    ]
    assert [e.payload for e in postgres] == [e.payload for e in sqlite]
