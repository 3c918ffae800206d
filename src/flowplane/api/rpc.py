"""The gateway's RPC methods: one table shared by ``/v1/ws`` and ``POST /v1/rpc/{method}``.

Each method translates its params to one service call with the caller, as the REST
endpoint it mirrors does, so the rules (roles, namespace checks, owner checks,
idempotency) live in the services and the wire shapes in the shared views. The method's
role is read from that endpoint's ``require(...)``: an RPC call needs exactly the role of
its REST route. Params are validated with pydantic models (``extra="forbid"``,
camelCase).

Stream methods (``streamRunEvents``, ``subscribe``) return a :class:`StreamSpec`: on the
WebSocket the gateway turns it into a live subscription; over HTTP it is answered with one
page of events read from the table (``{events, lastSeq, more}``).
"""

from __future__ import annotations

import json
import logging
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi.params import Depends
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from flowplane.api.deps import ID_PATTERN, RoleRequirement
from flowplane.api.metrics import Metrics
from flowplane.api.models import schedules as schedule_models
from flowplane.api.models import workflows as workflow_models
from flowplane.api.models.runs import (
    DecisionBody,
    DispatchBody,
    ForkBody,
    RewindBody,
    SignalBody,
    parse_time,
    split_values,
)
from flowplane.api.routes import approvals as approval_routes
from flowplane.api.routes import events as event_routes
from flowplane.api.routes import runs as run_routes
from flowplane.api.routes import schedules as schedule_routes
from flowplane.api.routes import timetravel as timetravel_routes
from flowplane.api.routes import workflows as workflow_routes
from flowplane.api.run_views import (
    approval_model,
    render_detail,
    run_fields,
    run_model,
    signal_result,
)
from flowplane.client.models import ApprovalList, DispatchResult
from flowplane.errors import FlowplaneError, Forbidden, ParamsInvalid, UnknownMethod
from flowplane.model.bounds import EpochMs, Seq
from flowplane.services.caller import ROLE_RANK, Caller, Role
from flowplane.services.container import Services
from flowplane.services.feed import EventFilter

MAX_PAGE_EVENTS = 1000
"""The most events one HTTP call of a stream method returns."""
MAX_TYPES = 64
"""The most event types one subscription may filter on."""

_log = logging.getLogger("flowplane.rpc")

RunId = Annotated[str, Field(pattern=ID_PATTERN, max_length=128, description="A run id.")]
ObjectRef = Annotated[str, Field(pattern=ID_PATTERN, max_length=128)]
Namespaces = Annotated[list[Annotated[str, Field(max_length=64)]] | None, Field(max_length=64)]
Types = Annotated[list[Annotated[str, Field(max_length=64)]] | None, Field(max_length=MAX_TYPES)]


# --- params ------------------------------------------------------------------------------


class Params(BaseModel):
    """Base of the params models: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    @field_validator("namespace", mode="before", check_fields=False)
    @classmethod
    def _one_namespace(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class RunRef(Params):
    """``getRun``, ``cancelRun``, ``deleteRun``, ``resumeRun``."""

    run_id: RunId


class ListRunsParams(Params):
    """``listRuns``: the query of ``GET /v1/runs``."""

    limit: int = Field(default=50, ge=1, le=run_routes.MAX_LIST_LIMIT)
    status: list[str] | None = None
    workflow: str | None = Field(default=None, max_length=128)
    namespace: Namespaces = None
    created_after: EpochMs | str | None = None
    created_before: EpochMs | str | None = None
    cursor: str | None = Field(default=None, max_length=64)


class RewindParams(RewindBody):
    """``rewindRun``: ``{runId, frameNo}``."""

    run_id: RunId


class ForkParams(ForkBody):
    """``forkRun``: ``{runId, frameNo | fromNode, input?, useLatestVersion?}``."""

    run_id: RunId


class ApprovalParams(DecisionBody):
    """``submitApproval``: ``approved`` must be a JSON boolean (not ``"false"`` or ``0``)."""

    run_id: RunId
    node_id: str = Field(max_length=64)
    approved: StrictBool


class SignalParams(SignalBody):
    """``submitSignal``: ``{runId, name, payload?, correlationId?}``."""

    run_id: RunId
    name: str = Field(min_length=1, max_length=128)


class ListApprovalsParams(Params):
    """``listApprovals``: the query of ``GET /v1/approvals``."""

    status: Literal["pending", "approved", "denied", "cancelled", "all"] = "pending"
    namespace: Namespaces = None
    limit: int = Field(default=100, ge=1, le=approval_routes.MAX_APPROVALS)


class PageParams(Params):
    """``listWorkflows``: namespaces and a cursor page."""

    namespace: Namespaces = None
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(default=None, max_length=128)


class CronListParams(PageParams):
    """``cronList``: the query of ``GET /v1/schedules``."""

    workflow_id: str | None = Field(default=None, max_length=128)


class CronRef(Params):
    """``cronDelete``."""

    schedule_id: ObjectRef


class CronRunParams(schedule_models.TriggerNow):
    """``cronRun``: start the schedule's workflow now (optionally with another input)."""

    schedule_id: ObjectRef
    idempotency_key: str | None = Field(default=None, max_length=255)


