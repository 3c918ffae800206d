"""What :class:`Client` and :class:`AsyncClient` share: requests as data, and error decoding.

Each API operation is a function returning a :class:`Call` (method, path, parameters, body and
a parser for the response). The sync and async clients only differ in how they send it, so
their methods stay one line each and cannot drift apart.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from flowplane import errors
from flowplane.client import models as m

T = TypeVar("T")

DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT_SECONDS = 30.0
STREAM_READ_TIMEOUT_SECONDS = 60.0
"""No byte for this long on an event stream (keep-alives come every 15 s) = a dropped stream."""
USER_AGENT = "flowplane-client"

_PROBLEM_MEMBERS = {"type", "title", "status", "detail", "code", "error"}
"""The problem document's own members (`error` is Smithers' envelope of the same error)."""
_STATUS_CLASSES: dict[int, type[errors.FlowplaneError]] = {
    400: errors.InvalidInput,
    401: errors.Unauthorized,
    403: errors.Forbidden,
    404: errors.NotFound,
    409: errors.Conflict,
    412: errors.PreconditionFailed,
    413: errors.PayloadTooLarge,
    422: errors.UnprocessableEntity,
    428: errors.PreconditionRequired,
    429: errors.RateLimited,
    503: errors.StorageError,
}


def resolve_url(base_url: str | None) -> str:
    """The server URL: the argument, else ``FLOWPLANE_URL``, else the local default."""
    return (base_url or os.environ.get("FLOWPLANE_URL") or DEFAULT_URL).rstrip("/")


def resolve_token(token: str | None) -> str | None:
    """The API key or JWT: the argument, else ``FLOWPLANE_TOKEN``."""
    return token or os.environ.get("FLOWPLANE_TOKEN") or None


def default_headers(token: str | None, extra: Mapping[str, str] | None) -> dict[str, str]:
    """Headers sent with every request."""
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    headers.update(extra or {})
    return headers


def seg(value: str) -> str:
    """Quote one path segment."""
    return quote(value, safe="")


def error_from_response(response: httpx.Response) -> errors.FlowplaneError:
    """Rebuild the server's error: the class registered for the problem's ``code``.

    Extension members (``current``, ``errors``, ``retryAfterMs``, ...) become ``extra``; an
    unknown ``code`` falls back to the class of the HTTP status.
    """
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {"detail": response.text[:500] or response.reason_phrase}
    code = str(body.get("code") or "")
    cls = errors.error_class_for_code(code) if code else errors.FlowplaneError
    if cls is errors.FlowplaneError:
        cls = _STATUS_CLASSES.get(response.status_code, errors.FlowplaneError)
    extra = {k: v for k, v in body.items() if k not in _PROBLEM_MEMBERS}
    if code and code != cls.code:
        extra["problem_code"] = code
    extra.setdefault("http_status", response.status_code)
    detail = str(body.get("detail") or body.get("title") or f"HTTP {response.status_code}")
    return cls(detail, **extra)


def check(response: httpx.Response) -> httpx.Response:
    """Raise the rebuilt error for a 4xx/5xx response; return the response otherwise."""
    if response.status_code >= 400:
        raise error_from_response(response)
    return response


def _json(response: httpx.Response) -> Any:
    return response.json()


M = TypeVar("M", bound=BaseModel)


def _model(model: type[M]) -> Callable[[httpx.Response], M]:
    """A parser reading the response body as ``model``."""
    return lambda response: model.model_validate(response.json())


def _none(_response: httpx.Response) -> None:
    return None


@dataclass
class Call(Generic[T]):
    """One API request and how to read its answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: list[tuple[str, str]] = field(default_factory=list)
    json: Any = None
    content: str | bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def request_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``httpx.Client.request``."""
        kwargs: dict[str, Any] = {"params": self.params, "headers": self.headers}
        if self.content is not None:
            kwargs["content"] = self.content
        elif self.json is not None:
            kwargs["json"] = self.json
        return kwargs


def _params(**values: Any) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, value in values.items():
        if value is None:
            continue
        if isinstance(value, list | tuple):
            out.extend((key, str(v)) for v in value)
        elif isinstance(value, bool):
            out.append((key, "true" if value else "false"))
        else:
            out.append((key, str(value)))
    return out


def _if_match(version: int | str | None) -> dict[str, str]:
    if version is None:
        return {}
    text = str(version)
    return {"If-Match": text if text.startswith(('"', "W/")) else f'"{text}"'}


def _workflow(response: httpx.Response) -> m.WorkflowInfo:
    return m.WorkflowInfo.model_validate(response.json())


def _document_call(
    method: str,
    path: str,
    document: dict[str, Any] | str,
    parse: Callable[[httpx.Response], T],
) -> Call[T]:
    if isinstance(document, str):
        headers = {"Content-Type": "application/yaml"}
        return Call(method, path, parse, content=document, headers=headers)
    return Call(method, path, parse, json=document)


# --- workflows --------------------------------------------------------------------------


def create_workflow(document: dict[str, Any] | str) -> Call[m.WorkflowInfo]:
    """``POST /v1/workflows`` with a JSON document or YAML text."""
    return _document_call("POST", "/v1/workflows", document, _workflow)


def list_workflows(
    namespace: str | list[str] | None, limit: int | None, cursor: str | None
) -> Call[m.WorkflowPage]:
    """``GET /v1/workflows``."""
    params = _params(namespace=namespace, limit=limit, cursor=cursor)
    return Call(
        "GET", "/v1/workflows", lambda r: m.WorkflowPage.model_validate(r.json()), params=params
    )


def get_workflow(workflow_id: str, namespace: str | None) -> Call[m.WorkflowInfo]:
    """``GET /v1/workflows/{id}`` (an id, or a name in ``namespace``)."""
    path = f"/v1/workflows/{seg(workflow_id)}"
    return Call("GET", path, _workflow, params=_params(namespace=namespace))


def update_workflow(
    workflow_id: str, document: dict[str, Any] | str, if_match: int | str | None
) -> Call[m.WorkflowInfo]:
    """``PUT /v1/workflows/{id}`` (``If-Match`` = the version you edited)."""
    call = _document_call("PUT", f"/v1/workflows/{seg(workflow_id)}", document, _workflow)
    call.headers.update(_if_match(if_match))
    return call


def delete_workflow(workflow_id: str, if_match: int | str | None) -> Call[None]:
    """``DELETE /v1/workflows/{id}``."""
    return Call(
        "DELETE",
        f"/v1/workflows/{seg(workflow_id)}",
        lambda _r: None,
        headers=_if_match(if_match),
    )


def validate_workflow(document: dict[str, Any] | str) -> Call[m.ValidationResult]:
    """``POST /v1/workflows/validate``."""
    return _document_call("POST", "/v1/workflows/validate", document, _model(m.ValidationResult))


def import_workflow(document: dict[str, Any] | str) -> Call[m.ImportResult]:
    """``POST /v1/workflows/import``."""
    return _document_call("POST", "/v1/workflows/import", document, _model(m.ImportResult))


def export_workflow(workflow_id: str, fmt: str) -> Call[str]:
    """``GET /v1/workflows/{id}/export?format=yaml|json`` (the document text)."""
    return Call(
        "GET",
        f"/v1/workflows/{seg(workflow_id)}/export",
        lambda r: r.text,
        params=_params(format=fmt),
        headers={"Accept": "*/*"},
    )


def list_revisions(workflow_id: str) -> Call[m.RevisionPage]:
    """``GET /v1/workflows/{id}/revisions``."""
    path = f"/v1/workflows/{seg(workflow_id)}/revisions"
    return Call("GET", path, _model(m.RevisionPage))


def get_revision(workflow_id: str, version: int) -> Call[m.Revision]:
    """``GET /v1/workflows/{id}/revisions/{version}``."""
    path = f"/v1/workflows/{seg(workflow_id)}/revisions/{version}"
    return Call("GET", path, _model(m.Revision))


def restore_revision(workflow_id: str, version: int) -> Call[m.WorkflowInfo]:
    """``POST /v1/workflows/{id}/revisions/{version}/restore``."""
    path = f"/v1/workflows/{seg(workflow_id)}/revisions/{version}/restore"
    return Call("POST", path, _workflow)


def patch_workflow(
    workflow_id: str, ops: list[dict[str, Any]], if_match: int | str | None
) -> Call[m.PatchResult]:
    """``POST /v1/workflows/{id}/operations`` (EditOps)."""
    return Call(
        "POST",
        f"/v1/workflows/{seg(workflow_id)}/operations",
        lambda r: m.PatchResult.model_validate(r.json()),
        json={"ops": ops},
        headers=_if_match(if_match),
    )


def start_workflow_run(
    workflow_id: str, run_input: Any, idempotency_key: str | None
) -> Call[m.DispatchResult]:
    """``POST /v1/workflows/{id}/runs``."""
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    return Call(
        "POST",
        f"/v1/workflows/{seg(workflow_id)}/runs",
        lambda r: m.DispatchResult.model_validate(r.json()),
        json={"input": run_input},
        headers=headers,
    )


# --- runs -------------------------------------------------------------------------------


def run_workflow(
    *,
    workflow_id: str | None,
    name: str | None,
    path: str | None,
    run_input: Any,
    namespace: str | None,
    run_id: str | None,
    idempotency_key: str | None,
) -> Call[m.DispatchResult]:
    """``POST /v1/runs``."""
    given = [v for v in (workflow_id, name, path) if v]
    if len(given) != 1:
        raise ValueError("give exactly one of workflow_id, name or path")
    body: dict[str, Any] = {"input": run_input}
    for key, value in (
        ("workflowId", workflow_id),
        ("workflow", name),
        ("workflowPath", path),
        ("namespace", namespace),
        ("runId", run_id),
    ):
        if value is not None:
            body[key] = value
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    return Call(
        "POST",
        "/v1/runs",
        lambda r: m.DispatchResult.model_validate(r.json()),
        json=body,
        headers=headers,
    )


def _run_list(response: httpx.Response) -> m.RunList:
    runs = [m.Run.model_validate(item) for item in response.json()]
    return m.RunList(items=runs, next_cursor=response.headers.get("X-Next-Cursor"))


def list_runs(
    *,
    status: str | list[str] | None,
    workflow: str | None,
    namespace: str | list[str] | None,
    created_after_ms: int | None,
    created_before_ms: int | None,
    limit: int | None,
    cursor: str | None,
) -> Call[m.RunList]:
    """``GET /v1/runs`` (the cursor of the next page comes back in ``X-Next-Cursor``)."""
    params = _params(
        status=status,
        workflow=workflow,
        namespace=namespace,
        createdAfter=created_after_ms,
        createdBefore=created_before_ms,
        limit=limit,
        cursor=cursor,
    )
    return Call("GET", "/v1/runs", _run_list, params=params)


def get_run(run_id: str) -> Call[m.RunDetail]:
    """``GET /v1/runs/{id}``."""
    return Call("GET", f"/v1/runs/{seg(run_id)}", lambda r: m.RunDetail.model_validate(r.json()))


def get_logs(run_id: str, after: str | None, limit: int | None) -> Call[m.LogPage]:
    """``GET /v1/runs/{id}/logs``."""
    return Call(
        "GET",
        f"/v1/runs/{seg(run_id)}/logs",
        lambda r: m.LogPage.model_validate(r.json()),
        params=_params(after=after, limit=limit),
    )


def get_run_nodes(run_id: str, cursor: str | None, limit: int | None) -> Call[m.NodePage]:
    """``GET /v1/runs/{id}/nodes``."""
    return Call(
        "GET",
        f"/v1/runs/{seg(run_id)}/nodes",
        lambda r: m.NodePage.model_validate(r.json()),
        params=_params(cursor=cursor, limit=limit),
    )


def get_frames(run_id: str, after_frame_no: int | None, limit: int | None) -> Call[list[m.Frame]]:
    """``GET /v1/runs/{id}/frames``."""
    return Call(
        "GET",
        f"/v1/runs/{seg(run_id)}/frames",
        lambda r: [m.Frame.model_validate(item) for item in r.json()],
        params=_params(afterFrameNo=after_frame_no, limit=limit),
    )


def _run(response: httpx.Response) -> m.Run:
    return m.Run.model_validate(response.json())


def rewind(run_id: str, frame_no: int) -> Call[m.Run]:
    """``POST /v1/runs/{id}/rewind``."""
    return Call("POST", f"/v1/runs/{seg(run_id)}/rewind", _run, json={"frameNo": frame_no})


def fork(
    run_id: str,
    frame_no: int | None,
    from_node: str | None,
    run_input: Any,
    use_latest_version: bool,
) -> Call[m.DispatchResult]:
    """``POST /v1/runs/{id}/fork``."""
    body: dict[str, Any] = {"useLatestVersion": use_latest_version}
    if frame_no is not None:
        body["frameNo"] = frame_no
    if from_node is not None:
        body["fromNode"] = from_node
    if run_input is not None:
        body["input"] = run_input
    return Call(
        "POST",
        f"/v1/runs/{seg(run_id)}/fork",
        lambda r: m.DispatchResult.model_validate(r.json()),
        json=body,
    )


def diff(run_id: str, other_run_id: str) -> Call[m.RunDiff]:
    """``GET /v1/runs/{id}/diff/{otherRunId}``."""
    return Call(
        "GET",
        f"/v1/runs/{seg(run_id)}/diff/{seg(other_run_id)}",
        lambda r: m.RunDiff.model_validate(r.json()),
    )


def cancel(run_id: str) -> Call[m.Run]:
    """``POST /v1/runs/{id}/cancel``."""
    return Call("POST", f"/v1/runs/{seg(run_id)}/cancel", _run)


def delete_run(run_id: str) -> Call[None]:
    """``DELETE /v1/runs/{id}``."""
    return Call("DELETE", f"/v1/runs/{seg(run_id)}", lambda _r: None)


def prune(dry_run: bool) -> Call[m.PruneResult]:
    """``POST /v1/admin/prune``."""
    return Call(
        "POST",
        "/v1/admin/prune",
        lambda r: m.PruneResult.model_validate(r.json()),
        params=[("dryRun", "true" if dry_run else "false")],
    )


def resume(run_id: str) -> Call[m.Run]:
    """``POST /v1/runs/{id}/resume``."""
    return Call("POST", f"/v1/runs/{seg(run_id)}/resume", _run, json={})


def retry(run_id: str, use_latest_version: bool) -> Call[m.DispatchResult]:
    """``POST /v1/runs/{id}/retry``."""
    return Call(
        "POST",
        f"/v1/runs/{seg(run_id)}/retry",
        lambda r: m.DispatchResult.model_validate(r.json()),
        json={"useLatestVersion": use_latest_version},
    )


def decide(
    run_id: str, node_id: str, approved: bool, iteration: int, note: str | None
) -> Call[m.Approval]:
    """``POST /v1/runs/{id}/nodes/{nodeId}/approve|deny``."""
    action = "approve" if approved else "deny"
    return Call(
        "POST",
        f"/v1/runs/{seg(run_id)}/nodes/{seg(node_id)}/{action}",
        lambda r: m.Approval.model_validate(r.json()),
        json={"iteration": iteration, "note": note},
    )


def signal(
    run_id: str, name: str, payload: Any, correlation_id: str | None
) -> Call[m.SignalResult]:
    """``POST /v1/runs/{id}/signals/{name}``."""
    return Call(
        "POST",
        f"/v1/runs/{seg(run_id)}/signals/{seg(name)}",
        lambda r: m.SignalResult.model_validate(r.json()),
        json={"payload": payload, "correlationId": correlation_id},
    )


def list_approvals(
    status: str | None, namespace: str | list[str] | None, limit: int | None
) -> Call[list[m.Approval]]:
    """``GET /v1/approvals``."""
    return Call(
        "GET",
        "/v1/approvals",
        lambda r: m.ApprovalList.model_validate(r.json()).approvals,
        params=_params(status=status, namespace=namespace, limit=limit),
    )


def remaining(deadline: float | None) -> float | None:
    """Seconds left until ``deadline`` (a ``time.monotonic()`` value; ``None``: no deadline)."""
    return None if deadline is None else max(deadline - time.monotonic(), 0.001)


def check_deadline(run_id: str, deadline: float | None) -> None:
    """Raise ``TimeoutError`` once ``deadline`` has passed."""
    if deadline is not None and time.monotonic() >= deadline:
        raise TimeoutError(f"run {run_id} is not terminal yet")


def events_request(
    run_id: str, after_seq: int, read_timeout: float | None = None
) -> tuple[str, dict[str, Any]]:
    """The path and request options of ``GET /v1/runs/{id}/events`` after ``after_seq``
    (``read_timeout``: wait at most this long for a byte, less than the default)."""
    headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
    if after_seq > 0:
        headers["Last-Event-ID"] = str(after_seq)
    read = STREAM_READ_TIMEOUT_SECONDS
    if read_timeout is not None:
        read = min(read, read_timeout)
    timeout = httpx.Timeout(DEFAULT_TIMEOUT_SECONDS, read=read)
    return f"/v1/runs/{seg(run_id)}/events", {
        "params": {"afterSeq": str(after_seq)},
        "headers": headers,
        "timeout": timeout,
    }


def start_stream_request(call: Call[Any]) -> dict[str, Any]:
    """The request options of a start (``POST /v1/runs``) that asks for the new run's
    event stream (``Accept: text/event-stream``) instead of its JSON."""
    kwargs = call.request_kwargs()
    kwargs["headers"] = {**call.headers, "Accept": "text/event-stream", "Cache-Control": "no-cache"}
    kwargs["timeout"] = httpx.Timeout(DEFAULT_TIMEOUT_SECONDS, read=STREAM_READ_TIMEOUT_SECONDS)
    return kwargs


def is_event_stream(response: httpx.Response) -> bool:
    """Whether ``response`` is an event stream (a server before start-and-follow answers a
    start with its JSON whatever ``Accept`` says)."""
    content_type: str = response.headers.get("content-type", "")
    return content_type.startswith("text/event-stream")


STREAM_ERRORS = (httpx.TransportError,)
"""Errors after which an event stream reconnects from the last ``seq``."""
MAX_RECONNECTS = 8
"""Consecutive failed reconnections before an event stream gives up."""


def reconnect_delay(failures: int) -> float:
    """Back-off before reconnection number ``failures`` (0.1 s doubling, at most 5 s)."""
    return float(min(0.1 * 2 ** max(failures - 1, 0), 5.0))


# --- schedules --------------------------------------------------------------------------


def _owned_listing(
    path: str,
    parse: Callable[[httpx.Response], T],
    namespace: str | list[str] | None,
    workflow_id: str | None,
    limit: int | None,
    cursor: str | None,
) -> Call[T]:
    params = _params(namespace=namespace, workflowId=workflow_id, limit=limit, cursor=cursor)
    return Call("GET", path, parse, params=params)


def _body(**values: Any) -> dict[str, Any]:
    """A JSON body of the values given (``None`` left out), keys in camelCase."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is not None:
            head, *rest = key.split("_")
            out[head + "".join(part.title() for part in rest)] = value
    return out


