"""Server-sent events: a run's event stream, replayed from the table then followed live.

Each event goes out as ``id: <seq>``, ``event: <name>``, ``data: <json>``: a run's stream
(``/v1/runs/{id}/events``, serve mode's ``/events``) names every event ``smithers``, as
Smithers' server does (the type is the payload's ``type``); ``/v1/events`` names each by its
type. The stream starts
after ``Last-Event-ID`` (or ``?afterSeq=``), sends a ``: keep-alive`` comment when it has been
quiet for :data:`KEEPALIVE_SECONDS`, and closes after the run's terminal event.

Streams of the API (``/v1/events``, ``/v1/runs/{id}/events``) write the event feed's
batches (:class:`FeedStreamResponse`; a run's stream below FastAPI's routing,
:mod:`flowplane.api.run_stream`, through :func:`write_direct` too): one chunk per batch,
each event's message rendered once for all subscribers; the feed bounds memory per
subscriber and paces replays. Under
uvicorn's httptools protocol (``flowplane serve``) the stream writes to its socket itself
and, while it waits, the feed's tail writes each live read's bytes to it directly
(:class:`SocketSink`): one ``transport.write`` of bytes shared by all subscribers instead of
a wake-up, a generator chain and an ASGI ``send`` through the middleware per subscriber.
Elsewhere (an in-process ASGI client) the same batches go through ``send``. Serve mode's
stream (:meth:`RunService.follow`) goes through :func:`stream_events`: a producer task
fills a bounded queue per connection; when a client reads slowly the producer simply stops
reading the table (the table is the buffer).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Hashable, Sequence
from typing import Any

from starlette.responses import StreamingResponse

from flowplane.errors import InvalidInput
from flowplane.jsontext import compact
from flowplane.model.bounds import INT64_MAX, in_range
from flowplane.services.feed import FeedBatches

KEEPALIVE_SECONDS = 15.0
"""Quiet time after which a ``: keep-alive`` comment is sent."""
BUFFER_EVENTS = 256
"""Events one connection may hold in memory before the producer waits."""
RETRY_MS = 1000
"""The reconnection delay advertised to EventSource clients."""
SMITHERS_EVENT = "smithers"
"""The ``event:`` name of every message of a run's stream (Smithers' framing)."""
SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "Connection": "keep-alive",
    "X-Accel-Buffering": "no",
    "X-Content-Type-Options": "nosniff",
}
"""The headers of every event stream, as Smithers' server sends them (the content type
without a charset)."""
COALESCE_EVENTS = 64
"""Most queued events written to the socket in one chunk."""

EVENT_DATA_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "RunEvent",
    "description": "One run event: the members every event has, plus its type's own members "
    "(`nodeId`, `status`, `output`, ...; see docs/events.md).",
    "required": ["type", "runId", "seq", "timestampMs"],
    "properties": {
        "type": {"type": "string", "description": "`RunStarted`, `NodeFinished`, ..."},
        "runId": {"type": "string"},
        "seq": {"type": "integer", "minimum": 1, "description": "The event's `id:`."},
        "timestampMs": {"type": "integer"},
    },
    "additionalProperties": True,
}
SSE_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "ServerSentEvent",
    "description": "One message of the stream, as an EventSource client parses it: `id` is the "
    "event's `seq` (resume with `Last-Event-ID`), `event` is `smithers` on a run's stream and "
    "the event's type on `/v1/events`, and `data` the event as JSON. `: keep-alive` comments "
    "carry no event.",
    "required": ["data"],
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "event": {"type": "string"},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": EVENT_DATA_SCHEMA,
        },
        "retry": {"type": "integer", "minimum": 0},
    },
}
"""Each message of ``text/event-stream`` (OpenAPI 3.1 has a streaming media type's ``schema``
describe one message, not the whole body as a string)."""


def event_stream_content() -> dict[str, Any]:
    """The ``content`` of an SSE response in the OpenAPI document."""
    return {"text/event-stream": {"schema": SSE_EVENT_SCHEMA}}


_DONE = object()
_log = logging.getLogger("flowplane.api.sse")


def format_event(event: dict[str, Any], name: str | None = None) -> bytes:
    """Render one event payload as an SSE message named ``name`` (default: its type).

    An event of the feed carries its JSON, encoded once, and a cache of its messages: the
    first subscriber renders it, every other one writes the same bytes."""
    frames: dict[str | None, bytes] | None = getattr(event, "frames", None)
    if frames is not None:
        frame = frames.get(name)
        if frame is None:
            frame = frames[name] = _frame(event, name, event.json)  # type: ignore[attr-defined]
        return frame
    return _frame(event, name, compact(event).encode())


def _frame(event: dict[str, Any], name: str | None, data: bytes) -> bytes:
    # A JSON dump has no raw newlines, so one ``data:`` line is enough.
    head = f"id: {event['seq']}\nevent: {name or event['type']}\ndata: ".encode()
    return head + data + b"\n\n"


def parse_last_event_id(value: str | None) -> int:
    """Return the ``seq`` of a ``Last-Event-ID`` header (0 when absent or not a number).

    Raises:
        InvalidInput: the header is a number past the largest seq (2^63 - 1): the stream
            would otherwise fail at its first read.
    """
    if not value:
        return 0
    try:
        seq = max(int(value.strip()), 0)
    except ValueError:
        return 0
    if not in_range(seq):
        raise InvalidInput(f"Last-Event-ID must be an event seq, at most {INT64_MAX}")
    return seq


async def _produce(source: AsyncIterator[dict[str, Any]], queue: asyncio.Queue[Any]) -> None:
    end: object = _DONE
    try:
        async for event in source:
            await queue.put(event)  # waits while the reader is behind: the buffer is bounded
    except Exception as exc:  # the consumer ends the stream; the client resumes by seq
        _log.warning("event stream failed: %s", exc)
        end = exc
    # Not in a ``finally``: once cancelled (the client left) nobody reads the queue.
    await queue.put(end)


async def stream_events(
    source: AsyncIterator[dict[str, Any]],
    *,
    keepalive_seconds: float | None = None,
    buffer: int = BUFFER_EVENTS,
    event_name: str | None = None,
) -> AsyncIterator[bytes]:
    """Turn an event iterator into SSE bytes, with keep-alives and a bounded buffer.

    ``event_name`` names every message (default: each event's type)."""
    interval = KEEPALIVE_SECONDS if keepalive_seconds is None else keepalive_seconds
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=buffer)
    producer = asyncio.create_task(_produce(source, queue), name="flowplane-sse")
    try:
        yield f"retry: {RETRY_MS}\n\n".encode()
        while True:
            if queue.empty():
                try:
                    async with asyncio.timeout(interval):
                        item = await queue.get()
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
            else:
                item = queue.get_nowait()
            # Whatever else is already queued goes out in the same write: one chunk (and one
            # trip through the middleware and the socket) for a burst instead of one each.
            chunk: list[bytes] = []
            while True:
                if item is _DONE or isinstance(item, Exception):
                    if chunk:
                        yield b"".join(chunk)
                    return
                chunk.append(format_event(item, event_name))
                if queue.empty() or len(chunk) >= COALESCE_EVENTS:
                    break
                item = queue.get_nowait()
            yield b"".join(chunk)
    finally:
        producer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await producer
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()


