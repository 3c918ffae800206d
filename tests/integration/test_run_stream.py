"""A run's event stream, served below FastAPI (:mod:`flowplane.api.run_stream`) and started
from what the event feed's tail saw of the run (:mod:`flowplane.services.feed_runs`), and a
start that follows its run in one request (``POST /v1/runs`` with ``Accept:
text/event-stream``). Both backends.

* The same stream requests go to the app and to the same app without the shortcut (the
  route answers), on one database: statuses, headers, bodies and the metrics' samples
  must be the same, for the requests the shortcut answers and those it leaves to the route.
* Streams opened right after their runs started (from the feed's recent runs, no table
  read) and a start that follows its run hold every event of the run, once, in order.
* A client that leaves a live stream ends it (the feed forgets the subscriber).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from runs_support import (
    ADMIN,
    APPROVAL_WORKFLOW,
    EXECUTOR,
    LOG_WORKFLOW,
    OTHER_NS,
    VIEWER,
    Api,
    fast_settings,
    served,
    started_api,
)

from flowplane.api.app import create_app
from flowplane.api.run_stream import RunStreamShortcut
from flowplane.client import AsyncClient
from flowplane.errors import FlowplaneError
from flowplane.services.feed import namespace_filter, run_filter

# The rate limit's remaining count depends on the requests each app served before.
SKIPPED_HEADERS = {"x-request-id", "content-length", "ratelimit"}
SSE_HEADERS = {
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    "connection": "keep-alive",
    "x-accel-buffering": "no",
    "x-content-type-options": "nosniff",
}
NOOP_WORKFLOW = "name: three-noops\nnodes:\n" + "".join(
    f"  - {{id: n{i}, type: util.noop}}\n" for i in range(3)
)
STREAM_SAMPLES = (
    'flowplane_http_requests_total{method="GET",route="/v1/runs/{run_id}/events"',
    "flowplane_stream_",
)


@pytest.fixture
async def api(db: tuple[str, str], tmp_path: Path) -> AsyncIterator[Api]:
    root = tmp_path / "root"
    root.mkdir()
    async with started_api(db, root) as started:
        yield started


def _seqs(text: str) -> list[int]:
    return [int(line[4:]) for line in text.splitlines() if line.startswith("id: ")]


def _types(text: str) -> list[str]:
    import json

    return [json.loads(line[6:])["type"] for line in text.splitlines() if line.startswith("data: ")]


async def _table_seqs(api: Api, run_id: str) -> list[int]:
    events = await api.app.state.services.feed.read(run_filter(run_id), 0, 10_000)
    return [event["seq"] for event in events]


def _shortcut_of(app: Any) -> RunStreamShortcut:
    layer = app.middleware_stack
    while not isinstance(layer, RunStreamShortcut):
        layer = layer.app
    return layer


async def _play(
    app: Any, keys: dict[str, str], requests: list[tuple[str | None, str, dict[str, str]]]
) -> list[tuple[int, list[tuple[str, str]], str]]:
    shapes: list[tuple[int, list[tuple[str, str]], str]] = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://flowplane") as client:
        for key, url, headers in requests:
            auth = {"Authorization": f"Bearer {keys[key]}"} if key else {}
            response = await client.get(url, headers={**auth, **headers})
            kept = [(k, v) for k, v in response.headers.items() if k not in SKIPPED_HEADERS]
            shapes.append((response.status_code, kept, response.text))
        metrics = await client.get("/metrics", headers={"Authorization": f"Bearer {keys[ADMIN]}"})
    samples = sorted(
        line
        for line in metrics.text.splitlines()
        if line.startswith(STREAM_SAMPLES) and "_created" not in line
    )
    shapes.append((0, [], "\n".join(samples)))
    return shapes


async def test_shortcut_answers_as_the_route(api: Api, db: tuple[str, str]) -> None:
    finished = await api.dispatch_file("logs.yaml", LOG_WORKFLOW, {"who": "ann"})
    cancelled = await api.dispatch_file("approval.yaml", APPROVAL_WORKFLOW)
    await api.wait_status(finished, "finished")
    await api.wait_status(cancelled, "waiting-approval")
    await api.http.post(f"/v1/runs/{cancelled}/cancel", headers=api.headers())
    seqs = await _table_seqs(api, finished)
    url = f"/v1/runs/{finished}/events"
    requests: list[tuple[str | None, str, dict[str, str]]] = [
        (VIEWER, url, {}),
        (VIEWER, url, {"Last-Event-ID": str(seqs[2])}),
        (VIEWER, url, {"Last-Event-ID": "not-a-number"}),
        (VIEWER, url, {"Last-Event-ID": str(seqs[-1])}),  # nothing after it: an empty stream
        (VIEWER, url, {"Last-Event-ID": str(2**63)}),  # 400 (the route's)
        (VIEWER, f"{url}?afterSeq={seqs[1]}", {}),  # a query: the route's
        (OTHER_NS, url, {}),  # another namespace: 404 (the route's)
        (VIEWER, "/v1/runs/no-such-run/events", {}),  # 404 (the route's)
        (None, url, {}),  # 401 (the gate's)
        (EXECUTOR, f"/v1/runs/{cancelled}/events", {"Last-Event-ID": "0"}),
    ]
    mine = await _play(api.app, api.keys, requests)
    assert _shortcut_of(api.app)._found, "the shortcut answered nothing"

    plain = create_app(fast_settings(db, api.root, workers=0))
    shortcut: Any = RunStreamShortcut
    plain.user_middleware = [m for m in plain.user_middleware if m.cls is not shortcut]
    async with plain.router.lifespan_context(plain):
        theirs = await _play(plain, api.keys, requests)

    assert [status for status, _, _ in mine[:-1]] == [
        200,
        200,
        200,
        200,
        400,
        200,
        404,
        404,
        401,
        200,
    ]
    for index, (a, b) in enumerate(zip(mine, theirs, strict=True)):
        assert a == b, f"request {index}: {a} != {b}"
    assert _seqs(mine[0][2]) == seqs and _seqs(mine[1][2]) == seqs[3:]
    assert _seqs(mine[3][2]) == [] and _seqs(mine[5][2]) == seqs[2:]
    assert "RunCancelled" in _types(mine[9][2])
    for status, headers, _ in mine[:-1]:
        if status == 200:
            assert {k: v for k, v in headers if k != "ratelimit-policy"} == SSE_HEADERS


async def test_streams_of_just_started_runs_are_complete(api: Api) -> None:
    (api.root / "noops.yaml").write_text(NOOP_WORKFLOW)
    feed = api.app.state.services.feed

    async def start_and_follow(index: int) -> tuple[str, str, str]:
        started = await api.http.post(
            "/v1/runs", json={"workflowPath": "noops.yaml"}, headers=api.headers()
        )
        run_id: str = started.json()["runId"]
        url = f"/v1/runs/{run_id}/events"
        stream = await api.http.get(url, headers=api.headers(VIEWER))
        # Resumed at once from the middle: what the tail saw, cut at the cursor.
        cut = _seqs(stream.text)[index % 4]
        resumed = await api.http.get(
            url, headers={**api.headers(VIEWER), "Last-Event-ID": str(cut)}
        )
        return run_id, stream.text, f"{cut}\n{resumed.text}"

    for _ in range(2):
        results = await asyncio.gather(*(start_and_follow(i) for i in range(12)))
        for run_id, text, resumed in results:
            seqs = await _table_seqs(api, run_id)
            assert _seqs(text) == seqs and "RunFinished" in _types(text)
            cut, _, rest = resumed.partition("\n")
            assert _seqs(rest) == [s for s in seqs if s > int(cut)]
    assert feed.recent.hits >= 12, "no stream started from the feed's recent runs"


async def test_start_and_follow_in_one_request(api: Api) -> None:
    (api.root / "noops.yaml").write_text(NOOP_WORKFLOW)
    sse = {**api.headers(), "Accept": "text/event-stream"}
    body = {"workflowPath": "noops.yaml", "runId": "followed-1"}
    first = await api.http.post("/v1/runs", json=body, headers={**sse, "Idempotency-Key": "k1"})
    assert first.status_code == 200
    assert first.headers["x-run-id"] == "followed-1" and first.headers["x-run-created"] == "true"
    assert first.headers["location"] == "/v1/runs/followed-1"
    assert {k: first.headers[k] for k in SSE_HEADERS} == SSE_HEADERS
    seqs = await _table_seqs(api, "followed-1")
    assert _seqs(first.text) == seqs and _types(first.text)[0] == "RunStarted"
    assert "RunFinished" in _types(first.text)
    # The same key again: the same run, followed from its first event, not created.
    again = await api.http.post("/v1/runs", json=body, headers={**sse, "Idempotency-Key": "k1"})
    assert again.headers["x-run-created"] == "false" and _seqs(again.text) == seqs
    # What the start shortcut leaves to the route (a content type with a charset) follows too.
    routed = await api.http.post(
        "/v1/runs",
        content=b'{"workflowPath": "noops.yaml", "runId": "followed-2"}',
        headers={**sse, "Content-Type": "application/json; charset=utf-8"},
    )
    assert routed.headers["x-run-id"] == "followed-2"
    assert _seqs(routed.text) == await _table_seqs(api, "followed-2")
    # Refusals are problem documents, as without the header.
    taken = await api.http.post("/v1/runs", json=body, headers=sse)
    assert taken.status_code == 409 and taken.json()["code"] == "RUN_ALREADY_EXISTS"
    viewer = await api.http.post(
        "/v1/runs", json={"workflowPath": "noops.yaml"}, headers={**sse, **api.headers(VIEWER)}
    )
    assert viewer.status_code == 403
    # Without the header: the JSON answer, unchanged.
    plain = await api.http.post(
        "/v1/runs", json={"workflowPath": "noops.yaml"}, headers=api.headers()
    )
    assert plain.headers["content-type"] == "application/json" and plain.json()["created"]


def _subscribers(url: str, key: str) -> float:
    text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {key}"}).text
    for line in text.splitlines():
        if line.startswith('flowplane_stream_subscribers{transport="sse"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.parametrize("how", ["get", "start"])
def test_a_client_that_leaves_ends_its_stream(
    db: tuple[str, str], tmp_path: Path, how: str
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "approval.yaml").write_text(APPROVAL_WORKFLOW)
    with served(db, root) as (url, keys):
        auth = {"Authorization": f"Bearer {keys[EXECUTOR]}", "Accept": "text/event-stream"}
        with httpx.Client(base_url=url, timeout=10) as client:
            body = {"workflowPath": "approval.yaml"}
            if how == "get":
                started = client.post("/v1/runs", json=body, headers={**auth, "Accept": "*/*"})
                run_id = started.json()["runId"]
                request = client.build_request("GET", f"/v1/runs/{run_id}/events", headers=auth)
            else:
                request = client.build_request("POST", "/v1/runs", json=body, headers=auth)
            response = client.send(request, stream=True)
            assert response.status_code == 200
            lines = response.iter_lines()
            while "ApprovalRequested" not in next(lines):
                pass
            assert _subscribers(url, keys[ADMIN]) == 1
            response.close()  # the run waits for an approval: only the client's leaving ends it
        deadline = time.monotonic() + 10
        while _subscribers(url, keys[ADMIN]) != 0:
            assert time.monotonic() < deadline, "the stream went on after its client left"
            time.sleep(0.05)


class _NoStreamStarts(httpx.ASGITransport):
    """A server from before start-and-follow: a start's ``Accept`` is not honoured."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            request.headers["Accept"] = "application/json"
        return await super().handle_async_request(request)