def create_schedule(body: dict[str, Any]) -> Call[m.Schedule]:
    """``POST /v1/schedules``."""
    return Call("POST", "/v1/schedules", _model(m.Schedule), json=body)


def list_schedules(
    namespace: str | list[str] | None,
    workflow_id: str | None,
    limit: int | None,
    cursor: str | None,
) -> Call[m.SchedulePage]:
    """``GET /v1/schedules``."""
    parse = _model(m.SchedulePage)
    return _owned_listing("/v1/schedules", parse, namespace, workflow_id, limit, cursor)


def get_schedule(schedule_id: str) -> Call[m.Schedule]:
    """``GET /v1/schedules/{id}``."""
    return Call("GET", f"/v1/schedules/{seg(schedule_id)}", _model(m.Schedule))


def update_schedule(schedule_id: str, changes: dict[str, Any]) -> Call[m.Schedule]:
    """``PATCH /v1/schedules/{id}``."""
    path = f"/v1/schedules/{seg(schedule_id)}"
    return Call("PATCH", path, _model(m.Schedule), json=changes)


def delete_schedule(schedule_id: str) -> Call[None]:
    """``DELETE /v1/schedules/{id}``."""
    return Call("DELETE", f"/v1/schedules/{seg(schedule_id)}", _none)