async def stream_batches(
    batches: AsyncIterator[Sequence[dict[str, Any]]], event_name: str | None = None
) -> AsyncIterator[bytes]:
    """Turn batches of events into SSE bytes, one chunk per batch; an empty batch (the
    source has been quiet) is a ``: keep-alive`` comment.

    No queue or task of its own: the source (the event feed) already buffers per
    subscriber, bounded, and falls back to the table when a reader is slow."""
    try:
        yield f"retry: {RETRY_MS}\n\n".encode()
        async for batch in batches:
            if not batch:
                yield b": keep-alive\n\n"
                continue
            yield b"".join([format_event(event, event_name) for event in batch])
    except Exception as exc:  # the stream ends; the client resumes by seq
        _log.warning("event stream failed: %s", exc)
    finally:
        aclose = getattr(batches, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()


def batch_stream_response(
    batches: AsyncIterator[Sequence[dict[str, Any]]], *, event_name: str | None = None
) -> StreamingResponse:
    """Return the streaming response of batches of events (see :func:`stream_batches`)."""
    return StreamingResponse(stream_batches(batches, event_name), headers=SSE_HEADERS)


def event_stream_response(
    source: AsyncIterator[dict[str, Any]],
    *,
    keepalive_seconds: float | None = None,
    event_name: str | None = None,
) -> StreamingResponse:
    """Return the streaming response of events (each named ``event_name``, or its type)."""
    return StreamingResponse(
        stream_events(source, keepalive_seconds=keepalive_seconds, event_name=event_name),
        headers=SSE_HEADERS,
    )


RAW_SEND = "flowplane.raw_send"
"""The scope key of the server's own ``send``, before any middleware wraps it (set by the
app: :func:`flowplane.api.app.create_app`)."""
_RETRY = f"retry: {RETRY_MS}\n\n".encode()
LEAVING_SECONDS = 1.0
"""How long a stream whose client has closed the connection waits for uvicorn to learn it
(its ``connection_lost`` comes a turn of the loop after the transport starts closing)."""
_KEEPALIVE = b": keep-alive\n\n"
_CYCLE_ATTRS = ("transport", "flow", "chunked_encoding", "disconnected", "response_complete")


def _uvicorn_cycle(send: Any) -> Any:
    """uvicorn's request-response cycle behind its ``send`` (httptools protocol), or
    ``None`` (another server, a logging wrapper, an in-process client)."""
    cycle = getattr(send, "__self__", None)
    if cycle is None or type(cycle).__module__ != "uvicorn.protocols.http.httptools_impl":
        return None
    if not all(hasattr(cycle, name) for name in _CYCLE_ATTRS):
        return None
    return cycle


class SocketSink:
    """A stream's socket, written directly (see the module doc): HTTP/1.1 chunks on
    uvicorn's transport, refused while uvicorn's flow control has paused writing (the
    client is slow: the transport holds at most its high-water mark and one write more) or
    once the client has gone.

    Args:
        cycle: uvicorn's request-response cycle of the stream (its response started).
        event_name: the ``event:`` of every message (default: each event's type).
        counter: counts the events written (``inc(n)``), or ``None``.
    """

    __slots__ = ("chunked", "counter", "cycle", "event_name", "flow", "keepalive", "key",
                 "transport")  # fmt: skip

    def __init__(self, cycle: Any, event_name: str | None, counter: Any = None) -> None:
        self.cycle = cycle
        self.transport = cycle.transport
        self.flow = cycle.flow
        self.chunked = bool(cycle.chunked_encoding)
        self.event_name = event_name
        self.counter = counter
        self.key: Hashable = (event_name, self.chunked)
        self.keepalive = self.frame(_KEEPALIVE)

    def frame(self, body: bytes) -> bytes:
        """``body`` as one write of the response (an HTTP/1.1 chunk when chunked)."""
        return b"%x\r\n%b\r\n" % (len(body), body) if self.chunked else body

    def encode(self, events: Sequence[dict[str, Any]]) -> bytes:
        """The SSE messages of ``events`` as one write."""
        name = self.event_name
        return self.frame(b"".join([format_event(event, name) for event in events]))

    @property
    def gone(self) -> bool:
        """Whether the client has gone."""
        return bool(self.cycle.disconnected) or self.transport.is_closing()

    def write(self, data: bytes) -> bool:
        """Write now unless the client is slow or gone (then nothing is written)."""
        if self.flow.write_paused or self.gone:
            return False
        self.transport.write(data)
        return True

    async def send(self, data: bytes) -> bool:
        """Write, waiting first while the client is slow; ``False`` once it has gone."""
        if self.flow.write_paused and not self.gone:
            await self.flow.drain()
        if self.gone:
            return False
        self.transport.write(data)
        return True


async def _counted(
    batches: AsyncIterator[Sequence[dict[str, Any]]], counter: Any
) -> AsyncIterator[Sequence[dict[str, Any]]]:
    try:
        async for batch in batches:
            if batch and counter is not None:
                counter.inc(len(batch))
            yield batch
    finally:
        aclose = getattr(batches, "aclose", None)
        if aclose is not None:
            await aclose()


class FeedStreamResponse(StreamingResponse):
    """The SSE response of batches of events (see the module doc): an event feed's
    subscription is written to the socket directly under uvicorn's httptools protocol;
    anything else goes through ``send`` as a :class:`StreamingResponse` of
    :func:`stream_batches`.

    Args:
        batches: the batches (not yet iterated): a :class:`FeedBatches`, or any source.
        event_name: the ``event:`` of every message (default: each event's type).
        gauge: counts the open streams (``inc()``/``dec()``), or ``None``.
        counter: counts the events sent (``inc(n)``), or ``None``.
    """

    def __init__(
        self,
        batches: AsyncIterator[Sequence[dict[str, Any]]],
        *,
        event_name: str | None = None,
        gauge: Any = None,
        counter: Any = None,
    ) -> None:
        super().__init__(
            stream_batches(_counted(batches, counter), event_name), headers=SSE_HEADERS
        )
        self.batches = batches
        self.event_name = event_name
        self.gauge = gauge
        self.counter = counter

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.gauge is not None:
            self.gauge.inc()
        try:
            cycle = direct_cycle(scope)
            if cycle is None or not isinstance(self.batches, FeedBatches):
                await super().__call__(scope, receive, send)
            else:
                await write_direct(
                    self.batches, cycle, receive, send, self.raw_headers,
                    self.event_name, self.counter,
                )  # fmt: skip
        finally:
            if self.gauge is not None:
                self.gauge.dec()


def direct_cycle(scope: Any) -> Any:
    """uvicorn's request-response cycle of an HTTP request whose response body may be
    written to the socket directly (:func:`write_direct`), or ``None``. Not for ``HEAD``:
    uvicorn drops a HEAD response's body itself."""
    if scope["type"] != "http" or scope.get("method") == "HEAD":
        return None
    return _uvicorn_cycle(scope.get(RAW_SEND))


async def write_direct(
    stream: FeedBatches,
    cycle: Any,
    receive: Any,
    send: Any,
    headers: list[tuple[bytes, bytes]],
    event_name: str | None,
    counter: Any,
) -> None:
    """Answer with the SSE stream of a feed subscription written to the socket: the
    response start through ``send`` (the ASGI chain: headers, metrics), then a
    :class:`SocketSink` the feed's tail writes live events to while the stream waits,
    and the stream's own writes (replays, what the sink refused, keep-alives), then the
    end through ``send``. ``counter`` counts the events written (``inc(n)``), or ``None``."""
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    sink = SocketSink(cycle, event_name, counter)
    stream.attach(sink)

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        stream.close()

    watcher = asyncio.create_task(watch(), name="flowplane-sse-disconnect")
    try:
        if await sink.send(sink.frame(_RETRY)):
            async for batch in stream:
                if not await sink.send(sink.encode(batch) if batch else sink.keepalive):
                    break
                if batch and counter is not None:
                    counter.inc(len(batch))
    except Exception as exc:  # the stream ends; the client resumes by seq
        _log.warning("event stream failed: %s", exc)
    finally:
        try:
            if sink.gone and not cycle.disconnected and not watcher.done():
                # The client closed the connection (its transport is closing) but uvicorn
                # is told a turn of the loop later: returning before that, the response
                # would be logged as left unfinished ("ASGI callable returned without
                # completing response", an ERROR line per stream a browser closes at the
                # run's end).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(LEAVING_SECONDS):
                        await asyncio.shield(watcher)
        finally:
            watcher.cancel()
            await stream.aclose()
    if not sink.gone:
        await send({"type": "http.response.body", "body": b"", "more_body": False})
