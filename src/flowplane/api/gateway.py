"""The WebSocket gateway at ``/v1/ws``: RPC requests, live event subscriptions, heartbeats.

Frames are JSON text messages (see ``docs/events.md``)::

    client -> server  {"type": "req", "id": 1, "method": "getRun", "params": {...}}
    server -> client  {"type": "res", "id": 1, "ok": true, "payload": {...}}
                      {"type": "res", "id": 1, "ok": false, "error": {"code", "message", ...}}
                      {"type": "event", "event": "NodeFinished", "payload": {...}, "seq": 42,
                       "subscription": "s1"}
                      {"type": "event", "event": "tick", "payload": {"ts": ...}}

The first request must be ``connect`` (``params.token``: an API key or login JWT; or none
when the upgrade request carried ``Authorization`` / ``X-API-Key``). Then any method of
:data:`flowplane.api.rpc.METHODS`, plus ``unsubscribe``. Every method checks the role of the
REST route it mirrors.

Limits: ``ws_max_connections`` per process (more are closed with 1013), messages over
``ws_max_message_bytes`` close the connection (1009), at most :data:`MAX_INFLIGHT` requests
run at once per connection (the reader waits), and frames to the client go through a
bounded queue: a client that leaves it full for :data:`SEND_TIMEOUT_SECONDS` is closed with
4008 (it reconnects and resumes its subscriptions with ``afterSeq``). A subscription never
holds more than the event feed's bounded buffer; behind that, the table is the buffer.

Shutdown (:func:`drain`): new connections are refused (1012), in-flight requests finish and
their responses are flushed, then every connection closes with 1012 "service restart".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, WebSocket
from pydantic import Field, ValidationError
from starlette.datastructures import Headers

from flowplane import __version__
from flowplane.api import rpc
from flowplane.api.context import set_actor
from flowplane.api.metrics import Metrics
from flowplane.api.security import AuthRequired, Gatekeeper, Identity, gatekeeper_of
from flowplane.errors import FlowplaneError, InvalidInput, RateLimited
from flowplane.services.caller import Caller
from flowplane.services.container import Services
from flowplane.settings import Settings

PROTOCOL = 1
"""The frame protocol version (``connect`` answers it)."""
HANDSHAKE_SECONDS = 10.0
"""Time a new connection has to send ``connect``."""
SEND_QUEUE_FRAMES = 256
"""Frames waiting for a slow client before the sender waits."""
SEND_TIMEOUT_SECONDS = 10.0
"""How long the send queue may stay full before the client is disconnected (4008)."""
MAX_INFLIGHT = 16
"""Requests of one connection running at once."""
MAX_SUBSCRIPTIONS = 64
"""Live subscriptions per connection."""
DRAIN_SECONDS = 10.0
"""How long shutdown waits for in-flight requests and unsent frames."""
MAX_ID_CHARS = 128

CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_RESTART = 1012
CLOSE_TRY_LATER = 1013
CLOSE_UNAUTHORIZED = 4401
CLOSE_SLOW_CONSUMER = 4008

_log = logging.getLogger("flowplane.gateway")


@dataclass(frozen=True)
class GatewayConfig:
    """The gateway's limits (see the module docstring)."""

    max_connections: int = 1000
    max_message_bytes: int = 1024 * 1024
    heartbeat_ms: int = 15_000
    send_queue_frames: int = SEND_QUEUE_FRAMES
    send_timeout_seconds: float = SEND_TIMEOUT_SECONDS
    max_inflight: int = MAX_INFLIGHT
    max_subscriptions: int = MAX_SUBSCRIPTIONS
    handshake_seconds: float = HANDSHAKE_SECONDS
    drain_seconds: float = DRAIN_SECONDS

    @classmethod
    def from_settings(cls, settings: Settings) -> GatewayConfig:
        """The limits configured by ``FLOWPLANE_WS_*``."""
        return cls(
            max_connections=settings.ws_max_connections,
            max_message_bytes=settings.ws_max_message_bytes,
            heartbeat_ms=settings.ws_heartbeat_ms,
        )


class ConnectParams(rpc.Params):
    """``connect``: authenticate the connection."""

    token: str | None = Field(default=None, max_length=4096)
    protocol: int = PROTOCOL
    client: dict[str, Any] | None = None


class UnsubscribeParams(rpc.Params):
    """``unsubscribe``: end a subscription of this connection."""

    subscription: str = Field(max_length=32)


class FrameError(InvalidInput):
    """A message that is not a request frame."""

    code = "invalid_frame"
    title = "Invalid frame"


