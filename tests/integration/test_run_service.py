"""RunService owns the rules of a run call: role, namespace visibility, paging and audit.

Every surface (REST, RPC, WebSocket, serve mode, CLI) hands its caller to the same
service calls, so these rules are checked here once, on the service itself, on SQLite and
PostgreSQL. The HTTP tests (``test_runs_api.py``) check the same answers on the wire.
"""

from __future__ import annotations

from typing import Any

import pytest
from engine_support import running, wait_status

from flowplane.errors import Forbidden, RunNotFound
from flowplane.services.caller import Caller, Role
from flowplane.services.feed import EventFeed
from flowplane.store import audit
from flowplane.store.base import Store

SYSTEM = Caller.system()


def approval_flow(namespace: str) -> dict[str, Any]:
    return {
        "name": "gated",
        "namespace": namespace,
        "nodes": [{"id": "gate", "type": "control.approval", "params": {"title": "Go?"}}],
    }


def caller(role: Role, *namespaces: str, request_id: str | None = None) -> Caller:
    return Caller(
        id=f"key-{role}",
        kind="api_key",
        name=f"{role}-key",
        role=role,
        namespaces=namespaces or None,
        request_id=request_id,
    )


async def test_a_viewer_reads_a_run_but_cannot_start_or_steer_it(store: Store) -> None:
    async with running(store) as rt:
        run_id = (await rt.runs.start(SYSTEM, approval_flow("team-a"))).run.id
        await wait_status(rt.runs, run_id, "waiting-approval")
        viewer = caller("viewer", "team-a")
        assert (await rt.runs.get(viewer, run_id)).id == run_id
        assert [n.node_id for n in await rt.runs.nodes(viewer, run_id)] == ["gate"]
        with pytest.raises(Forbidden):
            await rt.runs.start(viewer, approval_flow("team-a"))
        with pytest.raises(Forbidden):
            await rt.runs.cancel(viewer, run_id)
        with pytest.raises(Forbidden):
            await rt.runs.decide(viewer, run_id, "gate", approved=True)
        with pytest.raises(Forbidden):
            await rt.runs.signal(viewer, run_id, "go")
        assert (await rt.runs.get(SYSTEM, run_id)).status == "waiting-approval"


async def test_a_run_in_another_namespace_is_not_found(store: Store) -> None:
    async with running(store) as rt:
        run_id = (await rt.runs.start(SYSTEM, approval_flow("team-a"))).run.id
        await wait_status(rt.runs, run_id, "waiting-approval")
        outsider = caller("admin", "team-b")
        reads = [
            rt.runs.get(outsider, run_id),
            rt.runs.snapshot(outsider, run_id),
            rt.runs.nodes(outsider, run_id),
            rt.runs.attempts(outsider, run_id),
            rt.runs.events(outsider, run_id),
            rt.runs.frames(outsider, run_id),
            rt.runs.log_page(outsider, run_id),
            rt.runs.document(outsider, run_id),
            rt.runs.cancel(outsider, run_id),
            rt.runs.decide(outsider, run_id, "gate", approved=True),
            rt.runs.signal(outsider, run_id, "go"),
            rt.runs.retry(outsider, run_id),
            EventFeed(store).for_run(outsider, run_id),
        ]
        for call in reads:
            with pytest.raises(RunNotFound, match="not found"):
                await call
        assert (await rt.runs.list_runs(outsider)).items == []
        assert (await rt.runs.list_runs(outsider, namespaces=["team-a"])).items == []
        assert await rt.runs.approvals.list(outsider) == []
        # Nothing was changed by the refused calls.
        assert (await rt.runs.get(SYSTEM, run_id)).status == "waiting-approval"
        insider = caller("executor", "team-a")
        decided = await rt.runs.decide(insider, run_id, "gate", approved=True, by="me")
        assert decided.status == "approved" and decided.waiting_ms >= 0


async def test_run_listing_pages_with_a_cursor(store: Store) -> None:
    async with running(store, start_worker=False) as rt:
        started = [(await rt.runs.start(SYSTEM, approval_flow("ns"))).run.id for _ in range(3)]
        viewer = caller("viewer", "ns")
        first = await rt.runs.list_runs(viewer, limit=2)
        assert [r.id for r in first.items] == started[::-1][:2]
        assert first.next_cursor is not None
        rest = await rt.runs.list_runs(viewer, limit=2, cursor=first.next_cursor)
        assert [r.id for r in rest.items] == started[:1]
        assert rest.next_cursor is None


async def test_the_audit_entry_names_the_caller_and_its_request(store: Store) -> None:
    async with running(store) as rt:
        run_id = (await rt.runs.start(SYSTEM, approval_flow("ns"))).run.id
        await wait_status(rt.runs, run_id, "waiting-approval")
        executor = caller("executor", "ns", request_id="req_test_1")
        await rt.runs.cancel(executor, run_id)
        entries = await store.read(
            lambda tx: audit.list_entries(
                tx, audit.AuditFilter(target_id=run_id, action="run.cancel"), limit=10
            )
        )
        assert len(entries) == 1
        entry = entries[0]
        assert (entry.actor, entry.actor_kind, entry.request_id) == (
            "executor-key",
            "api_key",
            "req_test_1",
        )


async def test_an_empty_idempotency_key_is_no_key(store: Store) -> None:
    """Two starts with ``idempotency_key=""`` are two runs (it was stored as a real key, and
    the second start failed on the unique index)."""
    async with running(store) as rt:
        first = await rt.runs.start(SYSTEM, approval_flow("ns"), idempotency_key="")
        second = await rt.runs.start(SYSTEM, approval_flow("ns"), idempotency_key="")
        assert first.created and second.created
        assert first.run.id != second.run.id
