"""The typed records services hand to faces (the store's records, re-exported).

A face imports records from here, never from ``store/`` (the API may not import the
store): ``from flowplane.services.records import ScheduleRecord``.
"""

from __future__ import annotations

from flowplane.store.records import (
    ApiKeyRecord,
    ApprovalRecord,
    AttemptRecord,
    AuditRecord,
    CredentialPolicyRecord,
    CredentialRecord,
    DeliveryRecord,
    EventRecord,
    FrameRecord,
    KVRecord,
    LogRecord,
    NodeRunRecord,
    OwnedRecord,
    RevisionRecord,
    RunRecord,
    ScheduleFireRecord,
    ScheduleRecord,
    TriggerRecord,
    UserRecord,
    WorkflowRecord,
)

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
    "OwnedRecord",
    "RevisionRecord",
    "RunRecord",
    "ScheduleFireRecord",
    "ScheduleRecord",
    "TriggerRecord",
    "UserRecord",
    "WorkflowRecord",
]