def _dumps(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"), default=str)


def _response(frame_id: Any, payload: Any) -> dict[str, Any]:
    return {"type": "res", "id": frame_id, "ok": True, "payload": payload}


def _failure(frame_id: Any, exc: BaseException) -> dict[str, Any]:
    return {"type": "res", "id": frame_id, "ok": False, "error": rpc.error_body(exc)}


def parse_frame(text: str) -> tuple[Any, str, Any]:
    """Return ``(id, method, params)`` of a request frame; raise :class:`FrameError`."""
    try:
        frame = json.loads(text)
    except ValueError:
        raise FrameError("not JSON") from None
    if not isinstance(frame, dict):
        raise FrameError("a frame is a JSON object")
    frame_id = frame.get("id")
    if isinstance(frame_id, bool) or not isinstance(frame_id, str | int):
        raise FrameError("id must be a string or an integer")
    if isinstance(frame_id, str) and len(frame_id) > MAX_ID_CHARS:
        raise FrameError(f"id is limited to {MAX_ID_CHARS} characters")
    if frame.get("type") != "req":
        raise FrameError('type must be "req"', id=frame_id)
    method = frame.get("method")
    if not isinstance(method, str) or not method:
        raise FrameError("method must be a string", id=frame_id)
    params = frame.get("params", {})
    if params is not None and not isinstance(params, dict):
        raise FrameError("params must be an object", id=frame_id)
    return frame_id, method, params


class SlowConsumer(Exception):
    """The client left its send queue full for too long."""


class Connection:
    """One WebSocket client: a reader, a writer with a bounded queue, tasks per request.

    Args:
        gateway: the owning gateway.
        websocket: the accepted socket.
        services: the app's services.
    """

    def __init__(self, gateway: Gateway, websocket: WebSocket, services: Services) -> None:
        self.gateway = gateway
        self.config = gateway.config
        self.websocket = websocket
        self.services = services
        self.principal: Caller | None = None
        self.identity: Identity | None = None
        self.subscriptions: dict[str, asyncio.Task[None]] = {}
        self.finished = asyncio.Event()
        self._queue: asyncio.Queue[str] = asyncio.Queue(maxsize=self.config.send_queue_frames)
        self._inflight: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(self.config.max_inflight)
        self._closed = asyncio.Event()
        self._close_code = CLOSE_NORMAL
        self._close_reason = ""
        self._disconnected = False
        self._dropping = False
        self._ticker: asyncio.Task[None] | None = None
        self._next_subscription = 0

    def close(self, code: int, reason: str = "") -> None:
        """Start closing with ``code`` (the first call wins)."""
        if not self._closed.is_set():
            self._close_code, self._close_reason = code, reason
            self._closed.set()

    async def run(self) -> None:
        """Serve the connection until it closes; in-flight requests finish first."""
        reader = asyncio.create_task(self._read_loop(), name="flowplane-ws-read")
        writer = asyncio.create_task(self._write_loop(), name="flowplane-ws-write")
        try:
            await self._closed.wait()
        finally:
            reader.cancel()
            await self._finish(reader, writer)

    async def _finish(self, reader: asyncio.Task[None], writer: asyncio.Task[None]) -> None:
        drain = self.config.drain_seconds
        if self._inflight:
            # Drain: requests already accepted run to the end (their effects are committed
            # or not, never half-cancelled); their answers go out if the client is there.
            _done, pending = await asyncio.wait(set(self._inflight), timeout=drain)
            for task in pending:
                task.cancel()
        tasks: list[asyncio.Task[None]] = [reader, *self.subscriptions.values()]
        if self._ticker is not None:
            tasks.append(self._ticker)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if not (self._disconnected or self._dropping):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), drain)
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        if not self._disconnected:
            with contextlib.suppress(Exception):
                await self.websocket.close(self._close_code, self._close_reason)

    # --- sending ------------------------------------------------------------------------

    async def send(self, frame: dict[str, Any]) -> None:
        """Queue a frame; raise :class:`SlowConsumer` when the queue stays full too long."""
        if self._disconnected or self._dropping:
            raise SlowConsumer("the connection is gone")
        text = _dumps(frame)
        try:
            self._queue.put_nowait(text)
            return
        except asyncio.QueueFull:
            pass
        try:
            await asyncio.wait_for(self._queue.put(text), self.config.send_timeout_seconds)
        except TimeoutError:
            self._dropping = True
            self.close(CLOSE_SLOW_CONSUMER, "slow consumer: resume with afterSeq")
            raise SlowConsumer("send queue full") from None

    async def _write_loop(self) -> None:
        while True:
            text = await self._queue.get()
            try:
                await self.websocket.send_text(text)
            except Exception:
                self._disconnected = True
                self.close(CLOSE_NORMAL)
                return
            finally:
                self._queue.task_done()

    async def _tick(self) -> None:
        interval = self.config.heartbeat_ms / 1000
        with contextlib.suppress(SlowConsumer):
            while True:
                await asyncio.sleep(interval)
                tick = {"ts": int(time.time() * 1000)}
                await self.send({"type": "event", "event": "tick", "payload": tick})

    # --- receiving ----------------------------------------------------------------------

    async def _read_loop(self) -> None:
        try:
            while True:
                timeout = self.config.handshake_seconds if self.principal is None else None
                try:
                    message = await asyncio.wait_for(self.websocket.receive(), timeout)
                except TimeoutError:
                    self.close(CLOSE_POLICY, "send connect first")
                    return
                if message["type"] == "websocket.disconnect":
                    self._disconnected = True
                    self.close(int(message.get("code") or CLOSE_NORMAL))
                    return
                text: str | None = message.get("text")
                data: bytes | None = message.get("bytes")
                size = len(text.encode()) if text is not None else len(data or b"")
                if size > self.config.max_message_bytes:
                    limit = self.config.max_message_bytes
                    self.close(CLOSE_TOO_BIG, f"messages are limited to {limit} bytes")
                    return
                if text is None:
                    text = (data or b"").decode("utf-8", errors="replace")
                if not await self._dispatch(text):
                    return
        except SlowConsumer:
            return

    async def _dispatch(self, text: str) -> bool:
        """Handle one message; return whether to keep reading."""
        try:
            frame_id, method, params = parse_frame(text)
        except FrameError as exc:
            await self.send(_failure(exc.extra.pop("id", None), exc))
            return True
        if self.principal is None:
            return await self._connect(frame_id, method, params)
        if method == "connect":
            await self.send(_failure(frame_id, InvalidInput("already connected")))
            return True
        await self._slots.acquire()
        task = asyncio.create_task(self._handle(frame_id, method, params), name=f"ws-{method}")
        self._inflight.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self._inflight.discard(finished)
            self._slots.release()

        task.add_done_callback(done)
        return True

    async def _connect(self, frame_id: Any, method: str, params: Any) -> bool:
        if method != "connect":
            error = AuthRequired("the first request must be connect")
            await self.send(_failure(frame_id, error))
            self.close(CLOSE_POLICY, "connect first")
            return False
        try:
            try:
                hello = ConnectParams.model_validate(params or {})
            except ValidationError as exc:
                raise rpc.params_error(exc) from None
            authenticator = gatekeeper_of(self.websocket.app).authenticator
            if hello.token is not None:
                identity = await authenticator.identify({"authorization": f"Bearer {hello.token}"})
            else:
                identity = await authenticator.identify(Headers(scope=self.websocket.scope))
        except FlowplaneError as exc:
            await self.send(_failure(frame_id, exc))
            if exc.status == 401:
                self.close(CLOSE_UNAUTHORIZED, "invalid or missing credentials")
                return False
            return True
        self.identity, self.principal = identity, identity.principal
        principal = identity.principal
        payload = {
            "protocol": PROTOCOL,
            "server": {"name": "flowplane", "version": __version__},
            "principal": {
                "name": principal.name,
                "kind": principal.kind,
                "role": principal.role,
                "namespaces": principal.namespaces,
            },
            "heartbeatMs": self.config.heartbeat_ms,
            "limits": {
                "maxMessageBytes": self.config.max_message_bytes,
                "maxInflight": self.config.max_inflight,
                "maxSubscriptions": self.config.max_subscriptions,
            },
            "methods": sorted([*rpc.METHODS, "unsubscribe"]),
        }
        await self.send(_response(frame_id, payload))
        self._ticker = asyncio.create_task(self._tick(), name="flowplane-ws-tick")
        return True

    async def _handle(self, frame_id: Any, method: str, params: Any) -> None:
        assert self.principal is not None and self.identity is not None
        principal = self.principal
        set_actor(principal.name, principal.kind, principal.id)
        with contextlib.suppress(SlowConsumer):
            try:
                await self._take_token()
                if method == "unsubscribe":
                    payload = self._unsubscribe(params)
                else:
                    result = await rpc.call(
                        self.services, principal, method, params, self.gateway.metrics
                    )
                    if isinstance(result, rpc.StreamSpec):
                        await self._subscribe(frame_id, result)
                        return
                    payload = result
            except Exception as exc:
                await self.send(_failure(frame_id, exc))
                return
            await self.send(_response(frame_id, payload))

    async def _take_token(self) -> None:
        gatekeeper = getattr(self.websocket.app.state, "gatekeeper", None)
        assert self.identity is not None
        if isinstance(gatekeeper, Gatekeeper):
            limiter = gatekeeper.rate_limiter
            decision = await limiter.take_async(
                self.identity.bucket, self.identity.rate_limit_per_minute
            )
            if decision is not None and not decision.allowed:
                raise RateLimited("rate limit exceeded", retryAfterMs=decision.retry_after_ms)

    # --- subscriptions ------------------------------------------------------------------

    async def _subscribe(self, frame_id: Any, spec: rpc.StreamSpec) -> None:
        if len(self.subscriptions) >= self.config.max_subscriptions:
            limit = self.config.max_subscriptions
            raise InvalidInput(f"at most {limit} subscriptions per connection")
        self._next_subscription += 1
        sid = f"s{self._next_subscription}"
        feed = self.services.feed
        source = feed.stream(spec.filter, spec.after_seq, until_terminal=spec.until_terminal)
        # The answer goes out before the subscription's first event.
        await self.send(_response(frame_id, {"subscription": sid, "afterSeq": spec.after_seq}))
        self.subscriptions[sid] = asyncio.create_task(self._pump(sid, source, spec.after_seq))

    async def _pump(self, sid: str, source: AsyncIterator[dict[str, Any]], after: int) -> None:
        last, reason = after, "end"
        tracked = source
        if self.gateway.metrics is not None:
            tracked = self.gateway.metrics.track_stream(source, "ws")
        try:
            async for event in tracked:
                frame = {
                    "type": "event",
                    "event": event["type"],
                    "payload": event,
                    "seq": event["seq"],
                    "subscription": sid,
                }
                await self.send(frame)
                last = event["seq"]
            if self.gateway.closing:
                reason = "shutdown"
        except SlowConsumer:
            return
        except FlowplaneError as exc:
            reason = exc.code
        finally:
            self.subscriptions.pop(sid, None)
            for stream in (tracked, source):
                aclose = getattr(stream, "aclose", None)
                if aclose is not None:
                    with contextlib.suppress(Exception):
                        await aclose()
        end = {"subscription": sid, "lastSeq": last, "reason": reason}
        with contextlib.suppress(SlowConsumer):
            await self.send({"type": "event", "event": "subscription.end", "payload": end})

    def _unsubscribe(self, params: Any) -> dict[str, Any]:
        try:
            request = UnsubscribeParams.model_validate(params or {})
        except ValidationError as exc:
            raise rpc.params_error(exc) from None
        task = self.subscriptions.pop(request.subscription, None)
        if task is not None:
            task.cancel()
        return {"subscription": request.subscription, "removed": task is not None}


