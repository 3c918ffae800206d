"""Records of run events (the durable event log every stream reads)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flowplane.store.records.base import Record

__all__ = ["EventRecord"]


@dataclass(frozen=True)
class EventRecord(Record):
    """One event: ``seq`` orders all events of the database; ``payload`` is its body."""

    seq: int
    run_id: str
    namespace: str
    type: str
    ts_ms: int
    payload: dict[str, Any]
    node_id: str | None = None
