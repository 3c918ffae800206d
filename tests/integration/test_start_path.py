"""The start path of stored workflows through the HTTP API: group commit and the per-version
validated cache (``RunService.start_stored``), on SQLite and PostgreSQL.

Concurrent starts share one transaction (``services.runs.starts`` counts batches): these
tests send them concurrently and check that batches really formed, so that they test the
grouped path and not one start at a time.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import sqlalchemy as sa
from api_support import (  # noqa: F401  (the fixtures)
    ApiHarness,
    api_fixture,
    api_with_worker_fixture,
)

from flowplane.store import schema

WORKFLOW = """
name: {name}
inputs:
  type: object
  properties: {{who: {{type: string}}}}
nodes:
  - {{id: a, type: util.noop}}
  - {{id: b, type: util.noop, needs: [a]}}
"""


async def store(api: ApiHarness, name: str | None = None, namespace: str | None = None) -> str:
    text = WORKFLOW.format(name=name or f"start-{uuid.uuid4().hex[:8]}")
    if namespace:
        text = f"namespace: {namespace}\n{text}"
    created = await api.client.post(
        "/v1/workflows", content=text, headers={"Content-Type": "application/yaml"}
    )
    assert created.status_code == 201, created.text
    workflow_id: str = created.json()["id"]
    return workflow_id


async def run_ids(api: ApiHarness, workflow_id: str) -> set[str]:
    listed = await api.client.get("/v1/runs", params={"limit": 500})
    assert listed.status_code == 200, listed.text
    return {r["runId"] for r in listed.json() if r["workflowId"] == workflow_id}


def batched(api: ApiHarness, before: tuple[int, int]) -> float:
    """Mean starts per committed transaction since ``before`` (``(entries, batches)``)."""
    starts = api.services.runs.starts
    entries, batches = starts.entries - before[0], starts.batches - before[1]
    assert batches > 0
    return entries / batches


def counts(api: ApiHarness) -> tuple[int, int]:
    starts = api.services.runs.starts
    return starts.entries, starts.batches


async def test_concurrent_starts_with_idempotency_keys(api: ApiHarness) -> None:
    workflow_id = await store(api)
    executor = await api.key("executor")
    keys = [f"k-{i}" for i in range(12)]
    before = counts(api)

    async def start(i: int) -> httpx.Response:
        key = keys[i % len(keys)]  # each key sent three times, in the same batches
        return await api.client.post(
            f"/v1/workflows/{workflow_id}/runs",
            json={"input": {"who": key}},
            headers={**api.auth(executor), "Idempotency-Key": key},
        )

    answers = await asyncio.gather(*(start(i) for i in range(36)))
    assert batched(api, before) > 1.5  # the starts were grouped
    by_key: dict[str, set[str]] = {}
    created: dict[str, int] = {}
    for i, answer in enumerate(answers):
        assert answer.status_code in (200, 201), answer.text
        key = keys[i % len(keys)]
        by_key.setdefault(key, set()).add(answer.json()["runId"])
        created[key] = created.get(key, 0) + (answer.status_code == 201)
        assert answer.json()["created"] is (answer.status_code == 201)
    assert all(len(ids) == 1 for ids in by_key.values())  # one run per key
    assert all(n == 1 for n in created.values())  # created once, then replayed
    assert await run_ids(api, workflow_id) == {next(iter(ids)) for ids in by_key.values()}


async def test_a_bad_start_does_not_fail_its_batch(api: ApiHarness) -> None:
    workflow_id = await store(api)
    hidden_id = await store(api, namespace="elsewhere")
    executor = await api.key("executor", namespaces=["default"])
    taken = await api.client.post(
        f"/v1/workflows/{workflow_id}/runs", json={"input": {}}, headers=api.auth(executor)
    )
    assert taken.status_code == 201
    taken_id = taken.json()["runId"]
    reused = await api.client.post(
        f"/v1/workflows/{workflow_id}/runs",
        json={"input": {"who": "x"}},
        headers={**api.auth(executor), "Idempotency-Key": "reused"},
    )
    assert reused.status_code == 201
    fresh_id = str(uuid.uuid4())
    before = counts(api)

    def post(path: str, body: dict[str, Any], **headers: str) -> Any:
        return api.client.post(path, json=body, headers={**api.auth(executor), **headers})

    runs = f"/v1/workflows/{workflow_id}/runs"
    requests: list[tuple[str, Any]] = []
    for i in range(6):
        requests.append(("ok", post(runs, {"input": {"who": f"ok-{i}"}})))
        if i == 1:
            requests.append(("input_invalid", post(runs, {"input": {"who": 3}})))
            requests.append(("RUN_ALREADY_EXISTS", post(runs, {"runId": taken_id})))
        if i == 2:
            requests.append(("workflow_not_found", post(f"/v1/workflows/{uuid.uuid4()}/runs", {})))
            requests.append(("workflow_not_found", post(f"/v1/workflows/{hidden_id}/runs", {})))
            requests.append(
                (
                    "idempotency_key_reused",
                    post(runs, {"input": {"who": "y"}}, **{"Idempotency-Key": "reused"}),
                )
            )
        if i == 3:  # the same new run id twice in one batch: one run, one 409
            requests.append(("same-id", post(runs, {"runId": fresh_id})))
            requests.append(("same-id", post(runs, {"runId": fresh_id})))
        if i == 4:  # POST /v1/runs, the other face of the same path
            requests.append(
                (
                    "ok",
                    api.client.post(
                        "/v1/runs", json={"workflowId": workflow_id}, headers=api.auth(executor)
                    ),
                )
            )
    answers = await asyncio.gather(*(request for _kind, request in requests))
    assert batched(api, before) > 1.5
    started: set[str] = set()
    same_id: list[int] = []
    for (kind, _request), answer in zip(requests, answers, strict=True):
        if kind == "ok":
            assert answer.status_code in (200, 201), answer.text
            assert answer.json()["created"] is True
            started.add(answer.json()["runId"])
        elif kind == "same-id":
            same_id.append(answer.status_code)
            if answer.status_code == 201:
                started.add(answer.json()["runId"])
            else:
                assert answer.json()["code"] == "RUN_ALREADY_EXISTS", answer.text
        else:
            assert answer.status_code >= 400, answer.text
            assert answer.json()["code"] == kind, answer.text
    assert sorted(same_id) == [201, 409]
    assert fresh_id in started and len(started) == 8
    assert await run_ids(api, workflow_id) == started | {taken_id, reused.json()["runId"]}


async def test_a_start_runs_the_version_current_when_it_commits(api: ApiHarness) -> None:
    # The validated document is cached per workflow version: a change is seen by the very
    # next start (read in the starting transaction), a deleted workflow starts nothing.
    workflow_id = await store(api)
    first = await api.client.post(f"/v1/workflows/{workflow_id}/runs", json={})
    assert first.status_code == 201 and first.json()["workflowVersion"] == 1
    read = await api.client.get(f"/v1/workflows/{workflow_id}")
    document = read.json()["document"]
    document["nodes"].append({"id": "c", "type": "util.noop", "needs": ["b"]})
    updated = await api.client.put(
        f"/v1/workflows/{workflow_id}", json=document, headers={"If-Match": read.headers["ETag"]}
    )
    assert updated.status_code == 200, updated.text
    second = await api.client.post(f"/v1/workflows/{workflow_id}/runs", json={})
    assert second.status_code == 201 and second.json()["workflowVersion"] == 2
    detail = (await api.client.get(f"/v1/runs/{second.json()['runId']}")).json()
    assert sorted(n["nodeId"] for n in detail["nodes"]) == ["a", "b", "c"]
    by_name = await api.client.post("/v1/runs", json={"workflow": document["name"]})
    assert by_name.status_code == 200 and by_name.json()["workflowVersion"] == 2
    deleted = await api.client.delete(
        f"/v1/workflows/{workflow_id}", headers={"If-Match": updated.headers["ETag"]}
    )
    assert deleted.status_code == 204
    gone = await api.client.post(f"/v1/workflows/{workflow_id}/runs", json={})
    assert gone.status_code == 404 and gone.json()["code"] == "workflow_not_found"


async def test_an_invalid_stored_workflow_is_refused_on_every_start(api: ApiHarness) -> None:
    # A stored document that no longer validates (a connector it uses is gone) is never
    # cached: every start says so, and the other starts of its batch go on.
    workflow_id = await store(api)
    registry = api.services.runs.registry
    good_id = await store(api)
    document = (await api.client.get(f"/v1/workflows/{workflow_id}")).json()["document"]
    document["nodes"][0]["type"] = "util.noop_gone"
    store_ = api.services.store

    from flowplane.store import schema as t

    def corrupt(tx: Any) -> None:  # as if the connector had been uninstalled since
        tx.conn.execute(
            t.workflows.update()
            .where(t.workflows.c.id == workflow_id)
            .values(document=document, version=9)
        )

    await store_.transact(corrupt)
    assert registry.lookup("util.noop_gone") is None
    answers = await asyncio.gather(
        *(
            api.client.post(f"/v1/workflows/{wid}/runs", json={})
            for wid in (good_id, workflow_id, good_id, workflow_id, good_id)
        )
    )
    assert [a.status_code for a in answers] == [201, 400, 201, 400, 201], [a.text for a in answers]
    assert {a.json()["code"] for a in answers[1::2]} == {"workflow_invalid"}


async def _start_together(api: ApiHarness, workflow_id: str, count: int) -> list[str]:
    """``count`` concurrent starts (checked to have been grouped); their run ids."""
    executor = await api.key("executor")
    before = counts(api)
    answers = await asyncio.gather(
        *(
            api.client.post(
                f"/v1/workflows/{workflow_id}/runs",
                json={"input": {"who": f"w{i}"}},
                headers=api.auth(executor),
            )
            for i in range(count)
        )
    )
    assert batched(api, before) > 1.5
    assert all(answer.status_code == 201 for answer in answers), [a.text for a in answers]
    return [answer.json()["runId"] for answer in answers]


async def _frames_and_audit(api: ApiHarness, run_id: str, least: int) -> None:
    """The run's frames are numbered 1, 2, ... without a gap or a repeat (each transition
    numbers its frame from the runs row: a start that left it wrong repeats a number);
    one ``run.start`` audit entry names it."""
    frames = await api.client.get(f"/v1/runs/{run_id}/frames", params={"limit": 100})
    numbers = [frame["frameNo"] for frame in frames.json()]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= least, numbers
    audit = await api.client.get("/v1/audit", params={"targetId": run_id, "action": "run.start"})
    assert len(audit.json()["items"]) == 1, audit.text


async def test_grouped_starts_store_each_run_as_alone(api: ApiHarness) -> None:
    """A batch's runs, node runs and audit rows are written together, each run inserted
    with its first frame number (``Tx.coalesce_inserts``); the next transition of each
    run (a cancel) numbers its frame 2."""
    workflow_id = await store(api)
    for run_id in await _start_together(api, workflow_id, 16):
        cancelled = await api.client.post(f"/v1/runs/{run_id}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        await _frames_and_audit(api, run_id, 2)


async def test_grouped_starts_with_a_worker_taking_roots(api_with_worker: ApiHarness) -> None:
    """The same with the embedded worker, which takes roots of new runs in the starting
    transaction (the held-back node runs are written before the leased one, so node runs
    keep the document's order): every run finishes with its frames in order."""
    api = api_with_worker
    # The root comes second: the node run listed first is held back, the root leased.
    text = "name: root-second\nnodes:\n  - {id: b, type: util.noop, needs: [a]}\n"
    text += "  - {id: a, type: util.noop}\n"
    created = await api.client.post(
        "/v1/workflows", content=text, headers={"Content-Type": "application/yaml"}
    )
    workflow_id = created.json()["id"]
    for run_id in await _start_together(api, workflow_id, 16):
        for _ in range(400):
            detail = (await api.client.get(f"/v1/runs/{run_id}")).json()
            if detail["status"] == "finished":
                break
            await asyncio.sleep(0.05)
        assert detail["status"] == "finished", detail
        assert [node["nodeId"] for node in detail["nodes"]] == ["b", "a"]  # as inserted
        await _frames_and_audit(api, run_id, 3)


def _head_statements(api: ApiHarness) -> tuple[list[str], Any]:
    """The statements on ``workflows`` the store sends from now on (reads of a head, and
    checks of an assumed one), and a function that stops recording them."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "FROM workflows" in statement:
            seen.append("check" if "count(*)" in statement else "read")

    engine = api.services.store.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    return seen, lambda: sa.event.remove(engine, "before_cursor_execute", record)


async def test_a_known_head_is_checked_not_read(api: ApiHarness) -> None:
    # PostgreSQL: a start assumes the head its service last saw committed and checks it in
    # the same round trip as its writes; SQLite (no round trips) reads it.
    workflow_id = await store(api)
    first = await api.client.post(f"/v1/workflows/{workflow_id}/runs", json={})
    assert first.status_code == 201, first.text
    seen, stop = _head_statements(api)
    try:
        for _ in range(3):
            again = await api.client.post(f"/v1/workflows/{workflow_id}/runs", json={})
            assert again.status_code == 201 and again.json()["workflowVersion"] == 1
    finally:
        stop()
    postgres = api.services.store.dialect == "postgresql"
    assert seen == (["check"] * 3 if postgres else ["read"] * 3)


async def test_a_head_changed_behind_the_service_is_read_again(api: ApiHarness) -> None:
    # Another process (here: plain SQL) changes or deletes the workflow after this one
    # saw its head: the check fails, the start runs again reading the head, and pins
    # the version current then; a deleted workflow starts nothing.
    workflow_id = await store(api)
    first = await api.client.post(f"/v1/workflows/{workflow_id}/runs", json={})
    assert first.status_code == 201 and first.json()["workflowVersion"] == 1
    workflows = schema.workflows

    def bump(tx: Any) -> None:
        tx.conn.execute(
            workflows.update()
            .where(workflows.c.id == workflow_id)
            .values(version=workflows.c.version + 1, updated_at_ms=workflows.c.updated_at_ms + 1)
        )

    await api.services.store.transact(bump)
    seen, stop = _head_statements(api)
    try:
        answers = await asyncio.gather(
            *(api.client.post(f"/v1/workflows/{workflow_id}/runs", json={}) for _ in range(4))
        )
    finally:
        stop()
    assert [a.status_code for a in answers] == [201] * 4, [a.text for a in answers]
    assert {a.json()["workflowVersion"] for a in answers} == {2}
    assert "read" in seen
    runs = await run_ids(api, workflow_id)
    assert len(runs) == 5  # each start stored once, none twice after the failed check

    def delete(tx: Any) -> None:
        tx.conn.execute(
            workflows.update().where(workflows.c.id == workflow_id).values(deleted_at_ms=1)
        )

    await api.services.store.transact(delete)
    gone = await api.client.post(f"/v1/workflows/{workflow_id}/runs", json={})
    assert gone.status_code == 404 and gone.json()["code"] == "workflow_not_found"
    assert await run_ids(api, workflow_id) == runs
