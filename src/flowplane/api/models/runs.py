"""Request bodies of the run routes (``/v1/runs``) and of the RPC methods that mirror them.

The shapes are wire-compatible with Smithers' server (``POST /v1/runs`` with
``workflowPath``, its approve/deny and signal bodies), so its HTTP client works against
Flowplane unchanged. Responses are the models of :mod:`flowplane.client.models`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from flowplane.errors import InvalidInput
from flowplane.model.bounds import FrameNo, Iteration, check_epoch_ms, epoch_ms
from flowplane.services.launch import LaunchRequest

__all__ = [
    "DecisionBody",
    "DispatchBody",
    "ForkBody",
    "ResumeBody",
    "RetryBody",
    "RewindBody",
    "SignalBody",
    "parse_time",
    "split_values",
]


class _Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


def _given(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON Schema branch: ``name`` is present and matches ``schema``."""
    return {"required": [name], "properties": {name: schema}}


_SOURCES = ("workflowId", "workflow", "workflowPath")


class DispatchBody(_Body):
    """``POST /v1/runs``: one of ``workflowId``, ``workflow`` (a name) or ``workflowPath``."""

    # What the service checks, said in the schema: exactly one non-empty source, unless
    # the body resumes the run ``runId``.
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={
            "anyOf": [
                {
                    "required": ["resume", "runId"],
                    "properties": {"resume": {"const": True}, "runId": {"type": "string"}},
                },
                {
                    "properties": {"resume": {"const": False}},
                    "oneOf": [_given(s, {"type": "string", "minLength": 1}) for s in _SOURCES],
                },
            ]
        },
    )

    workflow_id: str | None = Field(default=None, description="A stored workflow's id.")
    workflow: str | None = Field(default=None, description="A stored workflow's name.")
    workflow_path: str | None = Field(
        default=None, description="A workflow file under the server's root folder."
    )
    namespace: str | None = Field(
        default=None, description="Namespace of `workflow` (default: default)."
    )
    input: Any = Field(default=None, description="The run input (validated at dispatch).")
    run_id: str | None = Field(
        default=None, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$", description="Own run id."
    )
    resume: bool = Field(default=False, description="Resume the run `runId` instead.")
    idempotency_key: str | None = Field(
        default=None,
        min_length=1,  # an empty key was stored as one: its second use was a 503
        max_length=255,
        description="Same as the Idempotency-Key header.",
    )
    config: dict[str, Any] | None = Field(
        default=None, description="Accepted for Smithers compatibility; ignored."
    )

    def request_hash(self) -> str:
        """A stable hash of what the body asks for (the idempotency key is left out)."""
        data = self.model_dump(mode="json", exclude={"idempotency_key", "config"})
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def launch_request(self, idempotency_key: str | None = None) -> LaunchRequest:
        """The service request of this body (``idempotency_key``: the header's, if sent)."""
        return LaunchRequest(
            workflow_id=self.workflow_id,
            workflow=self.workflow,
            workflow_path=self.workflow_path,
            namespace=self.namespace,
            input=self.input,
            run_id=self.run_id,
            resume=self.resume,
            idempotency_key=idempotency_key or self.idempotency_key,
            request_hash=self.request_hash(),
        )


class ResumeBody(_Body):
    """``POST /v1/runs/{id}/resume``. Smithers' fields are accepted and ignored: a run
    resumes from its pinned workflow document."""

    workflow_path: str | None = None
    input: Any = None
    config: dict[str, Any] | None = None


class RetryBody(_Body):
    """``POST /v1/runs/{id}/retry``."""

    use_latest_version: bool = Field(
        default=False, description="Run the workflow's current version, not the run's."
    )


class DecisionBody(_Body):
    """``POST /v1/runs/{id}/nodes/{nodeId}/approve|deny``."""

    iteration: Iteration = Field(default=0, description="The foreach iteration (0 otherwise).")
    note: str | None = Field(default=None, max_length=10_000)
    decided_by: str | None = Field(
        default=None, description="Accepted for Smithers compatibility; the caller is recorded."
    )


class SignalBody(_Body):
    """``POST /v1/runs/{id}/signals/{name}``."""

    payload: Any = None
    data: Any = Field(default=None, description="Smithers' name for `payload`.")
    correlation_id: str | None = Field(default=None, max_length=255)
    received_by: str | None = Field(default=None, description="Accepted; ignored.")

    @property
    def value(self) -> Any:
        """The signal's payload (``payload``, else Smithers' ``data``)."""
        return self.payload if self.payload is not None else self.data


class RewindBody(_Body):
    """``POST /v1/runs/{id}/rewind``."""

    frame_no: Annotated[FrameNo, Field(ge=1)] = Field(
        description="The frame to go back to (see `/frames`)."
    )


class ForkBody(_Body):
    """``POST /v1/runs/{id}/fork``: give exactly one of ``frameNo`` and ``fromNode``."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        json_schema_extra={
            "oneOf": [
                {
                    **_given("frameNo", {"type": "integer"}),
                    "properties": {"frameNo": {"type": "integer"}, "fromNode": {"type": "null"}},
                },
                {
                    **_given("fromNode", {"type": "string"}),
                    "properties": {"fromNode": {"type": "string"}, "frameNo": {"type": "null"}},
                },
            ]
        },
    )

    frame_no: Annotated[FrameNo, Field(ge=1)] | None = Field(
        default=None, description="Reuse the outputs of nodes finished at this frame."
    )
    from_node: str | None = Field(
        default=None,
        max_length=64,
        description="Re-run this node and everything downstream of it; reuse the rest.",
    )
    input: Any = Field(default=None, description="A new run input (default: the original's).")
    use_latest_version: bool = Field(
        default=False,
        description="Run the workflow's current version; nodes whose definition changed run again.",
    )


def parse_time(value: str | None, name: str) -> int | None:
    """Accept epoch milliseconds or an ISO-8601 time (without an offset: UTC).

    Raises:
        InvalidInput: ``value`` is neither, or names a time outside 1970..9999
            (:data:`flowplane.model.bounds.EpochMs`).
    """
    if value is None or value == "":
        return None
    if value.lstrip("-").isdigit():
        return check_epoch_ms(int(value), name)
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{name} must be epoch milliseconds or ISO-8601") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return epoch_ms(parsed, name)


def split_values(values: list[str] | None) -> list[str] | None:
    """Repeated and comma-separated query values as one list (``None`` when empty)."""
    if not values:
        return None
    out = [part.strip() for value in values for part in value.split(",") if part.strip()]
    return out or None
