"""The Smithers Gateway's RPC methods, by Smithers' names, over Flowplane's services.

The methods of Smithers' ``docs/integrations/gateway.mdx`` (``health``, ``runs.list``,
``runs.get``, ``runs.create``, ... ``cron.trigger``), with their params and answers as
Smithers' Gateway sends them, plus the seed page's names (``launchRun``, ``getRun``,
``listRuns``, ``submitApproval``, ``submitSignal``) as aliases. They serve the Smithers
dialect of the gateway: WebSocket connections that ``connect`` with ``minProtocol`` /
``maxProtocol`` (on ``/`` or ``/v1/ws``) and ``POST /rpc``. Flowplane's own methods
(:mod:`flowplane.api.rpc`) keep their names and shapes on connections that ``connect`` the
Flowplane way and on ``POST /v1/rpc/{method}``.

Each method is one call to a service with the connection's :class:`Caller`; the method's
role is the one its Smithers scope maps to (:data:`SCOPE_ROLE`), checked before the call as
for Flowplane's methods, and the service checks it again. The answers are reshaped into
Smithers' wire forms (camelCase rows, arrays instead of pages); errors into Smithers' codes
(:func:`error_body`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
)
from pydantic.alias_generators import to_camel

from flowplane.api import rpc
from flowplane.api.deps import ID_PATTERN
from flowplane.api.metrics import Metrics
from flowplane.api.models import schedules as schedule_models
from flowplane.api.models.runs import DispatchBody, parse_time
from flowplane.api.run_pages import attempt_model
from flowplane.api.run_views import (
    approval_model,
    render_detail,
    run_fields,
    run_model,
    signal_result,
)
from flowplane.client.models import DispatchResult
from flowplane.errors import (
    FlowplaneError,
    Forbidden,
    InvalidInput,
    NotFound,
    UnknownMethod,
)
from flowplane.ids import new_id
from flowplane.model.bounds import EpochMs
from flowplane.services.caller import Caller, Role
from flowplane.services.container import Services
from flowplane.services.launch import LaunchRequest
from flowplane.status import WAITING_RUN, RunStatus

PROTOCOL = 1
"""The Smithers Gateway protocol version Flowplane speaks."""
FEATURES = ("streaming", "runs", "approvals", "cron")
"""What ``hello`` and ``health`` announce."""
MAX_LIST = 1000
"""The most rows one ``*.list`` answer holds."""

Scope = Literal["read", "execute", "approve", "admin"]
SCOPE_RANK: dict[str, int] = {"read": 1, "execute": 2, "approve": 3, "admin": 4}
SCOPE_ROLE: dict[str, Role] = {
    "read": "viewer",
    "execute": "executor",
    "approve": "executor",
    "admin": "editor",
}
"""The Flowplane role a Smithers scope needs. Flowplane has no approver role: deciding an
approval is an executor's right (as on ``POST /v1/runs/{id}/nodes/{node}/approve``); the
admin-scoped cron methods are schedule CRUD, an editor's right in Flowplane."""
ROLE_SCOPES: dict[str, list[str]] = {
    "viewer": ["read"],
    "executor": ["read", "execute", "approve"],
    "editor": ["read", "execute", "approve", "cron.add", "cron.remove"],
    "admin": ["*"],
}
"""The scopes ``hello`` reports for each Flowplane role."""

STARTED_AT = time.monotonic()

RunId = Annotated[str, Field(pattern=ID_PATTERN, max_length=128)]
NodeId = Annotated[str, Field(min_length=1, max_length=64)]
Iteration = Annotated[StrictInt, Field(ge=0, le=2**31 - 1)]


class Params(BaseModel):
    """Base of the params models: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class NoParams(Params):
    """A method without params."""


class RunRef(Params):
    """``runs.get``, ``runs.cancel``."""

    run_id: RunId


class ListFilter(Params):
    """The ``filter`` of the published client's ``listRuns``."""

    status: str | None = Field(default=None, max_length=32)
    limit: int | None = Field(default=None, ge=1, le=MAX_LIST)
    offset: int | None = Field(default=None, ge=0, le=0, description="Only 0 (no offset).")
    workflow: str | None = Field(default=None, max_length=128)
    include_system: bool | None = None
    parent_run_id: str | None = Field(default=None, max_length=128)


