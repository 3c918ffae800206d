"""Wire models of ``/v1/triggers`` and ``POST /v1/webhooks/{key}``: bodies in and out."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from flowplane.client.models import WireModel
from flowplane.model.document import NAMESPACE_PATTERN
from flowplane.services.records import TriggerRecord
from flowplane.services.triggers import MAX_SECRET_CHARS


class TriggerIn(BaseModel):
    """``POST /v1/triggers`` and ``PUT /v1/triggers/{id}``."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    workflow_id: str | None = Field(
        default=None, max_length=64, description="The workflow to run (kind `run`)."
    )
    workflow: str | None = Field(
        default=None, max_length=128, description="A workflow name (with `namespace`)."
    )
    namespace: str | None = Field(default=None, pattern=NAMESPACE_PATTERN)
    key: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$",
        description="The URL key: `POST /v1/webhooks/{key}` (generated when omitted).",
    )
    kind: Literal["run", "signal"] = "run"
    signal_name: str | None = Field(default=None, max_length=128)
    correlation: str | None = Field(
        default=None,
        max_length=1000,
        description="Kind `signal`: an expression over `body`, `headers`, `query` giving the "
        "correlation id, e.g. `body.order.id`.",
    )
    scheme: Literal["none", "standard", "github", "stripe"] = "none"
    secret: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_SECRET_CHARS,
        description="Write-only. On PUT, omit it to keep the current one.",
    )
    enabled: bool = True


class TriggerOut(WireModel):
    """A trigger (never its secret)."""

    id: str
    namespace: str
    workflow_id: str | None
    key: str
    url: str = Field(description="The path deliveries are posted to.")
    kind: str
    signal_name: str | None
    correlation: str | None
    scheme: str
    has_secret: bool
    enabled: bool
    owner: str = Field(description="`api`, or `workflow` when declared in its `triggers:`.")
    created_at_ms: int
    updated_at_ms: int
    created_by: str | None = None


class TriggerList(WireModel):
    """A page of triggers; pass ``nextCursor`` as ``cursor`` for the next page."""

    items: list[TriggerOut]
    next_cursor: str | None = None


def trigger_out(row: TriggerRecord) -> TriggerOut:
    """The wire form of a trigger."""
    return TriggerOut(
        id=row.id,
        namespace=row.namespace,
        workflow_id=row.workflow_id,
        key=row.key,
        url=f"/v1/webhooks/{row.key}",
        kind=row.kind,
        signal_name=row.signal_name,
        correlation=row.correlation,
        scheme=row.scheme,
        has_secret=bool(row.secret),
        enabled=bool(row.enabled),
        owner=row.owner,
        created_at_ms=row.created_at_ms,
        updated_at_ms=row.updated_at_ms,
        created_by=row.created_by,
    )


class WebhookAccepted(BaseModel):
    """What a webhook delivery did: a run started, runs signalled, or a replay ignored."""

    model_config = ConfigDict(extra="forbid")
    runId: str | None = None
    delivered: int | None = None
    runIds: list[str] | None = None
    correlationId: str | None = None
    duplicate: bool | None = None
