"""Starting a run without FastAPI's generic request path (issue 19).

``POST /v1/runs`` and ``POST /v1/workflows/{id}/runs`` are the API's hot writes. Through
FastAPI each paid for route matching (18+ patterns, included routers walked per request)
and dependency solving more than for the start itself. :class:`StartShortcut` binds the
arguments of those two routes by hand (the same body models, the same role check, the
same ``Idempotency-Key`` header) and calls what their endpoints call
(:func:`~flowplane.api.routes.runs.launch_run`,
:func:`~flowplane.api.routes.workflows.start_workflow_run`), so what a start does is
written once, in the routes' module. It answers with the status the endpoint would choose
and the bytes its response model writes (:func:`render_dispatch`, sent as two ASGI messages
rather than through a Starlette ``Response``), and a ``FlowplaneError`` as the app's
exception handler does.

Anything it does not bind exactly as FastAPI would falls through, unchanged, to the route:
another path or method, a body that is not one JSON object sent as ``application/json``,
a body the model refuses (the route answers its 400 with the same ``errors``), a repeated
or over-long ``Idempotency-Key``, a caller without the role (the route's 403), or an app
with OpenTelemetry on (the route's spans). It sits inside the security gate and the body
limits (authenticated, rate-limited, size- and depth-checked as before) and labels the
request's metrics with the route's template.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.requests import Request

from flowplane.api.callers import of_request
from flowplane.api.deps import api_routes
from flowplane.api.models.runs import DispatchBody
from flowplane.api.models.workflows import WorkflowRunBody
from flowplane.api.problems import error_response
from flowplane.api.routes.runs import dispatch_run, launch_run
from flowplane.api.routes.workflows import run_workflow, start_workflow_run
from flowplane.api.run_stream import follow_started, wants_stream
from flowplane.api.run_views import run_fields
from flowplane.client.models import DispatchResult
from flowplane.errors import FlowplaneError
from flowplane.services.caller import Caller
from flowplane.services.runs import StartResult

_log = logging.getLogger("flowplane.api")

RUNS_PATH = "/v1/runs"
WORKFLOWS_PREFIX = "/v1/workflows/"
RUNS_SUFFIX = "/runs"
_IDEMPOTENCY = b"idempotency-key"
_MAX_IDEMPOTENCY_KEY = 255  # the routes' Header(max_length=255)
_JSON = b"application/json"

Endpoint = Callable[..., Awaitable[Any]]

_SERIALIZE = DispatchResult.__pydantic_serializer__.to_json


class StartShortcut:
    """Plain ASGI middleware answering valid starts by calling the routes' endpoints."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._routes: dict[str, APIRoute | None] | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        workflow_id: str | None = None
        if path != RUNS_PATH:
            if not (path.startswith(WORKFLOWS_PREFIX) and path.endswith(RUNS_SUFFIX)):
                await self.app(scope, receive, send)
                return
            workflow_id = path[len(WORKFLOWS_PREFIX) : -len(RUNS_SUFFIX)]
            if not workflow_id or "/" in workflow_id:
                await self.app(scope, receive, send)
                return
        message: dict[str, Any] = dict(await receive())
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return message
            return dict(await receive())

        if not await self._answer(scope, message, workflow_id, replay, send):
            await self.app(scope, replay, send)

    async def _answer(
        self,
        scope: dict[str, Any],
        message: dict[str, Any],
        workflow_id: str | None,
        receive: Any,
        send: Any,
    ) -> bool:
        """Start the run and answer; ``False`` (nothing sent) to let the route answer."""
        app = scope["app"]
        bound = _bind(scope, message)
        if bound is None:
            return False
        principal, key, document = bound
        routes = self._routes_of(app)
        route = routes["start" if workflow_id is None else "workflow"]
        if route is None:
            return False
        caller = of_request(principal)
        request = Request(scope, receive, send)
        try:
            if workflow_id is None:
                dispatch = DispatchBody.model_validate(document)
            else:
                start = WorkflowRunBody.model_validate(document)
        except ValidationError:
            return False  # the route answers its 400 with the same errors
        scope["route"] = route  # metrics label the request with the route's template
        try:
            if workflow_id is None:
                result = await launch_run(request, dispatch, caller, key)
                status = route.status_code or 200
            else:
                result = await start_workflow_run(request, workflow_id, caller, start, key)
                status = 201 if result.created else 200  # as run_workflow sets it
        except FlowplaneError as exc:
            # As problems.install's handler for FlowplaneError answers it.
            if exc.status >= 500:
                _log.error("request failed: %s: %s", exc.code, exc.detail)
            problem = error_response(exc, getattr(exc, "headers", None), path=request.url.path)
            await problem(scope, receive, send)
            return True
        if workflow_id is None and wants_stream(request.headers.getlist("accept")):
            # A start that follows its run (Accept: text/event-stream), as dispatch_run.
            stream = await follow_started(request, caller, result.run.id, created=result.created)
            if stream is not None:
                await stream(scope, receive, send)
                return True
        body = render_dispatch(result)
        # What a Starlette Response with this JSON body sends.
        headers = [(b"content-length", str(len(body)).encode()), (b"content-type", _JSON)]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return True

    def _routes_of(self, app: Any) -> dict[str, APIRoute | None]:
        if self._routes is None:
            found: dict[str, APIRoute | None] = {"start": None, "workflow": None}
            for info in api_routes(app):
                if "POST" not in info.methods:
                    continue
                if info.route.endpoint is dispatch_run and info.path == RUNS_PATH:
                    found["start"] = info.route
                elif info.route.endpoint is run_workflow:
                    found["workflow"] = info.route
            self._routes = found
        return self._routes


def _bind(
    scope: dict[str, Any], message: dict[str, Any]
) -> tuple[Caller, str | None, dict[str, Any]] | None:
    """The caller, the ``Idempotency-Key`` and the JSON body of a start the shortcut may
    answer, or ``None`` when the route should (see the module doc)."""
    if getattr(scope["app"].state.settings, "opentelemetry", False):
        return None
    principal = scope.get("state", {}).get("principal")
    if not isinstance(principal, Caller) or not principal.allows("executor"):
        return None
    # The body limits middleware hands the whole body over in one message.
    if message.get("type") != "http.request" or message.get("more_body"):
        return None
    content_type: bytes | None = None
    keys: list[bytes] = []
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            if content_type is not None:
                return None
            content_type = value
        elif name == _IDEMPOTENCY:
            keys.append(value)
    if content_type != _JSON or len(keys) > 1:
        return None
    key = keys[0].decode("latin-1") if keys else None
    if key is not None and len(key) > _MAX_IDEMPOTENCY_KEY:
        return None
    try:
        document: object = json.loads(message.get("body", b""))
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    return principal, key, document


def render_dispatch(result: StartResult) -> bytes:
    """The JSON body of a start's answer, as the routes' response model writes it (the
    model's serializer straight to bytes: quicker than ``json.dumps`` of the fields)."""
    model = DispatchResult(**run_fields(result.run), created=result.created)
    body: bytes = _SERIALIZE(model, by_alias=True)
    return body
