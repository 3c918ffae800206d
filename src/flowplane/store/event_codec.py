"""The stored form of events and frames, and the wire bodies rebuilt from it.

A transaction's events of one run are stored as one ``event_batches`` row (see
:mod:`flowplane.store.schema`): ``events`` is ``[[type, nodeId, payload], ...]`` with
trailing ``null``/``{}`` left out, and the fields the row holds once (``runId``, ``seq``,
``timestampMs``) are not repeated per event. A batch with a frame ends with its
``FrameCommitted`` event, which is not stored at all: it is ``{frameNo}`` at the row's last
seq. ``changes`` is ``[[nodeId, iteration, status, attempt], ...]``, where a change that one
of the batch's events states exactly (a ``NodeReady``, ``NodeStarted`` or ``NodeFinished``
of that node, iteration and attempt) is that event's index instead (see
:data:`CHANGE_OF_EVENT`; part of the stored format: never change it).

The wire body is rebuilt with the keys in the order the backend returned them before
events were stored compactly: insertion order on SQLite (a JSON text column), and JSONB's
order on PostgreSQL (shorter keys first, then bytewise) — so a body is byte-for-byte what it
was.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from flowplane.store.records import EventRecord, FrameRecord

FRAME_COMMITTED = "FrameCommitted"


def pack_event(type_: str, node_id: str | None, payload: Mapping[str, Any]) -> list[Any]:
    """The stored form of one event (its body without the row's fields)."""
    if payload:
        return [type_, node_id, dict(payload)]
    if node_id is not None:
        return [type_, node_id]
    return [type_]


def pack_change(node_id: str, iteration: int, status: str, attempt: int) -> list[Any]:
    """The stored form of one node state change of a frame."""
    return [node_id, iteration, status, attempt]


CHANGE_OF_EVENT = {"NodeReady": "ready", "NodeStarted": "in-progress", "NodeFinished": "finished"}
"""The node status an event of these types states (with its node, iteration and attempt)."""


def _stated_change(packed: list[Any]) -> tuple[Any, ...] | None:
    """The change ``(nodeId, iteration, status, attempt)`` a stored event states, if any."""
    status = CHANGE_OF_EVENT.get(packed[0])
    if status is None or len(packed) < 3 or packed[1] is None:
        return None
    payload = packed[2]
    if "iteration" not in payload:
        return None
    return (packed[1], payload["iteration"], status, payload.get("attempt", 0))


def pack_changes(events: list[list[Any]], changes: list[list[Any]]) -> list[Any]:
    """``changes`` with each one that an event of ``events`` states replaced by its index."""
    stated: dict[tuple[Any, ...], int] = {}
    for index, packed in enumerate(events):
        change = _stated_change(packed)
        if change is not None:
            stated.setdefault(change, index)
    if not stated:
        return changes
    return [stated.get(tuple(change), change) for change in changes]


def unpack_changes(events: list[list[Any]], changes: list[Any]) -> list[tuple[Any, ...]]:
    """The changes of :func:`pack_changes`, as ``(nodeId, iteration, status, attempt)``."""
    out: list[tuple[Any, ...]] = []
    for change in changes:
        if isinstance(change, int):
            stated = _stated_change(events[change])
            if stated is None:  # (cannot happen: the writer checked)
                raise ValueError(f"stored change {change} names no node event")
            out.append(stated)
        else:
            out.append(tuple(change))
    return out


@functools.lru_cache(maxsize=4096)
def _jsonb_rank(key: str) -> tuple[int, bytes]:
    encoded = key.encode()
    return (len(encoded), encoded)


def jsonb_normal(value: Any) -> Any:
    """``value`` (decoded JSON) with every object's keys in the order PostgreSQL's JSONB
    gives them back (shorter keys first, then by their bytes): what a value written
    through a JSONB parameter reads back as."""
    if isinstance(value, dict):
        return {key: jsonb_normal(value[key]) for key in sorted(value, key=_jsonb_rank)}
    if isinstance(value, list):
        return [jsonb_normal(item) for item in value]
    if isinstance(value, float):
        # JSONB keeps numbers as ``numeric``: an exponent written as 1e+16 comes back as
        # the integer it is, and there is no negative zero.
        text = repr(value)
        if "e+" in text:
            return int(Decimal(text))
        if value == 0:
            return 0.0
    return value


def wire_order(body: dict[str, Any], dialect: str) -> dict[str, Any]:
    """``body`` with its keys in the order the backend's JSON column gave them back."""
    if dialect == "postgresql":
        return {key: body[key] for key in sorted(body, key=_jsonb_rank)}
    return body


def body(
    type_: str,
    run_id: str,
    seq: int,
    ts_ms: int,
    node_id: str | None,
    payload: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """An event's wire body (insertion order: as :meth:`EventsTx.event` builds it)."""
    out: dict[str, Any] = {"type": type_, "runId": run_id, "seq": seq, "timestampMs": ts_ms}
    if node_id is not None:
        out["nodeId"] = node_id
    if payload:
        out.update(payload)
    return out


def unpack_events(row: Mapping[Any, Any], dialect: str) -> list[EventRecord]:
    """The events of one ``event_batches`` row, in ``seq`` order."""
    run_id, namespace, ts_ms = row["run_id"], row["namespace"], row["ts_ms"]
    seq = row["last_seq"] - row["size"]
    out: list[EventRecord] = []
    for packed in row["events"]:
        seq += 1
        type_ = packed[0]
        node_id = packed[1] if len(packed) > 1 else None
        payload = packed[2] if len(packed) > 2 else None
        wire = wire_order(body(type_, run_id, seq, ts_ms, node_id, payload), dialect)
        out.append(EventRecord(seq, run_id, namespace, type_, ts_ms, wire, node_id))
    if row["frame_no"] is not None:
        seq += 1
        frame = {"frameNo": row["frame_no"]}
        wire = wire_order(body(FRAME_COMMITTED, run_id, seq, ts_ms, None, frame), dialect)
        out.append(EventRecord(seq, run_id, namespace, FRAME_COMMITTED, ts_ms, wire, None))
    return out


def unpack_frame(row: Mapping[Any, Any], dialect: str) -> FrameRecord:
    """The frame of an ``event_batches`` row that has one."""
    changes = [
        wire_order(
            {"nodeId": node_id, "iteration": iteration, "status": status, "attempt": attempt},
            dialect,
        )
        for node_id, iteration, status, attempt in unpack_changes(row["events"], row["changes"])
    ]
    return FrameRecord(row["run_id"], row["frame_no"], row["last_seq"], row["ts_ms"], changes)
