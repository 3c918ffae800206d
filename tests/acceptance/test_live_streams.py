"""Live event streams against real ``flowplane serve`` processes, with real clients.

- An SSE client drops its connection twice mid-run and resumes with ``Last-Event-ID``: the
  concatenated events equal the event table, in order.
- A WebSocket client reconnects and resubscribes with ``afterSeq``: same equality.
- Two ``serve`` processes share one PostgreSQL schema: one executes (``--workers 1``), the
  other only serves the API (``--workers 0``); the events a worker commits in one process
  reach SSE and WebSocket clients of the other through LISTEN/NOTIFY. Stopping that process
  (SIGTERM) ends its open streams at once instead of waiting out the grace period.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import serve_support
from serve_support import Serve, new_key, wait_ready
from websockets.asyncio.client import connect

from conftest import POSTGRES_URL, drop_schema, require_postgres
from flowplane.cli.server import KEEP_ALIVE_SECONDS
from flowplane.services.auth import AuthService
from flowplane.settings import Settings
from flowplane.store import reads
from flowplane.store.base import Store

STEPS = 6
SLOW_WORKFLOW = "name: slow-steps\nnodes:\n" + "".join(
    f"  - {{id: log{i}, type: util.log, params: {{message: 'step {i}'}}}}\n"
    f"  - {{id: nap{i}, type: wait.duration, params: {{duration: 150ms}}}}\n"
    for i in range(STEPS)
)
FAST_WORKFLOW = "name: fast-steps\nnodes:\n" + "".join(
    f"  - {{id: n{i}, type: util.noop}}\n" for i in range(3)
)
TERMINAL = {"RunFinished", "RunFailed", "RunCancelled", "RunTimedOut"}


START_SECONDS = 90.0  # two servers on PostgreSQL may start slowly on a busy machine


def spawn(
    base: Path, name: str, url: str, key: str, *args: str, env: dict[str, str] | None = None
) -> Serve:
    """Start ``flowplane serve`` (see :func:`ready`)."""
    more = {"FLOWPLANE_WS_HEARTBEAT_MS": "500", **(env or {})}
    return serve_support.spawn(base, url, *args, key=key, name=name, env=more)


def ready(*servers: Serve) -> None:
    """Wait until every server answers ``/readyz``."""
    wait_ready(*servers, path="/readyz", timeout=START_SECONDS)


async def launch(server: Serve, name: str = "slow-steps") -> str:
    async with httpx.AsyncClient(base_url=server.url, headers=server.headers) as c:
        listed = (await c.get("/v1/workflows")).json()["items"]
        found = [w["id"] for w in listed if w["name"] == name]
        if not found:
            doc = (
                FAST_WORKFLOW if name == "fast-steps" else SLOW_WORKFLOW.replace("slow-steps", name)
            )
            r = await c.post("/v1/workflows", content=doc, headers={"Content-Type": "text/yaml"})
            assert r.status_code == 201, r.text
            found = [r.json()["id"]]
        run = await c.post("/v1/runs", json={"workflowId": found[0]})
        assert run.status_code == 200, run.text
        run_id: str = run.json()["runId"]
        return run_id


async def table(url: str, schema: str, run_id: str) -> list[dict[str, Any]]:
    store = await Store.open(url, schema=schema, migrate=False)
    try:
        events = await store.read(lambda tx: reads.events_after(tx, run_id=run_id, limit=10_000))
        return [event.payload for event in events]
    finally:
        await store.close()


async def sse(
    server: Serve, path: str, *, last_event_id: int | None = None, take: int | None = None
) -> tuple[list[dict[str, Any]], bool]:
    """Read SSE events; stop after ``take`` (dropping the connection) or at the end.

    Returns the events and whether the server ended the stream.
    """
    headers = dict(server.headers)
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    events: list[dict[str, Any]] = []
    fields: dict[str, str] = {}
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=30) as c,
        c.stream("GET", path, headers=headers) as response,
    ):
        assert response.status_code == 200
        async for line in response.aiter_lines():
            if line == "" and "data" in fields:
                event = json.loads(fields["data"])
                assert fields["id"] == str(event["seq"])
                # A run's stream names every event "smithers" (Smithers' framing);
                # /v1/events names each by its type.
                run_stream = path.startswith("/v1/runs/")
                assert fields["event"] == ("smithers" if run_stream else event["type"])
                events.append(event)
                if take is not None and len(events) >= take:
                    return events, False  # leaving the block drops the connection
                fields = {}
            elif line and not line.startswith(":"):
                key, _, value = line.partition(": ")
                fields[key] = value
    return events, True


class Ws:
    """A connected gateway client."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next_id = 0

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self.next_id += 1
        await self.ws.send(
            json.dumps({"type": "req", "id": self.next_id, "method": method, "params": params})
        )
        while True:
            frame = json.loads(await asyncio.wait_for(self.ws.recv(), 20))
            if frame["type"] == "res" and frame["id"] == self.next_id:
                assert frame["ok"], frame
                return dict(frame["payload"])

    async def events(self, take: int | None = None) -> tuple[list[dict[str, Any]], bool]:
        """Subscription events until ``take`` or ``subscription.end``."""
        got: list[dict[str, Any]] = []
        while take is None or len(got) < take:
            frame = json.loads(await asyncio.wait_for(self.ws.recv(), 20))
            if frame["type"] != "event" or frame["event"] == "tick":
                continue
            if frame["event"] == "subscription.end":
                return got, True
            assert frame["seq"] == frame["payload"]["seq"]
            got.append(frame["payload"])
        return got, False