def trigger_schedule(schedule_id: str, run_input: dict[str, Any] | None) -> Call[str]:
    """``POST /v1/schedules/{id}/trigger``: the id of the run it started."""
    body = {"input": run_input} if run_input is not None else {}
    path = f"/v1/schedules/{seg(schedule_id)}/trigger"
    return Call("POST", path, lambda r: str(r.json()["runId"]), json=body)


# --- triggers ---------------------------------------------------------------------------


def create_trigger(body: dict[str, Any]) -> Call[m.Trigger]:
    """``POST /v1/triggers``."""
    return Call("POST", "/v1/triggers", _model(m.Trigger), json=body)


def list_triggers(
    namespace: str | list[str] | None,
    workflow_id: str | None,
    limit: int | None,
    cursor: str | None,
) -> Call[m.TriggerPage]:
    """``GET /v1/triggers``."""
    parse = _model(m.TriggerPage)
    return _owned_listing("/v1/triggers", parse, namespace, workflow_id, limit, cursor)


def get_trigger(trigger_id: str) -> Call[m.Trigger]:
    """``GET /v1/triggers/{id}``."""
    return Call("GET", f"/v1/triggers/{seg(trigger_id)}", _model(m.Trigger))


def update_trigger(trigger_id: str, body: dict[str, Any]) -> Call[m.Trigger]:
    """``PUT /v1/triggers/{id}``."""
    return Call("PUT", f"/v1/triggers/{seg(trigger_id)}", _model(m.Trigger), json=body)


