"""Client and AsyncClient against the real app: every route, typed models, rebuilt errors.

AsyncClient goes through ``httpx.ASGITransport``; the sync Client talks to uvicorn serving
the app in a thread. The client is about the wire, not the database: SQLite only.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from runs_support import (
    ADMIN,
    APPROVAL_WORKFLOW,
    EXECUTOR,
    FLAKY_WORKFLOW,
    LOG_WORKFLOW,
    SIGNAL_WORKFLOW,
    VIEWER,
    Api,
    served,
    started_api,
)

from flowplane.client import (
    AlreadyDecided,
    AsyncClient,
    Client,
    Forbidden,
    IdempotencyKeyReused,
    RunNotActive,
    RunNotFound,
    Unauthorized,
    WorkflowPathOutsideRoot,
)
from flowplane.errors import InvalidInput, VersionMismatch


@pytest.fixture
def sqlite_db(tmp_path: Path) -> tuple[str, str]:
    return f"sqlite:///{tmp_path / 'client.db'}", "flowplane"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "root"
    path.mkdir()
    for name, text in (
        ("logs.yaml", LOG_WORKFLOW),
        ("approval.yaml", APPROVAL_WORKFLOW),
        ("signal.yaml", SIGNAL_WORKFLOW),
        ("flaky.yaml", FLAKY_WORKFLOW),
    ):
        (path / name).write_text(text)
    return path


class _CutStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body that fails after ``keep`` bytes, like a dropped connection."""

    def __init__(self, inner: Any, keep: int) -> None:
        self.inner = inner
        self.left = keep

    def _cut(self, chunk: bytes) -> bytes:
        if self.left <= 0:
            raise httpx.RemoteProtocolError("connection dropped (test)")
        part, self.left = chunk[: self.left], self.left - len(chunk)
        return part

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.inner:
            yield self._cut(chunk)
        raise httpx.RemoteProtocolError("connection dropped (test)")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.inner:
            yield self._cut(chunk)
        raise httpx.RemoteProtocolError("connection dropped (test)")


class DroppingTransport(httpx.HTTPTransport):
    """Cuts the first ``drops`` event streams after ``keep`` bytes."""

    def __init__(self, drops: int = 1, keep: int = 700) -> None:
        super().__init__()
        self.drops, self.keep, self.streams = drops, keep, 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.url.path.endswith("/events"):
            self.streams += 1
            if self.streams <= self.drops:
                response.stream = _CutStream(response.stream, self.keep)
        return response


class DroppingASGITransport(httpx.ASGITransport):
    """The ASGI flavour of :class:`DroppingTransport`."""

    def __init__(self, app: Any, drops: int = 1, keep: int = 700) -> None:
        super().__init__(app=app)
        self.drops, self.keep, self.streams = drops, keep, 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        if request.url.path.endswith("/events"):
            self.streams += 1
            if self.streams <= self.drops:
                response.stream = _CutStream(response.stream, self.keep)
        return response


@pytest.fixture
async def api(sqlite_db: tuple[str, str], root: Path) -> AsyncIterator[Api]:
    async with started_api(sqlite_db, root) as started:
        yield started


def async_client(api: Api, key: str = EXECUTOR, **kwargs: Any) -> AsyncClient:
    transport = kwargs.pop("transport", None) or httpx.ASGITransport(app=api.app)
    return AsyncClient("http://flowplane", token=api.keys[key], transport=transport, **kwargs)


async def test_async_client_runs(api: Api) -> None:
    async with async_client(api) as fp:
        started = await fp.run_workflow(path="logs.yaml", input={"who": "ann"})
        assert started.created and started.workflow_name == "three-logs"
        done = await fp.wait(started.run_id, timeout=15)
        assert done.status == "finished" and done.is_terminal
        assert done.node("c").output == {"greeted": "ann"}
        assert done.summary == {"finished": 3} and done.nodes_executed == 3
        assert (await fp.get_status(started.run_id)).run_id == started.run_id

        events = [e async for e in fp.stream_events(started.run_id)]
        assert events[0].type == "RunStarted"
        assert any(e.type == "NodeFinished" and e.get("output") for e in events)
        tail = [e.seq async for e in fp.stream_events(started.run_id, after_seq=events[2].seq)]
        assert tail == [e.seq for e in events[3:]]

        logs = [item async for item in fp.iter_logs(started.run_id, page_size=2)]
        assert [i.message for i in logs if i.kind == "log"] == ["hello ann", "second"]

        again = await fp.run_workflow(path="logs.yaml", input={"who": "b"}, idempotency_key="k1")
        same = await fp.run_workflow(path="logs.yaml", input={"who": "b"}, idempotency_key="k1")
        assert same.run_id == again.run_id and not same.created
        with pytest.raises(IdempotencyKeyReused):
            await fp.run_workflow(path="logs.yaml", input={"who": "c"}, idempotency_key="k1")

        page = await fp.list_runs(limit=1)
        assert len(page.items) == 1 and page.next_cursor
        rest = await fp.list_runs(limit=1, cursor=page.next_cursor)
        assert {r.run_id for r in rest.items}.isdisjoint({r.run_id for r in page.items})
        assert all(r.status == "finished" for r in (await fp.list_runs(status="finished")).items)

        with pytest.raises(RunNotFound) as missing:
            await fp.get_run("no-such-run")
        assert missing.value.detail and missing.value.code == "RUN_NOT_FOUND"
        with pytest.raises(WorkflowPathOutsideRoot):
            await fp.run_workflow(path="../etc/passwd")
        with pytest.raises(RunNotActive) as inactive:
            await fp.cancel(started.run_id)
        assert inactive.value.extra.get("http_status") == 409