class StreamRunParams(Params):
    """``streamRunEvents``: a run's events after ``afterSeq``."""

    run_id: RunId
    after_seq: Seq = 0
    types: Types = None
    limit: int = Field(default=500, ge=1, le=MAX_PAGE_EVENTS, description="HTTP page size.")


class SubscribeParams(Params):
    """``subscribe``: a run's events, or those of runs in ``namespace`` (``"*"``: all visible)."""

    run_id: RunId | None = None
    namespace: Namespaces = None
    types: Types = None
    after_seq: Seq = 0
    limit: int = Field(default=500, ge=1, le=MAX_PAGE_EVENTS, description="HTTP page size.")


# --- methods -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamSpec:
    """What a stream method asks for: the transport decides how to deliver it."""

    filter: EventFilter
    after_seq: int
    until_terminal: bool
    limit: int


Handler = Callable[[Services, Caller, Any], Awaitable[Any]]


@dataclass(frozen=True)
class Method:
    """One RPC method.

    Attributes:
        name: the method name.
        role: the role needed (that of ``endpoint``).
        params: the params model.
        handler: ``handler(services, principal, params)``; returns JSON-able data, a pydantic
            model, or a :class:`StreamSpec`.
        endpoint: the REST endpoint function it mirrors.
    """

    name: str
    role: Role
    params: type[BaseModel]
    handler: Handler
    endpoint: Callable[..., Any]


def endpoint_role(endpoint: Callable[..., Any]) -> Role:
    """The role a REST endpoint function requires (from its ``require(...)`` parameter)."""
    found: Role | None = None
    for hint in typing.get_type_hints(endpoint, include_extras=True).values():
        for extra in getattr(hint, "__metadata__", ()):
            if isinstance(extra, Depends) and isinstance(extra.dependency, RoleRequirement):
                role = extra.dependency.role
                if found is None or ROLE_RANK[role] > ROLE_RANK[found]:
                    found = role
    if found is None:
        raise TypeError(f"{endpoint.__qualname__} has no require(...) parameter")
    return found


METHODS: dict[str, Method] = {}
"""Every RPC method by name."""


def method(
    name: str, params: type[BaseModel], endpoint: Callable[..., Any]
) -> Callable[[Handler], Handler]:
    """Register ``handler`` as the method ``name``, mirroring ``endpoint``."""

    def register(handler: Handler) -> Handler:
        METHODS[name] = Method(name, endpoint_role(endpoint), params, handler, endpoint)
        return handler

    return register


@method("launchRun", DispatchBody, run_routes.dispatch_run)
async def _launch_run(services: Services, principal: Caller, p: DispatchBody) -> Any:
    result = await services.runs.launch(principal, p.launch_request(), root=services.settings.root)
    return DispatchResult(**run_fields(result.run), created=result.created)


@method("getRun", RunRef, run_routes.get_run)
async def _get_run(services: Services, principal: Caller, p: RunRef) -> Any:
    return json.loads(await services.runs.detail(principal, p.run_id, render_detail))


@method("listRuns", ListRunsParams, run_routes.list_runs)
async def _list_runs(services: Services, principal: Caller, p: ListRunsParams) -> Any:
    page = await services.runs.list_runs(
        principal,
        namespaces=split_values(p.namespace),
        statuses=split_values(p.status),
        workflow=p.workflow,
        created_after_ms=parse_time(_text(p.created_after), "createdAfter"),
        created_before_ms=parse_time(_text(p.created_before), "createdBefore"),
        cursor=p.cursor,
        limit=p.limit,
    )
    return {"items": [run_model(row) for row in page.items], "nextCursor": page.next_cursor}