class Gateway:
    """The app's WebSocket connections: admission, metrics and drain.

    Args:
        config: the limits.
        metrics: the app's metrics (``None``: not counted).
    """

    def __init__(self, config: GatewayConfig, metrics: Metrics | None = None) -> None:
        self.config = config
        self.metrics = metrics
        self.connections: set[Connection] = set()
        self.closing = False
        if metrics is not None:
            metrics.gateway_connections.set_function(lambda: len(self.connections))

    async def serve(self, websocket: WebSocket, services: Services) -> None:
        """Run one WebSocket connection from upgrade to close."""
        await websocket.accept()
        if self.closing:
            await websocket.close(CLOSE_RESTART, "server shutting down")
            return
        if len(self.connections) >= self.config.max_connections:
            await websocket.close(CLOSE_TRY_LATER, "too many connections")
            return
        connection = Connection(self, websocket, services)
        self.connections.add(connection)
        try:
            await connection.run()
        finally:
            self.connections.discard(connection)
            connection.finished.set()

    async def drain(self, timeout: float | None = None) -> None:
        """Refuse new connections, finish in-flight requests, close everyone with 1012."""
        self.closing = True
        connections = list(self.connections)
        for connection in connections:
            connection.close(CLOSE_RESTART, "server shutting down")
        waits = [asyncio.create_task(c.finished.wait()) for c in connections]
        if waits:
            _done, pending = await asyncio.wait(
                waits, timeout=self.config.drain_seconds + 1 if timeout is None else timeout
            )
            for task in pending:
                task.cancel()


def gateway_of(app: FastAPI, services: Services) -> Gateway:
    """The app's gateway (built on first use)."""
    gateway = getattr(app.state, "gateway", None)
    if not isinstance(gateway, Gateway):
        gateway = Gateway(
            GatewayConfig.from_settings(services.settings), getattr(app.state, "metrics", None)
        )
        app.state.gateway = gateway
    return gateway


async def drain(app: FastAPI, timeout: float | None = None) -> None:
    """Shut the app's live traffic down: WebSocket connections, then every event stream.

    ``flowplane serve`` calls it before uvicorn closes connections, so in-flight requests
    finish and stream clients get a clean end (they resume by ``seq`` elsewhere).
    """
    gateway = getattr(app.state, "gateway", None)
    if isinstance(gateway, Gateway):
        await gateway.drain(timeout)
    services: Services | None = getattr(app.state, "services", None)
    if services is not None:
        await services.feed.close()
