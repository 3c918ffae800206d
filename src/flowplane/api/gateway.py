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
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import FastAPI, WebSocket
from pydantic import Field, ValidationError
from starlette.datastructures import Headers

from flowplane import __version__
from flowplane.api import gateway_methods, rpc
from flowplane.api.context import set_actor
from flowplane.api.limits import json_depth_exceeds
from flowplane.api.metrics import Metrics
from flowplane.api.security import AuthRequired, Gatekeeper, Identity, gatekeeper_of
from flowplane.errors import FlowplaneError, InvalidInput, RateLimited, Unauthorized
from flowplane.jsontext import compact
from flowplane.services.caller import Caller
from flowplane.services.container import Services
from flowplane.settings import Settings
from flowplane.timeouts import wait_for

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
    max_json_depth: int = 64

    @classmethod
    def from_settings(cls, settings: Settings) -> GatewayConfig:
        """The limits configured by ``FLOWPLANE_WS_*``."""
        return cls(
            max_connections=settings.ws_max_connections,
            max_message_bytes=settings.ws_max_message_bytes,
            heartbeat_ms=settings.ws_heartbeat_ms,
            max_json_depth=settings.max_json_depth,
        )


class ConnectParams(rpc.Params):
    """``connect``: authenticate the connection."""

    token: str | None = Field(default=None, max_length=4096)
    protocol: int = PROTOCOL
    client: dict[str, Any] | None = None


class SmithersConnect(rpc.Params):
    """``connect`` as Smithers' Gateway clients send it (unknown members are ignored)."""

    model_config = rpc.Params.model_config | {"extra": "ignore"}

    min_protocol: int = Field(ge=1, le=2**31 - 1)
    max_protocol: int = Field(ge=1, le=2**31 - 1)
    client: dict[str, Any]
    auth: dict[str, Any] | None = None
    subscribe: list[Annotated[str, Field(max_length=128)]] | None = Field(
        default=None, max_length=MAX_SUBSCRIPTIONS * 16
    )


class ProtocolUnsupported(InvalidInput):
    """The client's protocol range does not hold the gateway's."""

    code = "PROTOCOL_UNSUPPORTED"
    title = "Protocol unsupported"


def is_smithers_connect(params: Any) -> bool:
    """Whether a ``connect`` frame speaks Smithers' dialect (it negotiates a protocol)."""
    return isinstance(params, dict) and any(
        key in params for key in ("minProtocol", "maxProtocol", "auth")
    )


class UnsubscribeParams(rpc.Params):
    """``unsubscribe``: end a subscription of this connection."""

    subscription: str = Field(max_length=32)


class FrameError(InvalidInput):
    """A message that is not a request frame."""

    code = "invalid_frame"
    title = "Invalid frame"


def _dumps(frame: dict[str, Any]) -> str:
    return compact(frame)


def _response(frame_id: Any, payload: Any) -> dict[str, Any]:
    return {"type": "res", "id": frame_id, "ok": True, "payload": payload}


def _failure(frame_id: Any, exc: BaseException) -> dict[str, Any]:
    return {"type": "res", "id": frame_id, "ok": False, "error": rpc.error_body(exc)}