def delete_trigger(trigger_id: str) -> Call[None]:
    """``DELETE /v1/triggers/{id}``."""
    return Call("DELETE", f"/v1/triggers/{seg(trigger_id)}", _none)


# --- credentials ------------------------------------------------------------------------


def create_credential(body: dict[str, Any]) -> Call[m.Credential]:
    """``POST /v1/credentials``."""
    return Call("POST", "/v1/credentials", _model(m.Credential), json=body)


def list_credentials(
    namespace: str | list[str] | None, limit: int | None, cursor: str | None
) -> Call[m.CredentialPage]:
    """``GET /v1/credentials``."""
    params = _params(namespace=namespace, limit=limit, cursor=cursor)
    return Call("GET", "/v1/credentials", _model(m.CredentialPage), params=params)


def get_credential(credential_id: str) -> Call[m.Credential]:
    """``GET /v1/credentials/{id}``."""
    return Call("GET", f"/v1/credentials/{seg(credential_id)}", _model(m.Credential))


def update_credential(
    credential_id: str, body: dict[str, Any], if_match: int | str | None
) -> Call[m.Credential]:
    """``PUT /v1/credentials/{id}``."""
    return Call(
        "PUT",
        f"/v1/credentials/{seg(credential_id)}",
        _model(m.Credential),
        json=body,
        headers=_if_match(if_match),
    )


