"""``GET /v1/events``: the live event stream of whole namespaces (SSE).

Every event of every run in the requested namespaces (optionally only some ``types``), in
``seq`` order: replayed from the table after ``afterSeq`` / ``Last-Event-ID``, then live.
Unlike a run's stream it never ends by itself; ``: keep-alive`` comments keep proxies from
closing it. See ``docs/events.md``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from pydantic import StringConstraints
from starlette.responses import StreamingResponse

from flowplane.api.deps import require, services_dependency
from flowplane.api.metrics import Metrics
from flowplane.api.openapi import error_responses
from flowplane.api.sse import (
    KEEPALIVE_SECONDS,
    FeedStreamResponse,
    event_stream_content,
    parse_last_event_id,
)
from flowplane.model.bounds import Seq
from flowplane.services.caller import Caller
from flowplane.services.container import Services

router = APIRouter(tags=["events"])


def _split(values: list[str] | None) -> list[str]:
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


@router.get(
    "/v1/events",
    summary="Stream the events of namespaces (SSE)",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": event_stream_content(),
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
        list[Annotated[str, StringConstraints(pattern=r"[^,\s]")]],
        Query(
            min_length=1,
            description="Namespaces (repeat or comma-separate); `*` for all you can see.",
        ),
    ],
    types: Annotated[
        list[str] | None, Query(description="Only these event types (repeat or comma-separate).")
    ] = None,
    after_seq: Annotated[Seq, Query(alias="afterSeq")] = 0,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Replay the namespaces' events after ``afterSeq`` / ``Last-Event-ID``, then follow live."""
    wanted = _split(types)
    event_filter = services.feed.for_namespaces(principal, _split(namespace), wanted or None)
    start = max(after_seq, parse_last_event_id(last_event_id))
    batches = services.feed.batches(event_filter, start, idle_seconds=KEEPALIVE_SECONDS)
    return sse_response(request, batches)


def sse_response(
    request: Request,
    batches: AsyncIterator[Sequence[dict[str, Any]]],
    event_name: str | None = None,
) -> StreamingResponse:
    """The SSE response of a feed's batches of events, counted in the app's stream
    metrics (once per batch: the per-event cost is what the feed must keep small)."""
    metrics = getattr(request.app.state, "metrics", None)
    if isinstance(metrics, Metrics):
        return FeedStreamResponse(
            batches,
            event_name=event_name,
            gauge=metrics.stream_subscribers.labels("sse"),
            counter=metrics.stream_events.labels("sse"),
        )
    return FeedStreamResponse(batches, event_name=event_name)


def sse_meters(metrics: Metrics) -> tuple[Any, Any]:
    """The SSE streams' subscriber gauge and sent-events counter."""
    return metrics.stream_subscribers.labels("sse"), metrics.stream_events.labels("sse")


async def counted(
    batches: AsyncIterator[Sequence[dict[str, Any]]], metrics: Metrics
) -> AsyncIterator[Sequence[dict[str, Any]]]:
    subscribers, sent = sse_meters(metrics)
    subscribers.inc()
    try:
        async for batch in batches:
            if batch:
                sent.inc(len(batch))
            yield batch
    finally:
        subscribers.dec()
        aclose = getattr(batches, "aclose", None)
        if aclose is not None:
            await aclose()