async def ws_session(server: Serve) -> AsyncIterator[Ws]:
    ws_url = server.url.replace("http://", "ws://") + "/v1/ws"
    async with connect(ws_url) as ws:
        client = Ws(ws)
        await client.request("connect", {"token": server.key})
        yield client


# --- one SQLite server ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def sqlite_serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Serve, str]]:
    base = tmp_path_factory.mktemp("live-sqlite")
    url = f"sqlite:///{base / 'fp.db'}"
    server = spawn(base, "serve", url, new_key(), "--workers", "1")
    ready(server)
    try:
        yield server, url
    finally:
        server.stop()


async def test_sse_drop_and_resume_equals_table(sqlite_serve: tuple[Serve, str]) -> None:
    server, url = sqlite_serve
    run_id = await launch(server)
    path = f"/v1/runs/{run_id}/events"
    first, ended = await sse(server, path, take=4)
    assert not ended
    await asyncio.sleep(0.3)  # the run goes on while nobody listens
    second, ended = await sse(server, path, last_event_id=first[-1]["seq"], take=6)
    assert not ended
    rest, ended = await sse(server, f"{path}?afterSeq={second[-1]['seq']}")
    assert ended, "the stream closes after the terminal event"
    streamed = first + second + rest
    assert streamed == await table(url, "flowplane", run_id)
    assert TERMINAL & {e["type"] for e in rest}


async def test_streams_the_client_closes_at_their_end_log_no_error(
    sqlite_serve: tuple[Serve, str],
) -> None:
    """A client that closes its stream as soon as it read the run's end (a browser's
    ``EventSource.close()``) races the server's own end of the stream: whichever comes
    first, uvicorn must not log the response as left unfinished (an ERROR line per
    stream in the operator's log)."""
    server, _url = sqlite_serve
    run_id = await launch(server, "fast-steps")
    _events, ended = await sse(server, f"/v1/runs/{run_id}/events")
    assert ended
    host, port = server.url.removeprefix("http://").split(":")
    request = (
        f"GET /v1/runs/{run_id}/events HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {server.key}\r\nAccept: text/event-stream\r\n\r\n"
    ).encode()

    async def follow_and_close(times: int) -> int:
        ends = 0
        for _ in range(times):
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(request)
            while line := await reader.readline():
                if line.startswith(b"data: ") and b"RunFinished" in line:
                    ends += 1
                    break
            writer.close()  # at once, whatever the server still sends
            await writer.wait_closed()
        return ends

    ends = await asyncio.gather(*(follow_and_close(40) for _ in range(8)))
    assert sum(ends) == 320
    await asyncio.sleep(0.5)  # the server's last disconnects logged
    log = server.log.read_text()
    assert "returned without completing response" not in log, log[-2000:]
    assert "Traceback" not in log, log[-2000:]