@pytest.mark.parametrize("server", ["current", "older"])
async def test_client_starts_and_streams(api: Api, server: str) -> None:
    (api.root / "noops.yaml").write_text(NOOP_WORKFLOW)
    kind = httpx.ASGITransport if server == "current" else _NoStreamStarts
    transport = kind(app=api.app)
    async with AsyncClient("http://flowplane", token=api.keys[EXECUTOR], transport=transport) as fp:
        events = [e async for e in fp.start_and_stream(path="noops.yaml", input={"x": 1})]
        run_id = events[0].run_id
        assert events[0].type == "RunStarted" and "RunFinished" in [e.type for e in events]
        assert [e.seq for e in events] == await _table_seqs(api, run_id)
        with pytest.raises(FlowplaneError) as refused:
            [e async for e in fp.start_and_stream(path="missing.yaml")]
        assert refused.value.status == 404


async def test_a_deleted_run_has_no_stream(api: Api) -> None:
    (api.root / "noops.yaml").write_text(NOOP_WORKFLOW)
    feed = api.app.state.services.feed
    for _ in range(2):  # the first stream starts the feed's tail, the second finds its run
        started = await api.http.post(
            "/v1/runs", json={"workflowPath": "noops.yaml"}, headers=api.headers()
        )
        run_id = started.json()["runId"]
        url = f"/v1/runs/{run_id}/events"
        hits = feed.recent.hits
        followed = await api.http.get(url, headers=api.headers(VIEWER))
    assert "RunFinished" in _types(followed.text) and feed.recent.hits > hits
    deleted = await api.http.delete(f"/v1/runs/{run_id}", headers=api.headers(ADMIN))
    assert deleted.status_code == 204
    # The feed saw the run (its events are in the feed's recent runs): deleted, it is a 404.
    gone = await api.http.get(url, headers=api.headers(VIEWER))
    assert gone.status_code == 404 and gone.json()["code"] == "RUN_NOT_FOUND"


