"""The live-event gateway: the event feed, ``/v1/events`` (SSE), ``/v1/ws`` and ``/v1/rpc``.

The feed is checked on both backends against the table while producers commit
concurrently; the transports run on a real uvicorn server in a thread (SQLite) with real
clients (``websockets``, ``httpx``) over real sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from api_support import harness_settings
from fastapi import FastAPI
from runs_support import APPROVAL_WORKFLOW, free_port
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from flowplane.api import rpc
from flowplane.api.app import create_app
from flowplane.api.deps import api_routes
from flowplane.api.gateway import Connection, Gateway, GatewayConfig, drain
from flowplane.services.auth import LOCAL
from flowplane.services.caller import Caller
from flowplane.services.feed import EventFeed, namespace_filter, run_filter
from flowplane.store import reads
from flowplane.store.base import Store
from flowplane.store.tx import Tx

TERMINAL = {"RunFinished", "RunFailed", "RunCancelled", "RunTimedOut"}


# --- the feed ------------------------------------------------------------------------------


async def _produce(store: Store, namespace: str, run_id: str, count: int) -> None:
    for i in range(count):

        def append(tx: Tx, i: int = i) -> None:
            tx.event(run_id, namespace, "NodeLog", None, message=f"m{i}")

        await store.transact(append)
        if i % 7 == 0:
            await asyncio.sleep(0)


async def _table(store: Store, **filters: Any) -> list[dict[str, Any]]:
    events = await store.read(lambda tx: reads.events_after(tx, limit=100_000, **filters))
    return [event.payload for event in events]


async def test_feed_has_no_gap_and_no_duplicate(store: Store) -> None:
    """Subscribers joining mid-stream with any cursor get exactly the table's slice."""
    feed = EventFeed(store, batch=16, buffer=8)  # tiny: forces overflow and re-reads
    await _produce(store, "a", "r0", 5)
    rng = random.Random(7)

    async def subscriber(namespaces: list[str] | None, after: int, want: int) -> list[int]:
        got: list[int] = []
        async for event in feed.stream(namespace_filter(namespaces), after):
            got.append(event["seq"])
            if rng.random() < 0.1:
                await asyncio.sleep(0.01)  # a slow reader overflows its buffer
            if len(got) >= want:
                break
        return got

    producers = [asyncio.create_task(_produce(store, ns, f"r-{ns}", 40)) for ns in ("a", "b", "a")]
    await asyncio.sleep(0.02)
    subs = [
        asyncio.create_task(subscriber(["a"], 0, 85)),
        asyncio.create_task(subscriber(None, 3, 122)),
        asyncio.create_task(subscriber(["b"], 0, 40)),
    ]
    await asyncio.gather(*producers)
    results = await asyncio.wait_for(asyncio.gather(*subs), 30)
    assert results[0] == [e["seq"] for e in await _table(store, namespaces=["a"])]
    assert results[1] == [e["seq"] for e in await _table(store, after_seq=3)]
    assert results[2] == [e["seq"] for e in await _table(store, namespaces=["b"])]
    assert feed.subscribers == 0
    await feed.close()


async def test_feed_run_stream_ends_after_terminal(store: Store) -> None:
    feed = EventFeed(store)
    events = [e async for e in feed.stream(run_filter("no-such-run"), 0, until_terminal=True)]
    assert events == []  # a run that does not exist is as good as finished
    stream = feed.stream(namespace_filter(None), 0)
    waiter = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0.05)
    await feed.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiter, 5)


# --- a served app ---------------------------------------------------------------------------