def _text(value: int | str | None) -> str | None:
    return None if value is None else str(value)


@method("cancelRun", RunRef, run_routes.cancel_run)
async def _cancel_run(services: Services, principal: Caller, p: RunRef) -> Any:
    return run_model(await services.runs.cancel(principal, p.run_id))


@method("deleteRun", RunRef, run_routes.delete_run)
async def _delete_run(services: Services, principal: Caller, p: RunRef) -> Any:
    await services.runs.delete(principal, p.run_id)
    return {"deleted": True, "runId": p.run_id}


@method("resumeRun", RunRef, run_routes.resume_run)
async def _resume_run(services: Services, principal: Caller, p: RunRef) -> Any:
    return run_model(await services.runs.resume(principal, p.run_id))


@method("rewindRun", RewindParams, timetravel_routes.rewind_run)
async def _rewind_run(services: Services, principal: Caller, p: RewindParams) -> Any:
    return run_model(await services.runs.rewind(principal, p.run_id, p.frame_no))


@method("forkRun", ForkParams, timetravel_routes.fork_run)
async def _fork_run(services: Services, principal: Caller, p: ForkParams) -> Any:
    result = await services.runs.fork(
        principal,
        p.run_id,
        frame_no=p.frame_no,
        from_node=p.from_node,
        run_input=p.input,
        use_latest_version=p.use_latest_version,
        triggered_by=principal.name,
    )
    return DispatchResult(**run_fields(result.run), created=result.created)


@method("submitApproval", ApprovalParams, run_routes.approve_node)
async def _submit_approval(services: Services, principal: Caller, p: ApprovalParams) -> Any:
    decided = await services.runs.decide(
        principal,
        p.run_id,
        p.node_id,
        approved=p.approved,
        iteration=p.iteration,
        note=p.note,
        by=principal.name,
    )
    return approval_model(decided)


@method("submitSignal", SignalParams, run_routes.send_signal)
async def _submit_signal(services: Services, principal: Caller, p: SignalParams) -> Any:
    result = await services.runs.signal(principal, p.run_id, p.name, p.value, p.correlation_id)
    return signal_result(p.run_id, p.name, result)


@method("listApprovals", ListApprovalsParams, approval_routes.list_approvals)
async def _list_approvals(services: Services, principal: Caller, p: ListApprovalsParams) -> Any:
    found = await services.runs.approvals.list(
        principal,
        status=None if p.status == "all" else p.status,
        namespaces=p.namespace,
        limit=p.limit,
    )
    return ApprovalList(approvals=[approval_model(approval) for approval in found])


@method("listWorkflows", PageParams, workflow_routes.list_workflows)
async def _list_workflows(services: Services, principal: Caller, p: PageParams) -> Any:
    page = await services.workflows.list_workflows(
        principal, namespaces=p.namespace, limit=p.limit, cursor=p.cursor
    )
    items = [workflow_models.workflow_out(w) for w in page.items]
    return workflow_models.WorkflowList(items=items, next_cursor=page.next_cursor)


@method("cronList", CronListParams, schedule_routes.list_schedules)
async def _cron_list(services: Services, principal: Caller, p: CronListParams) -> Any:
    page = await services.schedules.list(
        principal,
        namespaces=p.namespace,
        workflow_id=p.workflow_id,
        cursor=p.cursor,
        limit=p.limit,
    )
    items = [schedule_models.schedule_out(r) for r in page.items]
    return schedule_models.ScheduleList(items=items, next_cursor=page.next_cursor)


@method("cronCreate", schedule_models.ScheduleCreate, schedule_routes.create_schedule)
async def _cron_create(
    services: Services, principal: Caller, p: schedule_models.ScheduleCreate
) -> Any:
    row = await services.schedules.create(principal, schedule_models.schedule_changes(p))
    return schedule_models.schedule_out(row)


@method("cronDelete", CronRef, schedule_routes.delete_schedule)
async def _cron_delete(services: Services, principal: Caller, p: CronRef) -> Any:
    await services.schedules.delete(principal, p.schedule_id)
    return {"scheduleId": p.schedule_id, "deleted": True}