async def _dashboard(api: Api) -> asyncio.Task[None]:
    """A stream of every namespace (a dashboard): the feed's tail runs all along."""
    feed = api.app.state.services.feed

    async def follow() -> None:
        async for _ in feed.batches(namespace_filter(None), 10**9):
            pass

    task = asyncio.create_task(follow())
    while not feed._ready.is_set():  # the tail knows its position
        await asyncio.sleep(0.01)
    return task


async def _finished_recent_run(api: Api) -> str:
    """A run that finished, its events in the feed's recent runs (the tail runs)."""
    run_id = await api.dispatch_file("noops.yaml", NOOP_WORKFLOW)
    await api.wait_status(run_id, "finished")
    feed = api.app.state.services.feed
    for _ in range(100):  # the tail read the run's last event (FrameCommitted)
        if feed._position is not None and feed._position >= (await _table_seqs(api, run_id))[-1]:
            break
        await asyncio.sleep(0.01)
    entry = feed.recent.get(run_id)
    assert entry is not None and entry.events[-1]["type"] != "RunFinished"
    return run_id


async def test_resuming_a_finished_run_at_its_end_ends(api: Api) -> None:
    """An EventSource reconnecting to a finished run with its last seq: the stream ends (the
    run's last event, FrameCommitted, follows RunFinished), from recent runs as from the
    table."""
    keep = await _dashboard(api)
    try:
        run_id = await _finished_recent_run(api)
        feed = api.app.state.services.feed
        last = (await _table_seqs(api, run_id))[-1]
        hits = feed.recent.hits
        resumed = await asyncio.wait_for(
            api.http.get(
                f"/v1/runs/{run_id}/events",
                headers={**api.headers(VIEWER), "Last-Event-ID": str(last)},
            ),
            10,
        )
        assert resumed.status_code == 200 and _seqs(resumed.text) == []
        assert feed.recent.hits > hits  # started from the recent run, not the table
    finally:
        keep.cancel()