def parse_frame(text: str, max_depth: int = 64) -> tuple[Any, str, Any]:
    """Return ``(id, method, params)`` of a request frame; raise :class:`FrameError`.

    A frame nested deeper than ``max_depth`` (``FLOWPLANE_MAX_JSON_DEPTH``, as for HTTP
    bodies) is refused before it is parsed."""
    if json_depth_exceeds(text.encode(), max_depth):
        raise FrameError(f"a frame may nest at most {max_depth} levels", maxDepth=max_depth)
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
        self.dialect: Literal["flowplane", "smithers"] = "flowplane"
        self.followed_runs: set[str] | None = None
        self.state_version = 0
        self._event_seq = 0
        self._broadcast: asyncio.Task[None] | None = None

    def close(self, code: int, reason: str = "") -> None:
        """Start closing with ``code`` (the first call wins)."""
        if not self._closed.is_set():
            self._close_code, self._close_reason = code, reason
            self._closed.set()

    async def run(self) -> None:
        """Serve the connection until it closes; in-flight requests finish first."""
        challenge = {"nonce": uuid.uuid4().hex, "ts": int(time.time() * 1000)}
        with contextlib.suppress(SlowConsumer):  # then the connection is closing already
            await self.send(self.event_frame("connect.challenge", challenge))
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
        for extra in (self._ticker, self._broadcast):
            if extra is not None:
                tasks.append(extra)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if not (self._disconnected or self._dropping):
            with contextlib.suppress(TimeoutError):
                await wait_for(self._queue.join(), drain)
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
            await wait_for(self._queue.put(text), self.config.send_timeout_seconds)
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

    def event_frame(
        self, event: str, payload: Any, state_version: int | None = None
    ) -> dict[str, Any]:
        """A Smithers event frame: ``seq`` counts this connection's events, ``stateVersion``
        is global (the newest Flowplane event ``seq`` it reflects)."""
        self._event_seq += 1
        if state_version is not None:
            self.state_version = max(self.state_version, state_version)
        return {
            "type": "event",
            "event": event,
            "payload": payload,
            "seq": self._event_seq,
            "stateVersion": self.state_version if state_version is None else state_version,
        }

    async def _tick(self) -> None:
        interval = self.config.heartbeat_ms / 1000
        with contextlib.suppress(SlowConsumer):
            while True:
                await asyncio.sleep(interval)
                tick = {"ts": int(time.time() * 1000)}
                if self.dialect == "smithers":
                    await self.send(self.event_frame("tick", tick))
                else:
                    await self.send({"type": "event", "event": "tick", "payload": tick})

    # --- receiving ----------------------------------------------------------------------

    async def _read_loop(self) -> None:
        try:
            while True:
                timeout = self.config.handshake_seconds if self.principal is None else None
                try:
                    message = await wait_for(self.websocket.receive(), timeout)
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

    def _failure(self, frame_id: Any, exc: BaseException) -> dict[str, Any]:
        if self.dialect == "smithers":
            error = gateway_methods.error_body(exc)
            return {"type": "res", "id": frame_id, "ok": False, "error": error}
        return _failure(frame_id, exc)

    async def _dispatch(self, text: str) -> bool:
        """Handle one message; return whether to keep reading."""
        try:
            frame_id, method, params = parse_frame(text, self.config.max_json_depth)
        except FrameError as exc:
            await self.send(self._failure(exc.extra.pop("id", None), exc))
            return True
        if self.principal is None:
            return await self._connect(frame_id, method, params)
        if method == "connect":
            await self.send(self._failure(frame_id, InvalidInput("already connected")))
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
        if is_smithers_connect(params):
            return await self._connect_smithers(frame_id, params)
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

    async def _identify(self, token: Any) -> Identity:
        authenticator = gatekeeper_of(self.websocket.app).authenticator
        if isinstance(token, str) and token:
            return await authenticator.identify_credential(token)
        if token is not None:
            raise AuthRequired("auth.token must be a string")
        return await authenticator.identify(Headers(scope=self.websocket.scope))

    async def _connect_smithers(self, frame_id: Any, params: dict[str, Any]) -> bool:
        """Smithers' handshake: negotiate the protocol, authenticate, answer ``hello``."""
        self.dialect = "smithers"
        try:
            try:
                hello = SmithersConnect.model_validate(params)
            except ValidationError as exc:
                raise rpc.params_error(exc) from None
            protocol = gateway_methods.PROTOCOL
            if not hello.min_protocol <= protocol <= hello.max_protocol:
                raise ProtocolUnsupported(
                    f"Gateway protocol {protocol} is not supported by the client"
                )
            identity = await self._identify((hello.auth or {}).get("token"))
        except FlowplaneError as exc:
            await self.send(self._failure(frame_id, exc))
            if isinstance(exc, Unauthorized):
                self.close(CLOSE_UNAUTHORIZED, "invalid or missing credentials")
                return False
            return True
        principal = identity.principal
        services = self.services
        try:
            head = await services.feed.head()
            self.state_version = head
            active = await services.runs.list_runs(
                principal, statuses=list(gateway_methods.ACTIVE_RUN), limit=1000
            )
            approvals = await gateway_methods.call(services, principal, "approvals.list", {})
        except FlowplaneError as exc:
            await self.send(self._failure(frame_id, exc))
            return True
        self.identity, self.principal = identity, principal
        if hello.subscribe is not None:
            self.followed_runs = set(hello.subscribe)
        payload = {
            "protocol": protocol,
            "features": list(gateway_methods.FEATURES),
            "policy": {"heartbeatMs": self.config.heartbeat_ms},
            "auth": {
                "sessionToken": uuid.uuid4().hex,
                "role": principal.role,
                "scopes": gateway_methods.scopes_of(principal),
                "userId": principal.name,
            },
            "snapshot": {
                "runs": [gateway_methods.run_row(run) for run in active.items],
                "approvals": approvals,
                "stateVersion": head,
            },
            "server": {"name": "flowplane", "version": __version__},
            "limits": {
                "maxMessageBytes": self.config.max_message_bytes,
                "maxInflight": self.config.max_inflight,
            },
            "methods": sorted([*gateway_methods.METHODS, *gateway_methods.ALIASES]),
        }
        await self.send(_response(frame_id, payload))
        self._ticker = asyncio.create_task(self._tick(), name="flowplane-ws-tick")
        self._broadcast = asyncio.create_task(self._broadcast_events(head), name="flowplane-ws-bc")
        return True

    def follows(self, run_id: Any) -> bool:
        """Whether this Smithers connection gets the events of ``run_id``."""
        if not isinstance(run_id, str) or not self.followed_runs:
            return True
        return run_id in self.followed_runs

    def follow(self, run_id: str) -> None:
        """Add a run to the runs this connection follows (Smithers' auto-subscribe)."""
        if self.followed_runs is None:
            self.followed_runs = set()
        self.followed_runs.add(run_id)

    async def _broadcast_events(self, after: int) -> None:
        """Send every event of the runs the caller can see (and this connection follows),
        under Smithers' names, from ``after`` on."""
        assert self.principal is not None
        feed = self.services.feed
        try:
            event_filter = feed.for_namespaces(self.principal, ["*"])
        except FlowplaneError:
            return  # a caller that sees no namespace sees no event
        source = feed.stream(event_filter, after)
        tracked = source
        if self.gateway.metrics is not None:
            tracked = self.gateway.metrics.track_stream(source, "ws")
        try:
            async for event in tracked:
                mapped = gateway_methods.smithers_event(event)
                if mapped is None or not self.follows(mapped[1].get("runId")):
                    self.state_version = max(self.state_version, event["seq"])
                    continue
                await self.send(self.event_frame(mapped[0], mapped[1], event["seq"]))
        except SlowConsumer:
            return
        finally:
            for stream in (tracked, source):
                aclose = getattr(stream, "aclose", None)
                if aclose is not None:
                    with contextlib.suppress(Exception):
                        await aclose()

    async def _handle_smithers(self, frame_id: Any, method: str, params: Any) -> None:
        assert self.principal is not None
        metrics = self.gateway.metrics
        outcome = "ok"
        try:
            await self._take_token()
            run_id = gateway_methods.new_run_id(method, params)
            if run_id is not None:
                self.follow(run_id)
            payload = await gateway_methods.call(self.services, self.principal, method, params)
            if isinstance(payload, rpc.StreamSpec):
                await self._subscribe_smithers(frame_id, payload)
                return
            found = gateway_methods.resolve(method)
            if found is not None and found.subscribes and isinstance(payload, dict):
                started = payload.get("runId")
                if isinstance(started, str):
                    self.follow(started)
        except Exception as exc:
            outcome = gateway_methods.error_code(exc)[0]
            if not isinstance(exc, FlowplaneError):
                _log.exception("gateway method %s failed", method[:64])
            await self.send(self._failure(frame_id, exc))
            return
        finally:
            if metrics is not None:
                label = method if gateway_methods.resolve(method) is not None else "<unknown>"
                metrics.gateway_requests.labels(label, outcome).inc()
        await self.send(_response(frame_id, payload))

    async def _subscribe_smithers(self, frame_id: Any, spec: rpc.StreamSpec) -> None:
        """A stream method on a Smithers connection: ``{streamId, runId, afterSeq,
        currentSeq}``, then ``run.event`` frames (``{streamId, runId, seq, event,
        payload}``, the event under its Smithers name when it has one)."""
        if len(self.subscriptions) >= self.config.max_subscriptions:
            limit = self.config.max_subscriptions
            raise InvalidInput(f"at most {limit} subscriptions per connection")
        self._next_subscription += 1
        sid = f"s{self._next_subscription}"
        feed = self.services.feed
        source = feed.stream(spec.filter, spec.after_seq, until_terminal=spec.until_terminal)
        answer = {
            "streamId": sid,
            "runId": spec.filter.run_id,
            "afterSeq": spec.after_seq,
            "currentSeq": await feed.head(),
        }
        await self.send(_response(frame_id, answer))
        self.subscriptions[sid] = asyncio.create_task(self._pump_smithers(sid, spec, source))

    async def _pump_smithers(
        self, sid: str, spec: rpc.StreamSpec, source: AsyncIterator[dict[str, Any]]
    ) -> None:
        run_id = spec.filter.run_id
        try:
            async for event in source:
                mapped = gateway_methods.smithers_event(event)
                name, payload = mapped if mapped is not None else (event["type"], event)
                body = {
                    "streamId": sid,
                    "runId": event.get("runId", run_id),
                    "seq": event["seq"],
                    "event": name,
                    "payload": payload,
                }
                await self.send(self.event_frame("run.event", body, event["seq"]))
        except SlowConsumer:
            return
        except FlowplaneError as exc:
            error = gateway_methods.error_body(exc)
            with contextlib.suppress(SlowConsumer):
                body = {"streamId": sid, "runId": run_id, "error": error}
                await self.send(self.event_frame("run.error", body))
        finally:
            self.subscriptions.pop(sid, None)
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()

    async def _handle(self, frame_id: Any, method: str, params: Any) -> None:
        assert self.principal is not None and self.identity is not None
        principal = self.principal
        set_actor(principal.name, principal.kind, principal.id)
        if self.dialect == "smithers":
            with contextlib.suppress(SlowConsumer):
                await self._handle_smithers(frame_id, method, params)
            return
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
                    "stateVersion": event["seq"],
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