@method("cronRun", CronRunParams, schedule_routes.trigger_schedule)
async def _cron_run(services: Services, principal: Caller, p: CronRunParams) -> Any:
    started = await services.schedules.trigger(
        principal, p.schedule_id, run_input=p.input, idempotency_key=p.idempotency_key
    )
    return schedule_models.Started(run_id=started.run.id)


@method("streamRunEvents", StreamRunParams, run_routes.stream_run_events)
async def _stream_run_events(services: Services, principal: Caller, p: StreamRunParams) -> Any:
    event_filter = await services.feed.for_run(principal, p.run_id, p.types)
    return StreamSpec(event_filter, p.after_seq, True, p.limit)


@method("subscribe", SubscribeParams, event_routes.stream_namespace_events)
async def _subscribe(services: Services, principal: Caller, p: SubscribeParams) -> Any:
    if (p.run_id is None) == (p.namespace is None):
        raise ParamsInvalid("give exactly one of runId and namespace")
    if p.run_id is not None:
        return await _stream_run_events(
            services,
            principal,
            StreamRunParams(run_id=p.run_id, after_seq=p.after_seq, types=p.types, limit=p.limit),
        )
    requested = split_values(p.namespace) or []
    event_filter = services.feed.for_namespaces(principal, requested, p.types)
    return StreamSpec(event_filter, p.after_seq, False, p.limit)


# --- calling -----------------------------------------------------------------------------


def error_body(exc: BaseException) -> dict[str, Any]:
    """The ``error`` member of a failed response: ``{code, message, status, ...}``."""
    if isinstance(exc, FlowplaneError):
        body: dict[str, Any] = {"code": exc.code, "message": exc.detail, "status": exc.status}
        for key, value in exc.extra.items():
            body.setdefault(key, value)
        return body
    return {"code": "internal_error", "message": "an unexpected error", "status": 500}


def params_error(exc: ValidationError) -> ParamsInvalid:
    """The :class:`ParamsInvalid` of a failed params validation (same shape as REST's 400)."""
    errors = [
        {
            "path": ".".join(str(p) for p in err.get("loc", ())),
            "error": err.get("msg", ""),
            "type": err.get("type", ""),
        }
        for err in exc.errors()
    ][:50]
    detail = "; ".join(f"{e['path'] or 'params'}: {e['error']}" for e in errors[:5])
    return ParamsInvalid(detail, errors=errors)


async def call(
    services: Services,
    principal: Caller,
    name: str,
    params: Any,
    metrics: Metrics | None = None,
) -> Any:
    """Run the method ``name`` for ``principal``; return its JSON-able result or a spec.

    Raises:
        UnknownMethod: no such method (404 ``unknown_method``).
        Forbidden: the caller's role is below the method's.
        ParamsInvalid: the params do not validate (400 ``validation_error``).
        FlowplaneError: whatever the method raises.
    """
    found = METHODS.get(name)
    label = found.name if found is not None else "<unknown>"
    outcome = "ok"
    try:
        if found is None:
            raise UnknownMethod(f"no method {name[:64]!r}", methods=sorted(METHODS))
        if not principal.allows(found.role):
            raise Forbidden(f"{found.name} needs the {found.role} role; you have {principal.role}")
        try:
            parsed = found.params.model_validate({} if params is None else params)
        except ValidationError as exc:
            raise params_error(exc) from None
        try:
            result = await found.handler(services, principal, parsed)
        except ValidationError as exc:
            raise params_error(exc) from None
        return result if isinstance(result, StreamSpec) else to_json(result)
    except FlowplaneError as exc:
        outcome = exc.code
        raise
    except Exception:
        outcome = "internal_error"
        _log.exception("rpc method %s failed", label)
        raise
    finally:
        if metrics is not None:
            metrics.gateway_requests.labels(label, outcome).inc()


async def page(services: Services, spec: StreamSpec) -> dict[str, Any]:
    """One page of a stream method's events, read from the table (the HTTP answer)."""
    events = await services.feed.read(spec.filter, spec.after_seq, spec.limit)
    last = events[-1]["seq"] if events else spec.after_seq
    return {"events": events, "lastSeq": last, "more": len(events) >= spec.limit}


def to_json(value: Any) -> Any:
    """Turn a handler's result (pydantic models, lists of them) into JSON-able data."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, list):
        return [to_json(item) for item in value]
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    return value
