"""The MCP face over the services: :class:`ServicesBackend`, and ``/mcp`` in ``serve``.

:class:`ServicesBackend` is the :class:`~flowplane.mcp.backend.Backend` of one caller: each
method is one service call, answered in the same wire models as the HTTP routes (so the
EditOps result, run details and approvals read the same, secrets redacted the same way).
It holds no rule: the services check roles and namespaces, page and audit.

:func:`mount_mcp` routes ``/mcp`` of the API app to the MCP server over streamable HTTP.
The API's security middleware has authenticated the request before it gets there (Bearer
API key or JWT, rate limits); the backend is built for that request's caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from pydantic import BaseModel
from starlette.routing import Route

from flowplane.api.callers import of_request
from flowplane.api.models.workflows import (
    ValidationErrorOut,
    ValidationOut,
    WorkflowList,
    WorkflowRunBody,
    patch_out,
    run_request_hash,
    workflow_out,
)
from flowplane.api.run_views import (
    approval_model,
    diff_model,
    log_page,
    render_detail,
    run_model,
    signal_result,
)
from flowplane.client.models import ApprovalList, DispatchResult
from flowplane.errors import Unauthorized
from flowplane.mcp.backend import Json
from flowplane.services.caller import Caller
from flowplane.services.container import Services
from flowplane.services.runs import StartResult

if TYPE_CHECKING:
    from flowplane.mcp.server import HttpEndpoint

__all__ = ["MCP_PATH", "LazyMcp", "ServicesBackend", "caller_of_context", "mount_mcp"]

MCP_PATH = "/mcp"


def _wire(model: BaseModel) -> Json:
    return model.model_dump(mode="json", by_alias=True)


def _dispatched(result: StartResult) -> Json:
    return _wire(DispatchResult(**run_model(result.run).model_dump(), created=result.created))


@dataclass(frozen=True)
class ServicesBackend:
    """The MCP tools' backend for one caller, over the process's services."""

    services: Services
    caller: Caller

    async def search_connectors(
        self, query: str | None, category: str | None, detail: str
    ) -> list[Json]:
        found = self.services.catalog.search(self.caller, category=category, q=query)
        return [m.summary() if detail == "summary" else m.to_dict() for m in found]

    async def describe_connector(self, type_: str) -> Json:
        return self.services.catalog.get(self.caller, type_).to_dict()

    async def list_workflows(
        self, namespace: list[str] | None, limit: int, cursor: str | None
    ) -> Json:
        page = await self.services.workflows.list_workflows(
            self.caller, namespaces=namespace, limit=limit, cursor=cursor
        )
        items = [workflow_out(w) for w in page.items]
        return _wire(WorkflowList(items=items, next_cursor=page.next_cursor))

    async def get_workflow(self, ref: str, namespace: str | None) -> Json:
        wf = await self.services.workflows.resolve(self.caller, ref, namespace=namespace)
        return _wire(workflow_out(wf))

    async def create_workflow(self, document: Json) -> Json:
        return _wire(workflow_out(await self.services.workflows.create(self.caller, document)))

    async def validate_workflow(self, document: Json) -> Json:
        report = await self.services.workflows.validate(self.caller, document)
        errors = [ValidationErrorOut(**e) for e in report.errors]
        warnings = [ValidationErrorOut(**e) for e in report.warnings]
        out = ValidationOut(
            valid=report.valid, errors=errors, document=report.document, warnings=warnings
        )
        return _wire(out)

    async def apply_edits(
        self, workflow_id: str, ops: list[Json], expected_version: int | None
    ) -> Json:
        outcome = await self.services.workflows.patch(
            self.caller, workflow_id, list(ops), expected_version=expected_version
        )
        return _wire(patch_out(outcome))

    async def start_run(
        self, workflow_id: str, run_input: Any, idempotency_key: str | None
    ) -> Json:
        body = WorkflowRunBody(input=run_input, idempotency_key=idempotency_key)
        result = await self.services.workflows.start_run(
            self.caller,
            workflow_id,
            run_input,
            idempotency_key=idempotency_key,
            request_hash=run_request_hash(workflow_id, body),
        )
        return _dispatched(result)

    async def list_runs(
        self, status: list[str] | None, workflow: str | None, limit: int, cursor: str | None
    ) -> Json:
        page = await self.services.runs.list_runs(
            self.caller, statuses=status, workflow=workflow, cursor=cursor, limit=limit
        )
        items = [run_model(run) for run in page.items]
        return {"runs": [_wire(run) for run in items], "nextCursor": page.next_cursor}

    async def describe_run(self, run_id: str) -> Json:
        detail: Json = json.loads(
            await self.services.runs.detail(self.caller, run_id, render_detail)
        )
        return detail

    async def run_logs(self, run_id: str, after: str | None, limit: int) -> Json:
        page = await self.services.runs.log_page(self.caller, run_id, after, limit)
        return _wire(log_page(page))

    async def wait_run(self, run_id: str, timeout_seconds: float) -> tuple[Json, bool]:
        _run, reached = await self.services.runs.settle(self.caller, run_id, timeout_seconds)
        return await self.describe_run(run_id), reached

    async def decide(
        self, run_id: str, node_id: str, approved: bool, iteration: int, note: str | None
    ) -> Json:
        decided = await self.services.runs.decide(
            self.caller,
            run_id,
            node_id,
            approved=approved,
            iteration=iteration,
            note=note,
            by=self.caller.name,
        )
        return _wire(approval_model(decided))

    async def signal(
        self, run_id: str, name: str, payload: Any, correlation_id: str | None
    ) -> Json:
        result = await self.services.runs.signal(self.caller, run_id, name, payload, correlation_id)
        return _wire(signal_result(run_id, name, result))

    async def cancel(self, run_id: str) -> Json:
        return _wire(run_model(await self.services.runs.cancel(self.caller, run_id)))

    async def resume(self, run_id: str) -> Json:
        return _wire(run_model(await self.services.runs.resume(self.caller, run_id)))

    async def retry(self, run_id: str, use_latest_version: bool) -> Json:
        result = await self.services.runs.retry(
            self.caller,
            run_id,
            use_latest_version=use_latest_version,
            triggered_by=self.caller.name,
        )
        return _dispatched(result)

    async def fork(
        self, run_id: str, from_node: str, run_input: Any, use_latest_version: bool
    ) -> Json:
        result = await self.services.runs.fork(
            self.caller,
            run_id,
            from_node=from_node,
            run_input=run_input,
            use_latest_version=use_latest_version,
            triggered_by=self.caller.name,
        )
        return _dispatched(result)

    async def diff(self, run_id: str, other_run_id: str) -> Json:
        return _wire(diff_model(await self.services.runs.diff(self.caller, run_id, other_run_id)))

    async def list_approvals(self, namespace: list[str] | None, limit: int) -> Json:
        found = await self.services.runs.approvals.list(
            self.caller, namespaces=namespace, limit=limit
        )
        return _wire(ApprovalList(approvals=[approval_model(a) for a in found]))


def caller_of_context(ctx: Any) -> Caller:
    """The caller of the HTTP request an MCP message came in (set by the security gate).

    With the request's id (``X-Request-Id``, or the one the API made up), so the audit log
    names the MCP request as it names any other.
    """
    request = getattr(ctx.request_context, "request", None)
    state = getattr(request, "scope", {}).get("state", {}) if request is not None else {}
    principal = state.get("principal")
    if not isinstance(principal, Caller):
        # Fail closed: only requests through the security middleware reach the MCP app.
        raise Unauthorized("credentials required: send 'Authorization: Bearer <token>'")
    # The MCP SDK serves the message in a task started inside the request, which inherits
    # the request's context: its id is the one the edge middleware (api/edge.py) set.
    return of_request(principal)


class LazyMcp:
    """``/mcp`` of an app, with the MCP server built on its first request.

    The MCP SDK and the tools' models take ~1 s to import, a third of ``flowplane serve``'s
    start-up, and most processes never serve an MCP request. The first request imports
    them, builds the server and starts its session manager (under a lock: requests that
    arrive meanwhile wait for it); :meth:`running`, entered by the app's lifespan, stops
    the session manager at the app's end if it was started."""

    def __init__(self, provider: Any, path: str) -> None:
        self._provider = provider
        self._path = path
        self._endpoint: HttpEndpoint | None = None
        self._lock = asyncio.Lock()
        self._stack = contextlib.AsyncExitStack()
        self._stopped = False
        # An object, not a function: Starlette hands it the raw ASGI call.
        self.route = Route(path, endpoint=_Asgi(self))

    async def endpoint(self) -> HttpEndpoint:
        """The MCP server, built and running."""
        if self._endpoint is None:
            async with self._lock:
                if self._endpoint is None:
                    if self._stopped:
                        raise RuntimeError("the app has stopped")
                    from flowplane.mcp.server import http_endpoint

                    endpoint = http_endpoint(self._provider, self._path)
                    await self._stack.enter_async_context(endpoint.running())
                    self._endpoint = endpoint
        return self._endpoint

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The app's life: at its end, stop the MCP server if a request started it."""
        try:
            yield
        finally:
            async with self._lock:
                self._stopped = True
                await self._stack.aclose()


class _Asgi:
    def __init__(self, lazy: LazyMcp) -> None:
        self.lazy = lazy

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        endpoint = await self.lazy.endpoint()
        await endpoint.route.handle(scope, receive, send)


def mount_mcp(app: FastAPI, path: str = MCP_PATH) -> LazyMcp:
    """Route ``path`` of ``app`` to the MCP server (built on first use); the app's lifespan
    must enter ``running()`` (:func:`flowplane.api.app.create_app` does)."""

    def provider(ctx: Any) -> ServicesBackend:
        services: Services = app.state.services
        return ServicesBackend(services, caller_of_context(ctx))

    lazy = LazyMcp(provider, path)
    app.router.routes.append(lazy.route)
    return lazy