def delete_credential(credential_id: str, if_match: int | str | None) -> Call[None]:
    """``DELETE /v1/credentials/{id}``."""
    path = f"/v1/credentials/{seg(credential_id)}"
    return Call("DELETE", path, _none, headers=_if_match(if_match))


# --- KV ---------------------------------------------------------------------------------


def _kv_path(namespace: str, key: str) -> str:
    return f"/v1/kv/{seg(namespace)}/{quote(key, safe='/')}"


def list_kv(
    namespace: str, prefix: str | None, limit: int | None, cursor: str | None
) -> Call[m.KVPage]:
    """``GET /v1/kv/{namespace}``."""
    params = _params(prefix=prefix, limit=limit, cursor=cursor)
    return Call("GET", f"/v1/kv/{seg(namespace)}", _model(m.KVPage), params=params)


def get_kv(namespace: str, key: str) -> Call[m.KVEntry]:
    """``GET /v1/kv/{namespace}/{key}``."""
    return Call("GET", _kv_path(namespace, key), _model(m.KVEntry))


def put_kv(
    namespace: str,
    key: str,
    value: Any,
    ttl_seconds: float | None,
    if_match: int | str | None,
    only_if_absent: bool,
) -> Call[m.KVEntry]:
    """``PUT /v1/kv/{namespace}/{key}`` (``If-Match`` / ``If-None-Match: *``)."""
    headers = _if_match(if_match)
    if only_if_absent:
        headers["If-None-Match"] = "*"
    body = _body(value=value, ttl_seconds=ttl_seconds)
    body.setdefault("value", value)
    return Call("PUT", _kv_path(namespace, key), _model(m.KVEntry), json=body, headers=headers)