@dataclass
class Served:
    """An app served by uvicorn in a thread."""

    app: FastAPI
    url: str
    admin: str
    root: Path
    loop: asyncio.AbstractEventLoop

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/v1/ws"

    def on_server(self, coro: Any, timeout: float = 20) -> Any:
        """Run a coroutine on the server's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def key(self, role: str, namespaces: list[str] | None = None) -> str:
        auth = self.app.state.services.auth
        created = self.on_server(
            auth.create_api_key(
                caller=LOCAL, name=f"k-{role}-{namespaces}", role=role, namespaces=namespaces
            )
        )
        secret: str = created.secret
        return secret

    def client(self, key: str | None = None) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.url, headers={"Authorization": f"Bearer {key or self.admin}"}, timeout=20
        )


@contextlib.contextmanager
def serving(tmp_path: Path, **overrides: Any) -> Iterator[Served]:
    db = (f"sqlite:///{tmp_path / 'fp.db'}", "flowplane")
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    settings = harness_settings(db, root, workers=1, poll_interval_seconds=0.1, **overrides)
    app = create_app(settings)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="gateway-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not (server.started and hasattr(app.state, "services")):
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    loop = server.servers[0].get_loop()
    assert settings.admin_key is not None
    try:
        yield Served(app, f"http://127.0.0.1:{port}", settings.admin_key, root, loop)
    finally:
        server.should_exit = True
        thread.join(20)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("gateway"), ws_heartbeat_ms=200) as s:
        yield s


async def rpc_call(c: httpx.AsyncClient, method: str, params: Any = None) -> httpx.Response:
    return await c.post(f"/v1/rpc/{method}", json=params if params is not None else {})


def payload(r: httpx.Response) -> Any:
    """The payload of a ``/v1/rpc`` response frame (Smithers' envelope)."""
    frame = r.json()
    assert frame["type"] == "res" and frame["ok"] is True, frame
    return frame["payload"]


def error(r: httpx.Response) -> dict[str, Any]:
    """The error of a failed ``/v1/rpc`` response frame."""
    frame = r.json()
    assert frame["type"] == "res" and frame["ok"] is False, frame
    found: dict[str, Any] = frame["error"]
    return found


async def start_approval_run(served: Served, namespace: str = "default") -> str:
    doc = APPROVAL_WORKFLOW.replace("name: needs-approval", f"name: ask-{namespace}")
    if namespace != "default":
        doc = f"namespace: {namespace}\n" + doc
    async with served.client() as c:
        created = await c.post(
            "/v1/workflows", content=doc, headers={"Content-Type": "application/yaml"}
        )
        if created.status_code == 409:
            listed = payload(await rpc_call(c, "listWorkflows", {"namespace": namespace}))
            workflow_id = next(w["id"] for w in listed["items"] if w["name"] == f"ask-{namespace}")
        else:
            assert created.status_code == 201, created.text
            workflow_id = created.json()["id"]
        r = await rpc_call(c, "launchRun", {"workflowId": workflow_id})
        assert r.status_code == 200, r.text
        run_id: str = payload(r)["runId"]
        return run_id


async def wait_status(served: Served, run_id: str, status: str) -> None:
    async with served.client() as c:
        for _ in range(200):
            if (await c.get(f"/v1/runs/{run_id}")).json()["status"] == status:
                return
            await asyncio.sleep(0.05)
    raise AssertionError(f"{run_id} never became {status}")


async def table(served: Served, run_id: str) -> list[dict[str, Any]]:
    services = served.app.state.services
    events: list[dict[str, Any]] = served.on_server(
        services.runs.events(Caller.system(), run_id, 0, 10_000)
    )
    return events


# --- RPC over HTTP ------------------------------------------------------------------------


def test_every_method_has_the_role_of_its_rest_route() -> None:
    app = create_app(harness_settings(("sqlite:///:memory:", "flowplane"), Path(".")))
    by_endpoint = {info.route.endpoint: info for info in api_routes(app)}
    for method in rpc.METHODS.values():
        assert method.endpoint in by_endpoint, method.name
        assert by_endpoint[method.endpoint].role == method.role, method.name


async def test_rpc_over_http(served: Served) -> None:
    run_id = await start_approval_run(served)
    await wait_status(served, run_id, "waiting-approval")
    viewer = served.key("viewer")
    async with served.client() as admin, served.client(viewer) as as_viewer:
        got = await rpc_call(as_viewer, "getRun", {"runId": run_id})
        assert got.status_code == 200 and payload(got)["runId"] == run_id
        listed = payload(await rpc_call(as_viewer, "listRuns", {"limit": 1}))
        assert len(listed) == 1  # Smithers' listRuns: an array
        approvals = payload(await rpc_call(as_viewer, "listApprovals", {}))["approvals"]
        assert any(a["runId"] == run_id for a in approvals)

        refused = await rpc_call(as_viewer, "cancelRun", {"runId": run_id})
        assert refused.status_code == 403 and error(refused)["code"] == "FORBIDDEN"
        unknown = await rpc_call(as_viewer, "dropTables", {})
        assert unknown.status_code == 404 and error(unknown)["code"] == "METHOD_NOT_FOUND"
        assert error(unknown)["flowplaneCode"] == "unknown_method"
        extra = await rpc_call(as_viewer, "getRun", {"runId": run_id, "verbose": True})
        assert extra.status_code == 400 and error(extra)["flowplaneCode"] == "validation_error"

        params: dict[str, Any] = {"runId": run_id, "nodeId": "ask", "approved": "true"}
        not_bool = await rpc_call(admin, "submitApproval", params)
        assert not_bool.status_code == 400, not_bool.text
        assert "approved" in error(not_bool)["message"]
        params["approved"] = True
        granted = await rpc_call(admin, "submitApproval", params)
        assert granted.status_code == 200 and payload(granted)["status"] == "approved"
        params["approved"] = False
        again = await rpc_call(admin, "submitApproval", params)
        assert again.status_code == 409 and error(again)["code"] == "AlreadyDecided"

        await wait_status(served, run_id, "finished")
        page = payload(await rpc_call(as_viewer, "streamRunEvents", {"runId": run_id}))
        assert page["events"] == await table(served, run_id)
        assert page["lastSeq"] == page["events"][-1]["seq"] and page["more"] is False


async def test_cron_methods(served: Served) -> None:
    run_id = await start_approval_run(served)
    async with served.client() as c:
        workflow_id = (await c.get(f"/v1/runs/{run_id}")).json()["workflowId"]
        made = await rpc_call(c, "cronCreate", {"workflowId": workflow_id, "cron": "0 8 * * *"})
        assert made.status_code == 200, made.text
        schedule_id = payload(made)["id"]
        listed = payload(await rpc_call(c, "cronList", {"workflowId": workflow_id}))["items"]
        assert [s["id"] for s in listed] == [schedule_id]
        started = payload(await rpc_call(c, "cronRun", {"scheduleId": schedule_id}))
        assert started["runId"]
        deleted = payload(await rpc_call(c, "cronDelete", {"scheduleId": schedule_id}))
        assert deleted == {"scheduleId": schedule_id, "deleted": True}
        gone = await rpc_call(c, "cronDelete", {"scheduleId": schedule_id})
        assert gone.status_code == 404


# --- SSE of namespaces ---------------------------------------------------------------------


async def sse_events(
    response: httpx.Response, until: Any, limit: int = 10_000
) -> list[dict[str, Any]]:
    """Parse SSE messages until ``until(events)`` is true or the stream ends."""
    events: list[dict[str, Any]] = []
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line == "":
            if "data" in fields:
                event = json.loads(fields["data"])
                assert fields["id"] == str(event["seq"]) and fields["event"] == event["type"]
                events.append(event)
                if until(events) or len(events) >= limit:
                    break
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value
    return events


async def test_namespace_stream(served: Served) -> None:
    team = served.key("viewer", ["team-a"])
    async with served.client(team) as c:
        assert (await c.get("/v1/events")).status_code == 400
        assert (await c.get("/v1/events?namespace=team-b")).status_code == 404
        url = "/v1/events?namespace=team-a&types=NodeWaitingApproval,RunFinished"
        async with c.stream("GET", url) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            other = await start_approval_run(served, "team-b")
            mine = await start_approval_run(served, "team-a")
            events = await asyncio.wait_for(sse_events(response, lambda e: len(e) >= 1), 15)
        assert [(e["type"], e["runId"]) for e in events] == [("NodeWaitingApproval", mine)]
        assert other != mine
        # Resume after that event with Last-Event-ID: the approval's events come next.
        last = str(events[-1]["seq"])
        async with served.client() as admin:
            decision = {"runId": mine, "nodeId": "ask", "approved": True}
            assert (await rpc_call(admin, "submitApproval", decision)).status_code == 200
        async with c.stream("GET", url, headers={"Last-Event-ID": last}) as response:
            rest = await asyncio.wait_for(sse_events(response, lambda e: len(e) >= 1), 15)
        assert [(e["type"], e["runId"]) for e in rest] == [("RunFinished", mine)]


# --- WebSocket ------------------------------------------------------------------------------


class WsClient:
    """A minimal client of the frame protocol."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.next_id = 0
        self.events: list[dict[str, Any]] = []
        self.ticks = 0
        self.challenge: dict[str, Any] | None = None

    async def request(self, method: str, params: Any = None) -> dict[str, Any]:
        self.next_id += 1
        frame = {"type": "req", "id": self.next_id, "method": method, "params": params or {}}
        await self.ws.send(json.dumps(frame))
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), 15))
            if message["type"] == "res" and message["id"] == self.next_id:
                return dict(message)
            self._event(message)

    def _event(self, message: dict[str, Any]) -> None:
        if message["event"] == "tick":
            self.ticks += 1
        elif message["event"] == "connect.challenge":
            self.challenge = message
        else:
            self.events.append(message)

    async def until(self, done: Any) -> None:
        while not done(self.events):
            self._event(json.loads(await asyncio.wait_for(self.ws.recv(), 15)))


@contextlib.asynccontextmanager
async def ws_client(served: Served, key: str | None = None) -> AsyncIterator[WsClient]:
    async with connect(served.ws_url) as ws:
        client = WsClient(ws)
        hello = await client.request("connect", {"token": key or served.admin})
        assert hello["ok"], hello
        yield client


def run_events(client: WsClient) -> list[dict[str, Any]]:
    return [m["payload"] for m in client.events if m["event"] != "subscription.end"]


async def test_ws_subscribe_reconnect_resume(served: Served) -> None:
    run_id = await start_approval_run(served)
    async with ws_client(served) as first:
        sub = await first.request("streamRunEvents", {"runId": run_id, "afterSeq": 0})
        assert sub["ok"] and sub["payload"]["subscription"] == "s1"
        await first.until(lambda ev: any(m["event"] == "NodeWaitingApproval" for m in ev))
        assert all(m["seq"] == m["payload"]["seq"] for m in first.events)
    seen = run_events(first)
    async with ws_client(served) as second:
        params = {"runId": run_id, "afterSeq": seen[-1]["seq"]}
        assert (await second.request("subscribe", params))["ok"]
        decision = {"runId": run_id, "nodeId": "ask", "approved": True}
        granted = await second.request("submitApproval", decision)
        assert granted["ok"] and granted["payload"]["status"] == "approved"
        await second.until(lambda ev: any(m["event"] == "subscription.end" for m in ev))
        assert second.ticks >= 0
    assert seen + run_events(second) == await table(served, run_id)
    assert TERMINAL & {e["type"] for e in run_events(second)}


async def test_ws_handshake_and_limits(served: Served) -> None:
    async with connect(served.ws_url) as ws:  # not connect first: refused
        challenge = json.loads(await ws.recv())  # every connection is challenged first
        assert challenge["event"] == "connect.challenge" and challenge["payload"]["nonce"]
        await ws.send(json.dumps({"type": "req", "id": 1, "method": "getRun", "params": {}}))
        answer = json.loads(await ws.recv())
        assert answer["ok"] is False and answer["error"]["code"] == "unauthorized"
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    async with connect(served.ws_url) as ws:
        await ws.send(json.dumps({"type": "req", "id": 1, "method": "connect", "params": {}}))
        assert json.loads(await ws.recv())["event"] == "connect.challenge"
        assert json.loads(await ws.recv())["error"]["status"] == 401
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    viewer = served.key("viewer")
    headers = {"Authorization": f"Bearer {viewer}"}
    async with connect(served.ws_url, additional_headers=headers) as ws:
        client = WsClient(ws)
        hello = await client.request("connect")
        assert hello["payload"]["principal"]["role"] == "viewer"
        assert hello["payload"]["heartbeatMs"] == 200
        bad = await client.request("submitApproval", {"runId": "x", "nodeId": "y", "approved": 1})
        assert bad["error"]["code"] == "forbidden"
        await ws.send("not json")
        answer = json.loads(await ws.recv())
        while answer["type"] == "event":
            answer = json.loads(await ws.recv())
        assert answer["error"]["code"] == "invalid_frame"
        await asyncio.sleep(0.5)
        await client.request("listWorkflows")
        assert client.ticks >= 1
        await ws.send("x" * (1024 * 1024 + 1))
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def test_ws_connection_limit_and_drain(tmp_path: Path) -> None:
    with serving(tmp_path, ws_max_connections=1) as served:

        async def slow(_services: Any, _principal: Any, _params: Any) -> Any:
            await asyncio.sleep(0.5)
            return {"slept": True}

        original = rpc.METHODS["listWorkflows"]
        rpc.METHODS["listWorkflows"] = rpc.Method(
            "listWorkflows", "viewer", rpc.PageParams, slow, original.endpoint
        )
        try:
            async with ws_client(served) as client:
                async with connect(served.ws_url) as extra:
                    with pytest.raises(ConnectionClosed) as closed:
                        await extra.recv()
                    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
                frame = {"type": "req", "id": 9, "method": "listWorkflows", "params": {}}
                await client.ws.send(json.dumps(frame))
                await asyncio.sleep(0.1)
                draining = asyncio.run_coroutine_threadsafe(drain(served.app), served.loop)
                answer = json.loads(await asyncio.wait_for(client.ws.recv(), 5))
                assert answer == {"type": "res", "id": 9, "ok": True, "payload": {"slept": True}}
                with pytest.raises(ConnectionClosed) as closed:
                    await client.ws.recv()
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
                draining.result(10)
        finally:
            rpc.METHODS["listWorkflows"] = original


class _StuckSocket:
    """A WebSocket whose client never reads: every send blocks."""

    def __init__(self) -> None:
        self.closed_with: int | None = None

    async def send_text(self, _text: str) -> None:
        await asyncio.Event().wait()

    async def receive(self) -> dict[str, Any]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def close(self, code: int, reason: str = "") -> None:
        self.closed_with = code


async def test_slow_consumer_is_disconnected() -> None:
    config = GatewayConfig(send_queue_frames=4, send_timeout_seconds=0.2, drain_seconds=0.2)
    socket = _StuckSocket()
    connection = Connection(Gateway(config), socket, services=None)  # type: ignore[arg-type]
    runner = asyncio.create_task(connection.run())
    for i in range(10):
        with contextlib.suppress(Exception):
            await connection.send({"type": "event", "event": "tick", "payload": {"i": i}})
    await asyncio.wait_for(runner, 5)
    assert socket.closed_with == 4008


async def test_metrics(served: Served) -> None:
    async with ws_client(served), served.client() as c:
        text = (await c.get("/metrics")).text
    for name in (
        "flowplane_gateway_connections 1.0",
        "flowplane_gateway_requests_total",
        "flowplane_stream_subscribers",
        "flowplane_stream_events_sent_total",
        "flowplane_approvals_requested_total",
        "flowplane_approvals_granted_total",
        "flowplane_approvals_denied_total",
        "flowplane_events_total",
    ):
        assert name in text, name


async def test_feed_replays_share_pages_and_stay_exact(store: Store) -> None:
    """Thirty subscribers catching up from nearby old cursors read each page about once
    (shared pages, joined reads) and each gets exactly the table's slice, in order."""
    for start in range(0, 1200, 300):

        def append(tx: Tx, start: int = start) -> None:
            for i in range(start, start + 300):
                tx.event("r-many", "hist", "NodeLog", None, message=f"m{i}")

        await store.transact(append)
    feed = EventFeed(store, page=100)
    table = [e["seq"] for e in await _table(store, namespaces=["hist"])]
    first = table[0] - 1
    head = table[-1]

    async def subscriber(after: int) -> list[int]:
        got: list[int] = []
        async for batch in feed.batches(namespace_filter(["hist"]), after):
            got.extend(event["seq"] for event in batch)
            if got and got[-1] >= head:
                return got
        return got

    starts = [first + i % 3 for i in range(30)]
    results = await asyncio.wait_for(asyncio.gather(*(subscriber(s) for s in starts)), 60)
    for after, got in zip(starts, results, strict=True):
        assert got == [seq for seq in table if seq > after]
    pages = len(table) // 100
    # Without sharing: 30 x 12 page reads. Subscribers from 3 cursors fall in step.
    assert feed.replay_reads <= 3 * pages, feed.replay_reads
    assert feed.pages.size <= feed.pages.max_bytes
    await feed.close()


async def test_feed_batches_keep_alive_when_quiet(store: Store) -> None:
    """An idle stream with ``idle_seconds`` yields an empty batch (the SSE keep-alive)."""
    feed = EventFeed(store, poll_seconds=0.05)
    stream = feed.batches(namespace_filter(None), await feed.head(), idle_seconds=0.2)
    assert await asyncio.wait_for(anext(stream), 5) == []
    await stream.aclose()
    await feed.close()


# --- SSE written to the socket directly (api/sse.py SocketSink) ----------------------------


def _feed_subscribers(served: Served) -> list[Any]:
    return list(served.app.state.services.feed._subscribers)


async def _until(check: Any, what: str) -> None:
    for _ in range(500):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never: {what}")


async def _open_sse(served: Served, path: str) -> tuple[Any, Any]:
    """A raw SSE client with a small receive buffer: it reads only when told to."""
    import socket as socketlib

    sock = socketlib.socket()
    sock.setsockopt(socketlib.SOL_SOCKET, socketlib.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", int(served.url.rsplit(":", 1)[1])))
    reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 24)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {served.admin}\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    await reader.readuntil(b"retry:")
    return reader, writer


class _Ids:
    """The ``id:`` of every complete SSE message read so far (chunks split anywhere)."""

    def __init__(self) -> None:
        self.seqs: list[int] = []
        self.pending = b""

    def feed(self, chunk: bytes) -> None:
        self.pending += chunk
        cut = self.pending.rfind(b"\n\n")
        if cut >= 0:
            done, self.pending = self.pending[: cut + 2], self.pending[cut + 2 :]
            self.seqs.extend(int(seq) for seq in re.findall(rb"(?:^|\n)id: (\d+)\n", done))


def _append_events(served: Served, namespace: str, count: int, size: int) -> None:
    store = served.app.state.services.store

    def append(tx: Tx) -> None:
        for i in range(count):
            tx.event("r-direct", namespace, "NodeLog", None, message=f"{i}:" + "x" * size)

    for _ in range(10):
        served.on_server(store.transact(append))


async def test_sse_slow_client_stays_bounded_and_gets_everything(served: Served) -> None:
    """A client that stops reading its namespace stream makes the server hold at most the
    socket's high-water mark plus one write, and its feed queue at most its buffer; once it
    reads again it gets every event of the namespace once and in order (it went back to the
    table). A client reading along gets everything meanwhile."""
    from flowplane.api.sse import SocketSink

    head = served.on_server(served.app.state.services.feed.head())
    path = f"/v1/events?namespace=direct-slow&afterSeq={head}"
    slow_reader, slow_writer = await _open_sse(served, path)
    fast_reader, fast_writer = await _open_sse(served, path)
    await _until(lambda: len(_feed_subscribers(served)) >= 2, "both streams subscribed")
    sinks = [s.sink for s in _feed_subscribers(served) if s.filter.namespaces == ("direct-slow",)]
    assert len(sinks) == 2 and all(isinstance(sink, SocketSink) for sink in sinks)
    fast_got = _Ids()

    async def read_fast() -> None:
        while len(fast_got.seqs) < 1000:
            chunk = await fast_reader.read(1 << 16)
            assert chunk
            fast_got.feed(chunk)

    fast = asyncio.create_task(read_fast())
    # 10 commits of 100 events of ~1 kB: 1 MB, far more than the sockets' buffers.
    await asyncio.to_thread(_append_events, served, "direct-slow", 100, 1000)
    await asyncio.wait_for(fast, 30)
    table = [e["seq"] for e in served.on_server(_namespace_table(served, "direct-slow", head))]
    assert fast_got.seqs == table
    for sub in _feed_subscribers(served):
        if sub.filter.namespaces == ("direct-slow",):
            assert len(sub.queue) <= served.app.state.services.feed.buffer
            transport = sub.sink.transport
            # uvloop's default high-water mark (64 kB) plus one write (at most 100 events).
            assert transport.get_write_buffer_size() <= 64 * 1024 + 100 * 1200
    slow_got = _Ids()
    while len(slow_got.seqs) < len(table):
        chunk = await asyncio.wait_for(slow_reader.read(1 << 16), 20)
        assert chunk
        slow_got.feed(chunk)
    assert slow_got.seqs == table
    for writer in (slow_writer, fast_writer):
        writer.close()


async def _namespace_table(served: Served, namespace: str, after: int) -> list[dict[str, Any]]:
    store = served.app.state.services.store
    return await _table(store, namespaces=[namespace], after_seq=after)


async def test_sse_client_that_leaves_is_dropped(served: Served) -> None:
    """A waiting stream whose client closes its socket leaves the feed (no write needed to
    notice it)."""
    before = len(_feed_subscribers(served))
    _reader, writer = await _open_sse(served, "/v1/events?namespace=direct-gone")
    await _until(lambda: len(_feed_subscribers(served)) == before + 1, "subscribed")
    writer.close()
    await _until(lambda: len(_feed_subscribers(served)) == before, "the stream left the feed")


async def test_run_stream_ends_after_its_terminal_event_written_directly(served: Served) -> None:
    """A run's stream (served below FastAPI's routing, api/run_stream.py) is written to
    the socket by the tail and still ends after the run's terminal event."""
    run_id = await start_approval_run(served, "direct-run")
    await wait_status(served, run_id, "waiting-approval")
    async with served.client() as c:
        async with c.stream("GET", f"/v1/runs/{run_id}/events") as response:
            got: list[str] = []
            lines = response.aiter_lines()
            async for line in lines:
                if line.startswith("data: "):
                    got.append(json.loads(line[6:])["type"])
                    if got[-1] == "NodeWaitingApproval":
                        break
            await _until(
                lambda: any(s.filter.run_id == run_id and s.waiting and s.sink is not None
                            for s in _feed_subscribers(served)),
                "the stream waits, with its socket for the tail to write to",
            )  # fmt: skip
            decision = {"runId": run_id, "nodeId": "ask", "approved": True}
            assert (await rpc_call(c, "submitApproval", decision)).status_code == 200

            async def rest() -> None:
                async for line in lines:
                    if line.startswith("data: "):
                        got.append(json.loads(line[6:])["type"])

            await asyncio.wait_for(rest(), 15)  # the stream ends by itself
    assert "RunFinished" in got