class RunsList(Params):
    """``runs.list`` (``limit?``, ``status?``), the client's ``{filter: {...}}``, and the
    filters of ``GET /v1/runs`` (``namespace``, ``createdAfter``, ``createdBefore``)."""

    limit: int = Field(default=50, ge=1, le=MAX_LIST)
    status: str | None = Field(default=None, max_length=32)
    workflow: str | None = Field(default=None, max_length=128)
    filter: ListFilter | None = None
    namespace: rpc.Namespaces = None
    created_after: EpochMs | str | None = None
    created_before: EpochMs | str | None = None

    @field_validator("namespace", mode="before")
    @classmethod
    def _one_namespace(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class LaunchOptions(Params):
    """``launchRun``'s ``options``: the new run's id and an idempotency key are honoured."""

    run_id: RunId | None = None
    idempotency_key: str | None = Field(default=None, max_length=255)
    max_concurrency: int | None = None
    allow_network: bool | None = None
    max_output_bytes: int | None = None
    tool_timeout_ms: int | None = None
    started_by: dict[str, Any] | None = None


class RunsCreate(DispatchBody):
    """``runs.create``: ``workflow`` (a stored workflow's name), ``input?``, ``runId?``,
    the published client's ``options``, and everything ``POST /v1/runs`` takes."""

    options: LaunchOptions | None = None


class Rerun(Params):
    """``runs.rerun``: a new run of the same workflow with the same input."""

    run_id: RunId
    new_run_id: RunId | None = None


class RunsDiff(Params):
    """``runs.diff``."""

    left_run_id: RunId
    right_run_id: RunId


class FramesList(Params):
    """``frames.list``."""

    run_id: RunId
    limit: int = Field(default=50, ge=1, le=MAX_LIST)
    after_frame_no: Iteration | None = None


class FramesGet(Params):
    """``frames.get``: one frame, the latest when ``frameNo`` is left out."""

    run_id: RunId
    frame_no: Iteration | None = None


class AttemptsList(Params):
    """``attempts.list``."""

    run_id: RunId
    node_id: NodeId | None = None
    iteration: Iteration | None = None


class AttemptsGet(Params):
    """``attempts.get``."""

    run_id: RunId
    node_id: NodeId
    iteration: Iteration
    attempt: Annotated[StrictInt, Field(ge=0, le=2**31 - 1)]


class NodeRef(Params):
    """``getNodeOutput``."""

    run_id: RunId
    node_id: NodeId
    iteration: Iteration = 0


class JumpParams(Params):
    """``jumpToFrame``: destructive, so ``confirm`` must be the literal ``true``."""

    run_id: RunId
    frame_no: Annotated[StrictInt, Field(ge=0, le=2**31 - 1)]
    confirm: StrictBool | None = None


class ApprovalsList(Params):
    """``approvals.list`` (the client's ``listApprovals`` sends ``filter``)."""

    filter: dict[str, Any] | None = None


class Decide(Params):
    """``approvals.decide``: ``approved`` must be a JSON boolean."""

    run_id: RunId
    node_id: NodeId
    approved: StrictBool | None = None
    iteration: Iteration = 0
    note: str | None = Field(default=None, max_length=4096)
    decision: dict[str, Any] | None = None


class SignalSend(Params):
    """``signals.send`` (and the client's ``submitSignal`` names: ``payload``,
    ``correlationKey``)."""

    run_id: RunId
    signal_name: str | None = Field(default=None, min_length=1, max_length=128)
    name: str | None = Field(default=None, min_length=1, max_length=128)
    data: Any = None
    payload: Any = None
    correlation_id: str | None = Field(default=None, max_length=255)
    correlation_key: str | None = Field(default=None, max_length=255)


class CronList(Params):
    """``cron.list``."""

    filter: dict[str, Any] | None = None


class CronAdd(Params):
    """``cron.add``: ``workflow`` (a stored workflow's name) and ``pattern`` (5 fields)."""

    workflow: str = Field(min_length=1, max_length=128)
    pattern: str = Field(min_length=1, max_length=255)
    cron_id: str | None = Field(default=None, max_length=128, description="Used as the name.")
    enabled: bool = True
    namespace: str | None = Field(default=None, max_length=64)


class CronRef(Params):
    """``cron.remove``."""

    cron_id: str = Field(min_length=1, max_length=128)


class CronTrigger(Params):
    """``cron.trigger``: a schedule's workflow (``cronId``), or a workflow by name, now."""

    cron_id: str | None = Field(default=None, max_length=128)
    workflow: str | None = Field(default=None, max_length=128)
    input: dict[str, Any] | None = None


# --- the table -----------------------------------------------------------------------------

Handler = Callable[[Services, Caller, Any], Awaitable[Any]]


@dataclass(frozen=True)
class GatewayMethod:
    """One Smithers Gateway method.

    Attributes:
        name: its dotted name.
        scope: its Smithers scope (``read`` < ``execute`` < ``approve`` < ``admin``).
        params: the params model.
        handler: ``handler(services, caller, params)``.
        subscribes: the method's answer (or params) names a run the connection then follows.
    """

    name: str
    scope: Scope
    params: type[BaseModel]
    handler: Handler
    subscribes: bool = False

    @property
    def role(self) -> Role:
        """The Flowplane role the method needs."""
        return SCOPE_ROLE[self.scope]


METHODS: dict[str, GatewayMethod] = {}
"""Every Smithers method by name."""
ALIASES: dict[str, str] = {
    "launchRun": "runs.create",
    "getRun": "runs.get",
    "listRuns": "runs.list",
    "submitApproval": "approvals.decide",
    "submitSignal": "signals.send",
}
"""The seed page's method names and the Smithers methods they stand for."""


def gateway_method(
    name: str, scope: Scope, params: type[BaseModel], *, subscribes: bool = False
) -> Callable[[Handler], Handler]:
    """Register ``handler`` as the Smithers method ``name``."""

    def register(handler: Handler) -> Handler:
        METHODS[name] = GatewayMethod(name, scope, params, handler, subscribes)
        return handler

    return register


def resolve(name: str) -> GatewayMethod | None:
    """The method ``name`` stands for (a dotted name or an alias)."""
    return METHODS.get(ALIASES.get(name, name))


def scopes_of(caller: Caller) -> list[str]:
    """The Smithers scopes a caller holds (from its Flowplane role)."""
    return list(ROLE_SCOPES[caller.role])


def run_row(run: Any) -> dict[str, Any]:
    """A run as Smithers lists it: Flowplane's run, plus ``workflowKey``."""
    row: dict[str, Any] = run_model(run).model_dump(mode="json", by_alias=True)
    row["workflowKey"] = row.get("workflowName")
    row["system"] = False
    return row


@gateway_method("health", "read", NoParams)
async def _health(services: Services, caller: Caller, p: NoParams) -> Any:
    return {
        "ok": True,
        "protocol": PROTOCOL,
        "features": list(FEATURES),
        "stateVersion": await services.feed.head(),
        "uptimeMs": int((time.monotonic() - STARTED_AT) * 1000),
    }


@gateway_method("runs.list", "read", RunsList)
async def _runs_list(services: Services, caller: Caller, p: RunsList) -> Any:
    chosen = p.filter or ListFilter()
    status = chosen.status or p.status
    page = await services.runs.list_runs(
        caller,
        namespaces=p.namespace,
        statuses=[status] if status else None,
        workflow=chosen.workflow or p.workflow,
        created_after_ms=parse_time(_text(p.created_after), "createdAfter"),
        created_before_ms=parse_time(_text(p.created_before), "createdBefore"),
        limit=chosen.limit or p.limit,
    )
    return [run_row(run) for run in page.items]


def _text(value: int | str | None) -> str | None:
    return None if value is None else str(value)


@gateway_method("runs.get", "read", RunRef)
async def _runs_get(services: Services, caller: Caller, p: RunRef) -> Any:
    detail: dict[str, Any] = json.loads(await services.runs.detail(caller, p.run_id, render_detail))
    detail["workflowKey"] = detail.get("workflowName")
    return detail


@gateway_method("runs.create", "execute", RunsCreate, subscribes=True)
async def _runs_create(services: Services, caller: Caller, p: RunsCreate) -> Any:
    options = p.options or LaunchOptions()
    request = dataclasses.replace(
        p.launch_request(options.idempotency_key),
        input={} if p.input is None else p.input,
        run_id=options.run_id or p.run_id,
    )
    result = await services.runs.launch(caller, request, root=services.settings.root)
    answer = DispatchResult(**run_fields(result.run), created=result.created)
    return {
        **answer.model_dump(mode="json", by_alias=True),
        "workflow": p.workflow or result.run.workflow_name,
        "system": False,
    }


@gateway_method("runs.cancel", "execute", RunRef)
async def _runs_cancel(services: Services, caller: Caller, p: RunRef) -> Any:
    await services.runs.cancel(caller, p.run_id)
    return {"runId": p.run_id, "status": "cancelling"}


@gateway_method("runs.rerun", "execute", Rerun, subscribes=True)
async def _runs_rerun(services: Services, caller: Caller, p: Rerun) -> Any:
    if p.new_run_id is not None:
        raise InvalidInput("newRunId is not supported: Flowplane picks the new run's id")
    result = await services.runs.retry(caller, p.run_id, triggered_by=caller.name)
    return {"runId": result.run.id, "workflow": result.run.workflow_name}


@gateway_method("runs.diff", "read", RunsDiff)
async def _runs_diff(services: Services, caller: Caller, p: RunsDiff) -> Any:
    diff = await services.runs.diff(caller, p.left_run_id, p.right_run_id)
    changed = [
        {
            "nodeId": node["nodeId"],
            "iteration": node["iteration"],
            "left": (node["original"] or {}).get("output"),
            "right": (node["other"] or {}).get("output"),
        }
        for node in diff["nodes"]
        if (node["original"] or {}).get("output") != (node["other"] or {}).get("output")
    ]
    return {
        **diff,
        "leftRunId": p.left_run_id,
        "rightRunId": p.right_run_id,
        "outputsChanged": changed,
    }


@gateway_method("frames.list", "read", FramesList)
async def _frames_list(services: Services, caller: Caller, p: FramesList) -> Any:
    if p.after_frame_no is None:
        return await services.runs.frames(caller, p.run_id, limit=p.limit, order="desc")
    return await services.runs.frames(caller, p.run_id, p.after_frame_no, p.limit)


@gateway_method("frames.get", "read", FramesGet)
async def _frames_get(services: Services, caller: Caller, p: FramesGet) -> Any:
    if p.frame_no is None:
        found = await services.runs.frames(caller, p.run_id, limit=1, order="desc")
    else:
        found = await services.runs.frames(caller, p.run_id, max(p.frame_no - 1, 0), 1)
        found = [f for f in found if f["frameNo"] == p.frame_no]
    if not found:
        raise NotFound("Frame not found")
    return found[0]


def _attempt_row(attempt: Any) -> dict[str, Any]:
    row: dict[str, Any] = attempt_model(attempt).model_dump(mode="json", by_alias=True)
    row.setdefault("runId", attempt.run_id)
    row.setdefault("nodeId", attempt.node_id)
    return row


@gateway_method("attempts.list", "read", AttemptsList)
async def _attempts_list(services: Services, caller: Caller, p: AttemptsList) -> Any:
    attempts = await services.runs.attempts(caller, p.run_id)
    if p.node_id is not None:
        iteration = p.iteration or 0
        attempts = [a for a in attempts if a.node_id == p.node_id and a.iteration == iteration]
    return [_attempt_row(a) for a in attempts]


@gateway_method("attempts.get", "read", AttemptsGet)
async def _attempts_get(services: Services, caller: Caller, p: AttemptsGet) -> Any:
    for attempt in await services.runs.attempts(caller, p.run_id):
        if (attempt.node_id, attempt.iteration, attempt.attempt) == (
            p.node_id,
            p.iteration,
            p.attempt,
        ):
            return _attempt_row(attempt)
    raise NotFound("Attempt not found")


@gateway_method("getNodeOutput", "read", NodeRef)
async def _node_output(services: Services, caller: Caller, p: NodeRef) -> Any:
    for node in await services.runs.nodes(caller, p.run_id):
        if (node.node_id, node.iteration) != (p.node_id, p.iteration):
            continue
        if node.status == "finished":
            row = node.output if isinstance(node.output, dict) else {"value": node.output}
            return {"status": "produced", "row": row, "schema": None}
        if node.status == "failed":
            return {"status": "failed", "row": None, "schema": None, "partial": None}
        return {"status": "pending", "row": None, "schema": None}
    raise NotFound(f"NodeNotFound: {p.node_id!r} iteration {p.iteration} is not in the run")


@gateway_method("jumpToFrame", "execute", JumpParams)
async def _jump(services: Services, caller: Caller, p: JumpParams) -> Any:
    if p.confirm is not True:
        raise InvalidInput("ConfirmationRequired: jumpToFrame needs confirm: true")
    started = time.monotonic()
    await services.runs.rewind(caller, p.run_id, p.frame_no)
    return {
        "ok": True,
        "newFrameNo": p.frame_no,
        "revertedSandboxes": 0,
        "deletedFrames": 0,
        "deletedAttempts": 0,
        "invalidatedDiffs": 0,
        "durationMs": int((time.monotonic() - started) * 1000),
    }


@gateway_method("approvals.list", "read", ApprovalsList)
async def _approvals_list(services: Services, caller: Caller, p: ApprovalsList) -> Any:
    found = await services.runs.approvals.list(caller, status="pending", limit=MAX_LIST)
    run_id = (p.filter or {}).get("runId")
    return [
        {
            "runId": a.run_id,
            "workflowKey": a.workflow_name,
            "nodeId": a.node_id,
            "iteration": a.iteration,
            "requestTitle": a.title,
            "requestSummary": a.description,
            "requestedAtMs": a.requested_at_ms,
            "approvalMode": "gate",
            "options": [],
            "allowedScopes": [],
            "allowedUsers": [],
            "autoApprove": None,
        }
        for a in sorted(found, key=lambda a: a.requested_at_ms)
        if run_id is None or a.run_id == run_id
    ]


@gateway_method("approvals.decide", "approve", Decide, subscribes=True)
async def _approvals_decide(services: Services, caller: Caller, p: Decide) -> Any:
    approved = p.approved
    if approved is None and p.decision is not None:
        approved = p.decision.get("approved")
    if not isinstance(approved, bool):
        raise InvalidInput("approved must be a JSON boolean")
    note = p.note if p.note is not None else (p.decision or {}).get("note")
    decided = await services.runs.decide(
        caller,
        p.run_id,
        p.node_id,
        approved=approved,
        iteration=p.iteration,
        note=note if isinstance(note, str) else None,
        by=caller.name,
    )
    return {
        **approval_model(decided).model_dump(mode="json", by_alias=True),
        "runId": decided.run_id,
        "nodeId": decided.node_id,
        "iteration": decided.iteration,
        "approved": approved,
    }


@gateway_method("signals.send", "execute", SignalSend, subscribes=True)
async def _signals_send(services: Services, caller: Caller, p: SignalSend) -> Any:
    name = p.signal_name or p.name
    if name is None:
        raise InvalidInput("signalName is required")
    data = p.data if p.data is not None else p.payload
    correlation = p.correlation_id if p.correlation_id is not None else p.correlation_key
    result = await services.runs.signal(
        caller, p.run_id, name, {} if data is None else data, correlation
    )
    delivered = signal_result(p.run_id, name, result).model_dump(mode="json", by_alias=True)
    return {
        **delivered,
        "signalName": name,
        "correlationId": correlation,
        "receivedBy": caller.name,
        "receivedAtMs": int(time.time() * 1000),
    }


def _cron_row(row: Any, workflow: str) -> dict[str, Any]:
    out: dict[str, Any] = schedule_models.schedule_out(row).model_dump(mode="json", by_alias=True)
    return {
        "cronId": out["id"],
        "workflow": workflow,
        "pattern": out["cron"],
        "enabled": out["enabled"],
        "createdAtMs": out.get("createdAtMs"),
        "lastRunAtMs": out.get("lastFiredSlotMs"),
        "nextRunAtMs": out.get("nextFireAtMs"),
        "errorJson": None,
        **out,
    }


@gateway_method("cron.list", "read", CronList)
async def _cron_list(services: Services, caller: Caller, p: CronList) -> Any:
    page = await services.schedules.list_named(caller, limit=MAX_LIST)
    rows = [_cron_row(row, name) for row, name in page.items]
    workflow = (p.filter or {}).get("workflow")
    return [r for r in rows if workflow is None or r["workflow"] == workflow]


@gateway_method("cron.add", "admin", CronAdd)
async def _cron_add(services: Services, caller: Caller, p: CronAdd) -> Any:
    values: dict[str, Any] = {"workflow": p.workflow, "cron": p.pattern, "enabled": p.enabled}
    if p.namespace is not None:
        values["namespace"] = p.namespace
    if p.cron_id is not None:
        values["name"] = p.cron_id
    row = await services.schedules.create(caller, values)
    return _cron_row(row, p.workflow)


@gateway_method("cron.remove", "admin", CronRef)
async def _cron_remove(services: Services, caller: Caller, p: CronRef) -> Any:
    await services.schedules.delete(caller, p.cron_id)
    return {"cronId": p.cron_id, "removed": True}


@gateway_method("cron.trigger", "execute", CronTrigger, subscribes=True)
async def _cron_trigger(services: Services, caller: Caller, p: CronTrigger) -> Any:
    if p.cron_id is not None:
        started = await services.schedules.trigger(caller, p.cron_id, run_input=p.input)
        return {"runId": started.run.id, "workflow": started.run.workflow_name}
    if p.workflow is None:
        raise InvalidInput("cronId or workflow is required")
    request = LaunchRequest(workflow=p.workflow, input=p.input or {})
    result = await services.runs.launch(caller, request, root=services.settings.root)
    return {"runId": result.run.id, "workflow": p.workflow}


# --- calling -------------------------------------------------------------------------------


def new_run_id(name: str, params: Any) -> str | None:
    """For ``runs.create``: give the run its id now (in ``params``), so that the connection
    follows it before its first event; return the run id the call is about, if known."""
    if not isinstance(params, dict):
        return None
    method = resolve(name)
    if method is None or not method.subscribes:
        return None
    if method.name == "runs.create":
        options = params.get("options")
        chosen = options.get("runId") if isinstance(options, dict) else None
        chosen = chosen or params.get("runId")
        if chosen is None:
            chosen = params["runId"] = new_id()
        return chosen if isinstance(chosen, str) else None
    run_id = params.get("runId")
    return run_id if isinstance(run_id, str) and method.name != "cron.trigger" else None


async def call(
    services: Services,
    caller: Caller,
    name: str,
    params: Any,
    metrics: Metrics | None = None,
) -> Any:
    """Run the Smithers method ``name`` (or alias) for ``caller``; return its JSON answer.

    A name that is none of Smithers' is one of Flowplane's own methods
    (:data:`flowplane.api.rpc.METHODS`: ``cancelRun``, ``rewindRun``, ``streamRunEvents``,
    ...), answered as there (a stream method returns its :class:`rpc.StreamSpec`).

    Raises:
        UnknownMethod: no such method.
        Forbidden: the caller's role is below the method's scope.
        ParamsInvalid: the params do not validate.
        FlowplaneError: whatever the service raises.
    """
    found = resolve(name)
    if found is None:
        if name in rpc.METHODS:
            return await rpc.call(services, caller, name, params, metrics)
        raise UnknownMethod(f"Unknown method: {name[:64]}")
    if not caller.allows(found.role):
        raise Forbidden(f"Missing scope for {name[:64]}: needs {found.scope} ({found.role} role)")
    try:
        parsed = found.params.model_validate({} if params is None else params)
    except ValidationError as exc:
        raise rpc.params_error(exc) from None
    return rpc.to_json(await found.handler(services, caller, parsed))


# --- errors --------------------------------------------------------------------------------

_CODE_BY_STATUS = {
    400: "INVALID_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    413: "PAYLOAD_TOO_LARGE",
    429: "RateLimited",
}
_KEPT = {"RUN_NOT_ACTIVE", "AlreadyDecided", "PROTOCOL_UNSUPPORTED", "INVALID_JSON"}


def error_code(exc: BaseException) -> tuple[str, int]:
    """Smithers' code and HTTP status of an error."""
    if isinstance(exc, UnknownMethod):
        return "METHOD_NOT_FOUND", 404
    if isinstance(exc, FlowplaneError):
        if exc.code in _KEPT:
            return exc.code, exc.status
        return _CODE_BY_STATUS.get(exc.status, "SERVER_ERROR" if exc.status >= 500 else exc.code), (
            exc.status
        )
    return "SERVER_ERROR", 500


def error_body(exc: BaseException) -> dict[str, Any]:
    """The ``error`` member of a failed Smithers response: ``{code, message, status, ...}``
    (Flowplane's own code rides along as ``flowplaneCode``)."""
    code, status = error_code(exc)
    body = rpc.error_body(exc)
    extra = {k: v for k, v in body.items() if k not in ("code", "message", "status")}
    out: dict[str, Any] = {"code": code, "message": body["message"], "status": status}
    out["flowplaneCode"] = body["code"]
    if extra:
        out["details"] = extra
    return out


# --- events --------------------------------------------------------------------------------

_NODE_STATE = {"NodeStarted": "in-progress", "NodeFinished": "finished", "NodeFailed": "failed"}
_RUN_STATUS = {
    "RunFinished": RunStatus.FINISHED.value,
    "RunFailed": RunStatus.FAILED.value,
    "RunCancelled": RunStatus.CANCELLED.value,
    "RunTimedOut": RunStatus.TIMED_OUT.value,
}
ACTIVE_RUN = (RunStatus.QUEUED.value, RunStatus.RUNNING.value, *WAITING_RUN)
"""The run statuses ``hello``'s snapshot lists."""


def smithers_event(event: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """Smithers' name and payload of a Flowplane event (``None``: Smithers has no such event)."""
    kind = event.get("type")
    base = {"runId": event.get("runId"), "nodeId": event.get("nodeId")}
    iteration = event.get("iteration", 0)
    if kind in _NODE_STATE:
        payload = {**base, "iteration": iteration, "state": _NODE_STATE[kind]}
        if kind == "NodeFailed":
            payload["error"] = event.get("error")
        return "node." + _NODE_STATE[kind].replace("in-progress", "started"), payload
    if kind == "NodeLog":
        stream = event.get("stream") or event.get("level") or "stdout"
        return "task.output", {**base, "output": event.get("message"), "stream": stream}
    if kind == "ApprovalRequested":
        return "approval.requested", {**base, "iteration": iteration}
    if kind in ("ApprovalGranted", "ApprovalDenied"):
        approved = kind == "ApprovalGranted"
        return "approval.decided", {**base, "iteration": iteration, "approved": approved}
    if kind in _RUN_STATUS:
        payload = {"runId": event.get("runId"), "status": _RUN_STATUS[kind]}
        if event.get("error") is not None:
            payload["error"] = event.get("error")
        return "run.completed", payload
    by = event.get("triggeredBy")
    if kind == "RunStarted" and isinstance(by, str) and by.startswith("schedule:"):
        # A run its schedule fired (not one started by cron.trigger).
        cron_id = by.removeprefix("schedule:")
        workflow = event.get("workflowName")
        return "cron.triggered", {
            "cronId": cron_id,
            "workflow": workflow,
            "runId": event.get("runId"),
        }
    return None
