"""Typed records: what the store hands to services, one module per area.

``dict`` rows stay inside ``store/``: every query a service makes returns one of these
frozen dataclasses (procrastinate's ``jobs.Job`` is the model), and so does every read the
engine makes inside its transactions. See :mod:`.base` for how they are built and why they
are frozen but not slotted, and :class:`.RunRecord` for why it alone is not frozen.
"""

from __future__ import annotations

from flowplane.store.records.audit import AuditRecord
from flowplane.store.records.auth import ApiKeyRecord, UserRecord
from flowplane.store.records.base import Record
from flowplane.store.records.credentials import CredentialPolicyRecord, CredentialRecord
from flowplane.store.records.events import EventRecord
from flowplane.store.records.kv import KVRecord
from flowplane.store.records.runs import (
    ApprovalRecord,
    AttemptRecord,
    FrameRecord,
    LogRecord,
    NodeRunRecord,
    NodeState,
    RunRecord,
    SignalRecord,
    node_status,
    run_status,
)
from flowplane.store.records.triggers import (
    DeliveryRecord,
    OwnedRecord,
    ScheduleFireRecord,
    ScheduleRecord,
    TriggerRecord,
)
from flowplane.store.records.workflows import RevisionRecord, WorkflowHead, WorkflowRecord

__all__ = [
    "ApiKeyRecord",
    "ApprovalRecord",
    "AttemptRecord",
    "AuditRecord",
    "CredentialPolicyRecord",
    "CredentialRecord",
    "DeliveryRecord",
    "EventRecord",
    "FrameRecord",
    "KVRecord",
    "LogRecord",
    "NodeRunRecord",
    "NodeState",
    "OwnedRecord",
    "Record",
    "RevisionRecord",
    "RunRecord",
    "ScheduleFireRecord",
    "ScheduleRecord",
    "SignalRecord",
    "TriggerRecord",
    "UserRecord",
    "WorkflowHead",
    "WorkflowRecord",
    "node_status",
    "run_status",
]