@pytest.mark.parametrize("from_recent", [False, True])
async def test_a_typed_stream_of_a_finished_run_ends(api: Api, from_recent: bool) -> None:
    """A stream filtered by event type (JSON-RPC ``streamRunEvents`` with ``types``) of a
    finished run ends, though the filter drops the run's terminal event."""
    keep = await _dashboard(api) if from_recent else None
    try:
        if from_recent:
            run_id = await _finished_recent_run(api)
        else:
            run_id = await api.dispatch_file("noops.yaml", NOOP_WORKFLOW)
            await api.wait_status(run_id, "finished")
        feed = api.app.state.services.feed
        hits = feed.recent.hits
        stream = feed.stream(run_filter(run_id, ["NodeFinished"]), 0, until_terminal=True)

        async def consume() -> list[str]:
            return [event["type"] async for event in stream]

        seen = await asyncio.wait_for(consume(), 10)
        assert seen == ["NodeFinished"] * 3
        assert (feed.recent.hits > hits) == from_recent
    finally:
        if keep is not None:
            keep.cancel()


async def test_a_run_deleted_by_another_process_has_no_stream(
    api: Api, db: tuple[str, str]
) -> None:
    """A run deleted by another process (the local CLI, retention elsewhere: no notification
    reaches this one on SQLite) is served from recent runs at most the run cache's time after
    it started: then its stream is a 404, as from the table."""
    from flowplane.services.run_cache import RUN_CHANGED
    from flowplane.store import retention
    from flowplane.store.base import Store
    from flowplane.store.tx import Tx

    keep = await _dashboard(api)
    try:
        run_id = await _finished_recent_run(api)
        url, schema = db
        other = await Store.open(url, schema=schema, migrate=False)

        def delete(tx: Tx) -> None:
            retention.delete_runs(tx, [run_id])
            tx.notify(RUN_CHANGED, run_id)

        feed = api.app.state.services.feed
        forget = feed.recent.forget
        feed.recent.forget = lambda _run_id: None  # the notification is lost (or never sent)
        try:
            await other.transact(delete)
        finally:
            await other.close()
        ttl = api.app.state.services.settings.run_cache_seconds
        await asyncio.sleep(ttl + 0.2)  # past the run cache's bound since the run started
        feed.recent.forget = forget
        gone = await api.http.get(f"/v1/runs/{run_id}/events", headers=api.headers(VIEWER))
        assert gone.status_code == 404 and gone.json()["code"] == "RUN_NOT_FOUND"
    finally:
        keep.cancel()