async def test_a_stop_under_load_does_not_wait_out_the_keep_alive(tmp_path: Path) -> None:
    """Clients start runs and follow each on a fresh connection (a browser's
    ``EventSource``), keeping the connections alive, while ``flowplane serve`` stops
    (SIGTERM): a connection accepted as uvicorn stops listening is asked to close like the
    others, so the stop does not wait out the keep-alive timeout for it (it took 5 s
    more)."""
    # Unlimited: 8 clients start and follow ~300 runs a second, past the admin's 1,200 a minute.
    unlimited = {"FLOWPLANE_RATE_LIMIT_PER_MINUTE": json.dumps({"admin": 0})}
    server = spawn(tmp_path, "serve", f"sqlite:///{tmp_path / 'fp.db'}", new_key(), env=unlimited)
    ready(server)
    try:
        workflow_run = await launch(server, "fast-steps")
        async with httpx.AsyncClient(base_url=server.url, headers=server.headers) as c:
            workflow_id = (await c.get(f"/v1/runs/{workflow_run}")).json()["workflowId"]
    except BaseException:
        server.stop()
        raise
    host, port = server.url.removeprefix("http://").split(":")
    auth = f"Host: {host}\r\nAuthorization: Bearer {server.key}\r\n"
    body = json.dumps({"workflowId": workflow_id}).encode()
    start = (
        f"POST /v1/runs HTTP/1.1\r\n{auth}Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body

    async def client() -> int:
        kept: deque[asyncio.StreamWriter] = deque()
        followed = 0
        starts, starter = await asyncio.open_connection(host, int(port))
        try:
            while True:
                try:
                    starter.write(start)
                    head = await starts.readuntil(b"\r\n\r\n")
                    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                    answer = json.loads(await starts.readexactly(length))
                    if int(head.split(b" ", 2)[1]) >= 300:  # refused: only as the server stops
                        assert stopping.is_set(), answer
                        return followed
                    run_id = answer["runId"]
                    reader, writer = await asyncio.open_connection(host, int(port))
                    writer.write(f"GET /v1/runs/{run_id}/events HTTP/1.1\r\n{auth}\r\n".encode())
                    kept.append(writer)  # kept alive, as a browser keeps it
                    while line := await reader.readline():
                        if b"RunFinished" in line:
                            break
                except (OSError, asyncio.IncompleteReadError, IndexError):
                    return followed  # the server stopped listening, or closed this one
                followed += 1
                if len(kept) > 20:
                    kept.popleft().close()
        finally:
            starter.close()
            for writer in kept:
                writer.close()

    stopping = asyncio.Event()
    clients = [asyncio.create_task(client()) for _ in range(8)]
    try:
        await asyncio.sleep(2.0)
        stopping.set()
        seconds = await asyncio.to_thread(server.stop)
        followed = await asyncio.wait_for(asyncio.gather(*clients), 30)
    finally:
        for task in clients:
            task.cancel()
        server.stop()  # (stopped already, unless something above failed)
    assert sum(followed) > 0
    assert seconds < KEEP_ALIVE_SECONDS, server.log.read_text()[-3000:]


async def test_ws_reconnect_with_after_seq_equals_table(sqlite_serve: tuple[Serve, str]) -> None:
    server, url = sqlite_serve
    run_id = await launch(server)
    streamed: list[dict[str, Any]] = []
    ended = False
    while not ended:  # a new connection each round, resuming after the last seq
        async for client in ws_session(server):
            after = streamed[-1]["seq"] if streamed else 0
            await client.request("streamRunEvents", {"runId": run_id, "afterSeq": after})
            # A few rounds (each a new connection) are enough to prove the resume; many
            # rounds only add connection set-ups, slow on a loaded machine.
            got, ended = await client.events(take=20)
            streamed += got
    assert streamed == await table(url, "flowplane", run_id)
    assert TERMINAL & {e["type"] for e in streamed}


# --- two processes on PostgreSQL ------------------------------------------------------------


async def prepare(schema: str, key: str) -> None:
    """Migrate the schema and create the admin key and JWT secret, as a first start does."""
    store = await Store.open(POSTGRES_URL, schema=schema)
    try:
        auth = AuthService(store, Settings(database_url=POSTGRES_URL, database_schema=schema))
        await auth.jwt_secret()
        await auth.bootstrap(key)
    finally:
        await store.close()


@pytest.fixture(scope="module")
def pg_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Serve, Serve, str]]:
    require_postgres()
    base = tmp_path_factory.mktemp("live-pg")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    key = new_key()
    asyncio.run(prepare(schema, key))  # so that both can start at once
    args = ("--database-schema", schema)
    executor = spawn(base / "a", "executor", POSTGRES_URL, key, *args, "--workers", "1")
    api_only = spawn(base / "b", "api", POSTGRES_URL, key, *args, "--workers", "0")
    try:
        ready(executor, api_only)
        yield api_only, executor, schema
    finally:
        for server in (api_only, executor):
            if server.proc.poll() is None:
                server.stop()
        drop_schema(schema)


async def test_events_of_another_process_stream_in_order(
    pg_pair: tuple[Serve, Serve, str],
) -> None:
    api_only, _executor, schema = pg_pair
    namespace_path = "/v1/events?namespace=default&types=RunStarted,NodeFinished,RunFinished"
    namespace_stream = asyncio.create_task(sse(api_only, namespace_path))
    run_id = await launch(api_only)  # dispatched here, executed by the other process

    async def over_ws() -> list[dict[str, Any]]:
        async for client in ws_session(api_only):
            await client.request("subscribe", {"runId": run_id, "afterSeq": 0})
            events, ended = await client.events()
            assert ended
            return events
        raise AssertionError("unreachable")

    (over_sse, ended), ws_events = await asyncio.gather(
        sse(api_only, f"/v1/runs/{run_id}/events"), over_ws()
    )
    expected = await table(POSTGRES_URL, schema, run_id)
    assert ended and over_sse == expected and ws_events == expected
    assert {e["type"] for e in expected} >= {"NodeStarted", "NodeFinished", "RunFinished"}

    # SIGTERM: the never-ending namespace stream is closed by the drain, not cut at 30 s.
    seconds = api_only.stop()
    namespace_events, namespace_ended = await asyncio.wait_for(namespace_stream, 10)
    assert seconds < 15 and namespace_ended
    mine = [e for e in namespace_events if e["runId"] == run_id]
    assert mine == [
        e for e in expected if e["type"] in {"RunStarted", "NodeFinished", "RunFinished"}
    ]