async def test_async_client_steering(api: Api) -> None:
    async with async_client(api) as fp:
        waiting = await fp.run_workflow(path="approval.yaml")
        # The second approval is requested strictly later, so "longest wait first" is defined.
        await api.wait_status(waiting.run_id, "waiting-approval")
        await asyncio.sleep(0.01)
        other = await fp.run_workflow(path="approval.yaml")
        await api.wait_status(other.run_id, "waiting-approval")
        pending = await fp.list_approvals()
        assert [a.run_id for a in pending] == [waiting.run_id, other.run_id]
        approval = await fp.approve(waiting.run_id, "ask", note="ok")
        assert approval.status == "approved" and approval.note == "ok"
        with pytest.raises(AlreadyDecided):
            await fp.approve(waiting.run_id, "ask")
        assert (await fp.deny(other.run_id, "ask", note="no")).status == "denied"
        assert (await fp.wait(waiting.run_id, timeout=15)).status == "finished"
        assert (await fp.wait(other.run_id, timeout=15)).status == "failed"

        signalled = await fp.run_workflow(path="signal.yaml")
        await api.wait_status(signalled.run_id, "waiting-event")
        sent = await fp.signal(signalled.run_id, "paid", {"amount": 5})
        assert sent.delivered and sent.node_id == "wait"
        assert (await fp.wait(signalled.run_id, timeout=15)).node("after").output == {"amount": 5}

        flaky = await fp.run_workflow(path="flaky.yaml")
        assert (await fp.wait(flaky.run_id, timeout=15)).status == "failed"
        retried = await fp.retry(flaky.run_id)
        assert retried.run_id != flaky.run_id and retried.created
        resumed = await fp.resume(flaky.run_id)
        assert resumed.run_id == flaky.run_id
        assert (await fp.wait(flaky.run_id, timeout=15)).status == "finished"

        cancelled = await fp.run_workflow(path="approval.yaml")
        assert (await fp.cancel(cancelled.run_id)).status == "cancelled"
        with pytest.raises(TimeoutError):
            blocked = await fp.run_workflow(path="approval.yaml")
            await fp.wait(blocked.run_id, timeout=0.3)

    async with async_client(api, VIEWER) as viewer:
        with pytest.raises(Forbidden):
            await viewer.cancel(waiting.run_id)
    async with AsyncClient(
        "http://flowplane", token="fp_bad", transport=httpx.ASGITransport(app=api.app)
    ) as anonymous:
        with pytest.raises(Unauthorized):
            await anonymous.list_runs()


async def test_async_stream_resumes_after_a_dropped_connection(api: Api) -> None:
    async with async_client(api) as fp:
        run = await fp.run_workflow(path="logs.yaml", input={"who": "x"})
        await fp.wait(run.run_id, timeout=15)
        expected = [e.seq async for e in fp.stream_events(run.run_id)]
    transport = DroppingASGITransport(api.app, drops=2, keep=700)
    async with async_client(api, transport=transport) as flaky:
        seqs = [e.seq async for e in flaky.stream_events(run.run_id)]
    assert seqs == expected and transport.streams >= 3


async def test_async_client_workflows(api: Api) -> None:
    async with async_client(api, ADMIN) as fp:
        wf = await fp.create_workflow(LOG_WORKFLOW)
        assert wf.name == "three-logs" and wf.version == 1
        assert (await fp.get_workflow("three-logs")).id == wf.id
        assert [w.id for w in (await fp.list_workflows()).items] == [wf.id]
        text = await fp.export_workflow(wf.id)
        assert "three-logs" in text
        result = await fp.patch_workflow(
            wf.id,
            [{"op": "add", "node_id": "d", "type": "util.lgo", "params": {}, "needs": ["c"]}],
        )
        assert not result.ok and result.skipped_items[0].reason_code == "node_type_not_registered"
        with pytest.raises(VersionMismatch):
            await fp.patch_workflow(wf.id, [], if_match=99)
        run = await fp.start_workflow_run(wf.id, {"who": "wf"})
        assert run.workflow_id == wf.id
        with pytest.raises(InvalidInput):
            await fp.create_workflow({"name": "bad", "nodes": [{"id": "a", "type": "util.nope"}]})


def test_sync_client_live_stream_with_drop(sqlite_db: tuple[str, str], root: Path) -> None:
    with served(sqlite_db, root) as (url, keys):
        transport = DroppingTransport(drops=1, keep=500)
        with (
            Client(url, token=keys[EXECUTOR], transport=transport) as fp,
            Client(url, token=keys[EXECUTOR]) as helper,
        ):
            run = fp.run_workflow(path="approval.yaml")
            seen: list[str] = []
            seqs: list[int] = []
            approver: threading.Thread | None = None
            for event in fp.stream_events(run.run_id):
                seen.append(event.type)
                seqs.append(event.seq)
                if event.type == "ApprovalRequested" and approver is None:
                    approver = threading.Thread(
                        target=helper.approve, args=(run.run_id, "ask"), kwargs={"note": "go"}
                    )
                    approver.start()
            assert approver is not None
            approver.join(10)
            assert seqs == sorted(set(seqs)) and "RunFinished" in seen
            assert transport.streams >= 2
            replay = [e.seq for e in helper.stream_events(run.run_id)]
            assert replay == seqs
            final = fp.wait(run.run_id, timeout=10)
            assert final.status == "finished" and final.node("ask").output["approved"] is True
            logs = fp.get_logs(run.run_id)
            assert {i.kind for i in logs.items} == {"attempt"}
            with pytest.raises(RunNotActive):
                fp.cancel(run.run_id)
            assert fp.list_approvals(status="all")[0].decided_by == "exec-key"