@pytest.mark.parametrize("shortcut", [True, False])
async def test_a_started_run_is_never_an_error(api: Api, shortcut: bool) -> None:
    """Start and follow whose stream cannot be opened after the run started (the database
    went away): the start's JSON, not an error a client would retry with a second run."""
    from flowplane.errors import DatabaseUnavailable

    (api.root / "noops.yaml").write_text(NOOP_WORKFLOW)
    feed = api.app.state.services.feed

    async def unavailable(*_args: Any, **_kwargs: Any) -> Any:
        raise DatabaseUnavailable("the database is unavailable")

    feed.for_run = unavailable
    sse = {**api.headers(), "Accept": "text/event-stream"}
    if shortcut:  # the start shortcut answers a plain JSON body
        started = await api.http.post("/v1/runs", json={"workflowPath": "noops.yaml"}, headers=sse)
    else:  # a charset in the content type: the route answers
        started = await api.http.post(
            "/v1/runs",
            content=b'{"workflowPath": "noops.yaml"}',
            headers={**sse, "Content-Type": "application/json; charset=utf-8"},
        )
    assert started.status_code == 200, started.text[:300]
    assert started.headers["content-type"].startswith("application/json")
    body = started.json()
    assert body["created"] is True
    del feed.for_run
    await api.wait_status(body["runId"], "finished")
    runs = await api.http.get("/v1/runs", headers=api.headers())
    assert [run["runId"] for run in runs.json()] == [body["runId"]]