def delete_kv(namespace: str, key: str, if_match: int | str | None) -> Call[None]:
    """``DELETE /v1/kv/{namespace}/{key}``."""
    return Call("DELETE", _kv_path(namespace, key), _none, headers=_if_match(if_match))


# --- connectors -------------------------------------------------------------------------


def list_connectors(detail: str, category: str | None, q: str | None) -> Call[m.ConnectorPage]:
    """``GET /v1/connectors``."""
    params = _params(detail=detail, category=category, q=q)
    return Call("GET", "/v1/connectors", _model(m.ConnectorPage), params=params)


def get_connector(node_type: str) -> Call[m.Connector]:
    """``GET /v1/connectors/{type}``."""
    return Call("GET", f"/v1/connectors/{seg(node_type)}", _model(m.Connector))


def list_connector_categories() -> Call[list[m.ConnectorCategory]]:
    """``GET /v1/connectors/categories``."""
    return Call(
        "GET",
        "/v1/connectors/categories",
        lambda r: [m.ConnectorCategory.model_validate(c) for c in r.json()],
    )


def schedule_body(**values: Any) -> dict[str, Any]:
    """The JSON body of a schedule create or patch (``None`` left out)."""
    return _body(**values)


def trigger_body(**values: Any) -> dict[str, Any]:
    """The JSON body of a trigger create or replace (``None`` left out)."""
    return _body(**values)


def credential_body(**values: Any) -> dict[str, Any]:
    """The JSON body of a credential create or update (``None`` left out)."""
    return _body(**values)
