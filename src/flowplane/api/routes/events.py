"""``GET /v1/events``: the live event stream of whole namespaces (SSE).

Every event of every run in the requested namespaces (optionally only some ``types``), in
``seq`` order: replayed from the table after ``afterSeq`` / ``Last-Event-ID``, then live.
Unlike a run's stream it never ends by itself; ``: keep-alive`` comments keep proxies from
closing it. See ``docs/events.md``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from starlette.responses import StreamingResponse

from flowplane.api.deps import require, services_dependency
from flowplane.api.metrics import Metrics
from flowplane.api.openapi import error_responses
from flowplane.api.sse import event_stream_response, parse_last_event_id
from flowplane.errors import InvalidInput, NotFound
from flowplane.services.caller import Caller
from flowplane.services.container import Services
from flowplane.services.feed import namespace_filter

router = APIRouter(tags=["events"])

ALL_NAMESPACES = "*"
MAX_FILTER_VALUES = 64


def _split(values: list[str] | None) -> list[str]:
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


def visible_namespaces(principal: Caller, requested: list[str]) -> list[str] | None:
    """The namespaces a stream of ``requested`` covers (``None``: all of them).

    ``*`` means every namespace the caller sees. Namespaces the caller cannot see are left
    out; when none is left the answer is 404, as for any object of another namespace.
    """
    names = _split(requested)
    if not names:
        raise InvalidInput("namespace is required (a name, a comma-separated list, or *)")
    if len(names) > MAX_FILTER_VALUES:
        raise InvalidInput(f"at most {MAX_FILTER_VALUES} namespaces")
    visible = principal.visible(None if ALL_NAMESPACES in names else names)
    if visible is not None and not visible:
        raise NotFound("namespace not found")
    return visible


@router.get(
    "/v1/events",
    summary="Stream the events of namespaces (SSE)",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "`id: <seq>`, `event: <type>`, `data: <json>` per event; "
            "`: keep-alive` comments; never closes by itself.",
        },
        **error_responses(400, 404),
    },
)
async def stream_namespace_events(
    request: Request,
    principal: Annotated[Caller, require("viewer")],
    services: Annotated[Services, Depends(services_dependency)],
    namespace: Annotated[
        list[str],
        Query(description="Namespaces (repeat or comma-separate); `*` for all you can see."),
    ],
    types: Annotated[
        list[str] | None, Query(description="Only these event types (repeat or comma-separate).")
    ] = None,
    after_seq: Annotated[int, Query(alias="afterSeq", ge=0)] = 0,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Replay the namespaces' events after ``afterSeq`` / ``Last-Event-ID``, then follow live."""
    namespaces = visible_namespaces(principal, namespace)
    wanted = _split(types)
    if len(wanted) > MAX_FILTER_VALUES:
        raise InvalidInput(f"at most {MAX_FILTER_VALUES} event types")
    start = max(after_seq, parse_last_event_id(last_event_id))
    source = services.feed.stream(namespace_filter(namespaces, wanted or None), start)
    return sse_response(request, source)


def sse_response(request: Request, source: AsyncIterator[dict[str, Any]]) -> StreamingResponse:
    """The SSE response of an event stream, counted in the app's stream metrics."""
    metrics = getattr(request.app.state, "metrics", None)
    if isinstance(metrics, Metrics):
        source = metrics.track_stream(source, "sse")
    return event_stream_response(source)
