"""The Flowplane Python client: :class:`Client` and :class:`AsyncClient`, one method per route.

It needs only ``httpx``, ``httpx-sse`` and ``pydantic`` (``pip install flowplane``); the
server's dependencies are not imported. Errors are the classes of :mod:`flowplane.errors`,
rebuilt from the problem document's ``code``, so ``except RunNotActive`` works on both sides
of the wire.
"""

from __future__ import annotations

from flowplane.client.async_client import AsyncClient
from flowplane.client.client import Client
from flowplane.client.models import (
    TERMINAL_EVENT_TYPES,
    TERMINAL_STATUSES,
    Approval,
    Attempt,
    DispatchResult,
    Event,
    LogItem,
    LogPage,
    NodeState,
    PatchResult,
    Run,
    RunDetail,
    RunList,
    SignalResult,
    SkippedItem,
    ValidationIssue,
)
from flowplane.errors import (
    AlreadyDecided,
    ApprovalNotFound,
    Conflict,
    FlowplaneError,
    Forbidden,
    IdempotencyKeyReused,
    InvalidInput,
    NodeNotFound,
    NotFound,
    PreconditionFailed,
    RateLimited,
    RunNotActive,
    RunNotFound,
    Unauthorized,
    VersionMismatch,
    WorkflowNotFound,
    WorkflowPathOutsideRoot,
)

__all__ = [
    "TERMINAL_EVENT_TYPES",
    "TERMINAL_STATUSES",
    "AlreadyDecided",
    "Approval",
    "ApprovalNotFound",
    "AsyncClient",
    "Attempt",
    "Client",
    "Conflict",
    "DispatchResult",
    "Event",
    "FlowplaneError",
    "Forbidden",
    "IdempotencyKeyReused",
    "InvalidInput",
    "LogItem",
    "LogPage",
    "NodeNotFound",
    "NodeState",
    "NotFound",
    "PatchResult",
    "PreconditionFailed",
    "RateLimited",
    "Run",
    "RunDetail",
    "RunList",
    "RunNotActive",
    "RunNotFound",
    "SignalResult",
    "SkippedItem",
    "Unauthorized",
    "ValidationIssue",
    "VersionMismatch",
    "WorkflowNotFound",
    "WorkflowPathOutsideRoot",
]
