"""Records of schedules, their fires, webhook and signal triggers, and webhook deliveries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flowplane.store.records.base import Record

__all__ = [
    "DeliveryRecord",
    "OwnedRecord",
    "ScheduleFireRecord",
    "ScheduleRecord",
    "TriggerRecord",
]


@dataclass(frozen=True, kw_only=True)
class OwnedRecord(Record):
    """What schedules and triggers share: they belong to a namespace and, through
    ``owner``, to the API (``api``) or to their workflow's document (``workflow``)."""

    id: str
    namespace: str
    owner: str = "api"
    created_at_ms: int = 0
    updated_at_ms: int = 0
    created_by: str | None = None


@dataclass(frozen=True, kw_only=True)
class ScheduleRecord(OwnedRecord):
    """A cron schedule of a workflow."""

    workflow_id: str
    name: str
    cron: str
    timezone: str = "UTC"
    input: dict[str, Any] | None = None
    enabled: bool = True
    start_at_ms: int | None = None
    end_at_ms: int | None = None
    catchup: str = "latest"
    catchup_window_seconds: int = 3600
    next_fire_ms: int | None = None
    last_fired_slot_ms: int | None = None


@dataclass(frozen=True)
class ScheduleFireRecord(Record):
    """One slot a schedule fired (or skipped): ``status`` is ``started``, ``skipped``, ..."""

    id: int
    schedule_id: str
    slot_ms: int
    fired_at_ms: int
    status: str
    run_id: str | None = None
    error: Any = None


@dataclass(frozen=True, kw_only=True)
class TriggerRecord(OwnedRecord):
    """A webhook (``kind`` ``run``) or signal (``kind`` ``signal``) trigger."""

    key: str
    workflow_id: str | None = None
    kind: str = "run"
    signal_name: str | None = None
    correlation: str | None = None
    scheme: str = "none"
    secret: str | None = None
    enabled: bool = True


@dataclass(frozen=True)
class DeliveryRecord(Record):
    """A webhook delivery id a trigger has seen (replays are answered from it)."""

    trigger_id: str
    delivery_id: str
    received_at_ms: int
    run_id: str | None = None
    id: int = 0
