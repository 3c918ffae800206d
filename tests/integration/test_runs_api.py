"""The runs API on both backends: dispatch, list, describe, logs, SSE, steering, approvals."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from runs_support import (
    ADMIN,
    APPROVAL_WORKFLOW,
    FLAKY_WORKFLOW,
    LOG_WORKFLOW,
    OTHER_NS,
    SIGNAL_WORKFLOW,
    VIEWER,
    Api,
    started_api,
)


@pytest.fixture
async def api(db: tuple[str, str], tmp_path: Path) -> AsyncIterator[Api]:
    root = tmp_path / "root"
    root.mkdir()
    async with started_api(db, root) as started:
        yield started


def parse_sse(text: str) -> list[dict[str, Any]]:
    """Return ``[{id, event, data}]`` of an SSE body (comments and retry lines skipped)."""
    messages: list[dict[str, Any]] = []
    for block in text.split("\n\n"):
        fields: dict[str, Any] = {}
        for line in block.splitlines():
            if line.startswith(":") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key] = value.removeprefix(" ")
        if "data" in fields:
            fields["data"] = json.loads(fields["data"])
            messages.append(fields)
    return messages


async def test_dispatch_by_path_and_describe(api: Api) -> None:
    run_id = await api.dispatch_file("hello.yaml", LOG_WORKFLOW, {"who": "ada"})
    body = await api.wait_status(run_id, "finished")
    assert body["runId"] == run_id
    assert body["workflowName"] == "three-logs"
    assert body["summary"] == {"finished": 3}
    assert body["nodesTotal"] == 3 and body["nodesExecuted"] == 3
    assert body["durationMs"] >= 0 and body["startedAtMs"] <= body["finishedAtMs"]
    assert body["input"] == {"who": "ada"}
    assert body["createdAt"].endswith("Z")
    nodes = {n["nodeId"]: n for n in body["nodes"]}
    assert nodes["c"]["output"] == {"greeted": "ada"}
    assert nodes["a"]["state"] == "finished" and nodes["a"]["attempt"] == 1
    assert nodes["a"]["attempts"][0]["status"] == "finished"
    assert nodes["a"]["durationMs"] is not None


async def test_workflow_path_must_stay_under_root(api: Api, tmp_path: Path) -> None:
    (tmp_path / "outside.yaml").write_text(LOG_WORKFLOW)
    for path in ("../outside.yaml", str(tmp_path / "outside.yaml"), "a/../../outside.yaml", "."):
        response = await api.http.post(
            "/v1/runs", json={"workflowPath": path}, headers=api.headers()
        )
        assert response.status_code == 400, path
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "WORKFLOW_PATH_OUTSIDE_ROOT"
    missing = await api.http.post(
        "/v1/runs", json={"workflowPath": "nope.yaml"}, headers=api.headers()
    )
    assert missing.status_code == 404
    both = await api.http.post(
        "/v1/runs", json={"workflowPath": "x.yaml", "workflow": "x"}, headers=api.headers()
    )
    assert both.status_code == 400
    unknown = await api.http.post("/v1/runs", json={"bogus": 1}, headers=api.headers())
    assert unknown.status_code == 400


async def test_idempotency_key(api: Api) -> None:
    (api.root / "wf.yaml").write_text(LOG_WORKFLOW)
    headers = {**api.headers(), "Idempotency-Key": "order-1"}
    body = {"workflowPath": "wf.yaml", "input": {"who": "a"}}
    first = await api.http.post("/v1/runs", json=body, headers=headers)
    second = await api.http.post("/v1/runs", json=body, headers=headers)
    assert first.status_code == second.status_code == 200  # Smithers: always 200
    assert first.json()["created"] is True
    assert first.json()["runId"] == second.json()["runId"]
    assert second.json()["created"] is False
    other = await api.http.post("/v1/runs", json={**body, "input": {"who": "b"}}, headers=headers)
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    in_body = await api.http.post(
        "/v1/runs", json={**body, "idempotencyKey": "order-1"}, headers=api.headers()
    )
    assert in_body.status_code == 200 and in_body.json()["runId"] == first.json()["runId"]


async def test_list_filters_and_cursor(api: Api) -> None:
    ids = [await api.dispatch_file("logs.yaml", LOG_WORKFLOW, {"who": str(i)}) for i in range(3)]
    waiting = await api.dispatch_file("approval.yaml", APPROVAL_WORKFLOW)
    for run_id in ids:
        await api.wait_status(run_id, "finished")
    await api.wait_status(waiting, "waiting-approval")
    viewer = api.headers(VIEWER)

    page = await api.http.get("/v1/runs", params={"limit": 3}, headers=viewer)
    assert page.status_code == 200
    assert [r["runId"] for r in page.json()] == [waiting, ids[2], ids[1]]
    cursor = page.headers["X-Next-Cursor"]
    assert 'rel="next"' in page.headers["Link"] and f"cursor={cursor}" in page.headers["Link"]
    rest = await api.http.get("/v1/runs", params={"limit": 3, "cursor": cursor}, headers=viewer)
    assert [r["runId"] for r in rest.json()] == [ids[0]]
    assert "X-Next-Cursor" not in rest.headers

    finished = await api.http.get("/v1/runs", params={"status": "finished"}, headers=viewer)
    assert {r["runId"] for r in finished.json()} == set(ids)
    both = await api.http.get(
        "/v1/runs", params={"status": "finished,waiting-approval"}, headers=viewer
    )
    assert len(both.json()) == 4
    by_name = await api.http.get("/v1/runs", params={"workflow": "needs-approval"}, headers=viewer)
    assert [r["runId"] for r in by_name.json()] == [waiting]
    future = await api.http.get(
        "/v1/runs", params={"createdAfter": "2999-01-01T00:00:00Z"}, headers=viewer
    )
    assert future.json() == []
    past = await api.http.get("/v1/runs", params={"createdAfter": "0"}, headers=viewer)
    assert len(past.json()) == 4
    other_ns = await api.http.get("/v1/runs", params={"namespace": "other"}, headers=viewer)
    assert other_ns.json() == []
    hidden = await api.http.get("/v1/runs", headers=api.headers(OTHER_NS))
    assert hidden.json() == []


async def test_logs_pagination(api: Api) -> None:
    run_id = await api.dispatch_file("logs.yaml", LOG_WORKFLOW, {"who": "bob"})
    await api.wait_status(run_id, "finished")
    items: list[dict[str, Any]] = []
    after: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2}
        if after:
            params["after"] = after
        response = await api.http.get(
            f"/v1/runs/{run_id}/logs", params=params, headers=api.headers(VIEWER)
        )
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 2
        items.extend(page["items"])
        pages += 1
        after = page["nextCursor"]
        if after is None:
            break
    assert pages >= 3
    logs = [i for i in items if i["kind"] == "log"]
    attempts = [i for i in items if i["kind"] == "attempt"]
    assert [i["message"] for i in logs] == ["hello bob", "second"]
    assert sorted(a["nodeId"] for a in attempts) == ["a", "b", "c"]
    assert [i["tsMs"] for i in items] == sorted(i["tsMs"] for i in items)
    bad = await api.http.get(
        f"/v1/runs/{run_id}/logs", params={"after": "x"}, headers=api.headers(VIEWER)
    )
    assert bad.status_code == 400


async def test_sse_replay_and_resume(api: Api) -> None:
    run_id = await api.dispatch_file("logs.yaml", LOG_WORKFLOW, {"who": "eve"})
    await api.wait_status(run_id, "finished")
    url = f"/v1/runs/{run_id}/events"
    response = await api.http.get(url, headers=api.headers(VIEWER))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    seqs = [int(e["id"]) for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    types = [e["data"]["type"] for e in events]
    assert types[0] == "RunStarted" and "RunFinished" in types
    # The stream closes once the run is terminal: only the final frame may follow.
    assert set(types[types.index("RunFinished") + 1 :]) <= {"FrameCommitted"}
    # Smithers' framing: every message is `event: smithers`; the type is in the data.
    assert all(e["event"] == "smithers" and int(e["id"]) == e["data"]["seq"] for e in events)

    cut = seqs[3]
    resumed = parse_sse(
        (await api.http.get(url, headers={**api.headers(VIEWER), "Last-Event-ID": str(cut)})).text
    )
    assert [int(e["id"]) for e in resumed] == [s for s in seqs if s > cut]
    by_query = parse_sse(
        (await api.http.get(url, params={"afterSeq": cut}, headers=api.headers(VIEWER))).text
    )
    assert [int(e["id"]) for e in by_query] == [s for s in seqs if s > cut]
    # A reconnecting EventSource sends its original URL plus Last-Event-ID: the later wins.
    both = parse_sse(
        (
            await api.http.get(
                url,
                params={"afterSeq": seqs[0]},
                headers={**api.headers(VIEWER), "Last-Event-ID": str(seqs[-2])},
            )
        ).text
    )
    assert [int(e["id"]) for e in both] == [seqs[-1]]
    done = await api.http.get(url, params={"afterSeq": seqs[-1]}, headers=api.headers(VIEWER))
    assert parse_sse(done.text) == []
    missing = await api.http.get("/v1/runs/nope/events", headers=api.headers(VIEWER))
    assert missing.status_code == 404 and missing.json()["code"] == "RUN_NOT_FOUND"


async def test_cancel_then_409(api: Api) -> None:
    run_id = await api.dispatch_file("approval.yaml", APPROVAL_WORKFLOW)
    await api.wait_status(run_id, "waiting-approval")
    forbidden = await api.http.post(f"/v1/runs/{run_id}/cancel", headers=api.headers(VIEWER))
    assert forbidden.status_code == 403
    cancelled = await api.http.post(f"/v1/runs/{run_id}/cancel", headers=api.headers())
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = await api.http.post(f"/v1/runs/{run_id}/cancel", headers=api.headers())
    assert again.status_code == 409 and again.json()["code"] == "RUN_NOT_ACTIVE"
    events = parse_sse(
        (await api.http.get(f"/v1/runs/{run_id}/events", headers=api.headers())).text
    )
    assert "RunCancelled" in [e["data"]["type"] for e in events]


async def test_approvals_inbox_and_decisions(api: Api) -> None:
    first = await api.dispatch_file("approval.yaml", APPROVAL_WORKFLOW)
    await api.wait_status(first, "waiting-approval")
    second = await api.dispatch_file("approval.yaml", APPROVAL_WORKFLOW)
    await api.wait_status(second, "waiting-approval")

    inbox = await api.http.get("/v1/approvals", headers=api.headers(VIEWER))
    assert inbox.status_code == 200
    pending = inbox.json()["approvals"]
    assert [a["runId"] for a in pending] == [first, second]  # longest wait first
    assert pending[0]["waitingMs"] >= pending[1]["waitingMs"]
    assert pending[0]["title"] == "Ship it?" and pending[0]["workflowName"] == "needs-approval"
    assert pending[0]["runStatus"] == "waiting-approval"

    approved = await api.http.post(
        f"/v1/runs/{first}/nodes/ask/approve",
        json={"iteration": 0, "note": "lgtm"},
        headers=api.headers(),
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved" and approved.json()["decidedBy"] == "exec-key"
    await api.wait_status(first, "finished")
    twice = await api.http.post(f"/v1/runs/{first}/nodes/ask/approve", headers=api.headers())
    assert twice.status_code == 409
    no_node = await api.http.post(f"/v1/runs/{second}/nodes/zzz/approve", headers=api.headers())
    assert no_node.status_code == 404

    denied = await api.http.post(
        f"/v1/runs/{second}/nodes/ask/deny", json={"note": "no"}, headers=api.headers()
    )
    assert denied.status_code == 200 and denied.json()["status"] == "denied"
    await api.wait_status(second, "failed")

    assert (await api.http.get("/v1/approvals", headers=api.headers())).json()["approvals"] == []
    everything = await api.http.get(
        "/v1/approvals", params={"status": "all"}, headers=api.headers()
    )
    decided = everything.json()["approvals"]
    assert {a["status"] for a in decided} == {"approved", "denied"}
    assert decided[0]["note"] == "lgtm"
    hidden = await api.http.get("/v1/approvals", headers=api.headers(OTHER_NS))
    assert hidden.json()["approvals"] == []


async def test_signals(api: Api) -> None:
    run_id = await api.dispatch_file("signal.yaml", SIGNAL_WORKFLOW)
    await api.wait_status(run_id, "waiting-event")
    sent = await api.http.post(
        f"/v1/runs/{run_id}/signals/paid", json={"payload": {"amount": 3}}, headers=api.headers()
    )
    assert sent.status_code == 200, sent.text
    assert sent.json() == {
        "runId": run_id,
        "signal": "paid",
        "delivered": True,
        "nodeId": "wait",
        "iteration": 0,
    }
    body = await api.wait_status(run_id, "finished")
    assert body["output"] is not None or body["nodes"][-1]["output"] == {"amount": 3}
    late = await api.http.post(f"/v1/runs/{run_id}/signals/paid", headers=api.headers())
    assert late.status_code == 409 and late.json()["code"] == "RUN_NOT_ACTIVE"


async def test_resume_and_retry(api: Api) -> None:
    run_id = await api.dispatch_file("flaky.yaml", FLAKY_WORKFLOW)
    failed = await api.wait_status(run_id, "failed")
    first_output = next(n for n in failed["nodes"] if n["nodeId"] == "first")
    resumed = await api.http.post(f"/v1/runs/{run_id}/resume", headers=api.headers())
    assert resumed.status_code == 200, resumed.text
    body = await api.wait_status(run_id, "finished")
    nodes = {n["nodeId"]: n for n in body["nodes"]}
    assert nodes["first"]["attempt"] == first_output["attempt"] == 1  # reused, not re-run
    assert nodes["last"]["output"] == 2

    retried = await api.http.post(
        f"/v1/runs/{run_id}/retry", json={"useLatestVersion": False}, headers=api.headers()
    )
    assert retried.status_code == 201, retried.text
    new_id = retried.json()["runId"]
    assert new_id != run_id and retried.json()["trigger"] == "retry"
    await api.wait_status(new_id, "failed")
    smithers_resume = await api.http.post(
        "/v1/runs", json={"runId": new_id, "resume": True}, headers=api.headers()
    )
    assert smithers_resume.status_code == 200 and smithers_resume.json()["runId"] == new_id
    await api.wait_status(new_id, "finished")
    active = await api.http.post(f"/v1/runs/{new_id}/resume", headers=api.headers())
    assert active.status_code == 409


async def test_roles_and_namespaces(api: Api) -> None:
    (api.root / "wf.yaml").write_text(LOG_WORKFLOW)
    viewer = await api.http.post(
        "/v1/runs", json={"workflowPath": "wf.yaml"}, headers=api.headers(VIEWER)
    )
    assert viewer.status_code == 403
    anonymous = await api.http.get("/v1/runs")
    assert anonymous.status_code == 401
    run_id = await api.dispatch_file("wf.yaml", LOG_WORKFLOW)
    for path in ("", "/logs", "/events"):
        hidden = await api.http.get(f"/v1/runs/{run_id}{path}", headers=api.headers(OTHER_NS))
        assert hidden.status_code == 404 and hidden.json()["code"] == "RUN_NOT_FOUND"
    other = await api.http.post(f"/v1/runs/{run_id}/cancel", headers=api.headers(OTHER_NS))
    assert other.status_code == 404


async def test_openapi_documents_the_routes(api: Api) -> None:
    spec = (await api.http.get("/openapi.json", headers=api.headers(VIEWER))).json()
    paths = spec["paths"]
    assert "/v1/runs/{run_id}/events" in paths
    dispatch = paths["/v1/runs"]["post"]
    assert {"200", "400", "401", "403", "409"} <= set(dispatch["responses"])
    assert "201" not in dispatch["responses"]
    assert (
        "text/event-stream"
        in paths["/v1/runs/{run_id}/events"]["get"]["responses"]["200"]["content"]
    )
    assert "/v1/approvals" in paths


async def store_workflow(api: Api, yaml_text: str) -> str:
    """Store a workflow (YAML) through the API; return its id."""
    created = await api.http.post(
        "/v1/workflows",
        content=yaml_text,
        headers={**api.headers(ADMIN), "Content-Type": "application/yaml"},
    )
    assert created.status_code == 201, created.text
    workflow_id: str = created.json()["id"]
    return workflow_id


async def test_dispatching_a_stored_workflow_validates_its_document_once(api: Api) -> None:
    # A start of a stored workflow reads only its head (id, version) in the dispatch
    # transaction: the validated document of that version is cached (per workflow version
    # and connector set) and serves every later dispatch of it, by id or by name.
    from flowplane.engine import starting
    from flowplane.engine.plan import validated
    from flowplane.store import workflow_queries as wq

    name = f"cached-{uuid.uuid4().hex[:8]}"
    workflow_id = await store_workflow(api, LOG_WORKFLOW.replace("three-logs", name))
    store = api.app.state.services.store
    head = await store.read(lambda tx: wq.get_workflow_head(tx, workflow_id))
    assert head is not None and head.version == 1
    key = starting.stored_key(head)
    registry = api.app.state.services.runs.registry
    assert validated.get(key, registry) is None
    first = await api.http.post(
        "/v1/runs", json={"workflowId": workflow_id, "input": {"who": "a"}}, headers=api.headers()
    )
    assert first.status_code == 200, first.text
    hit = validated.get(key, registry)
    assert hit is not None
    second = await api.http.post(
        "/v1/runs", json={"workflow": name, "input": {"who": "b"}}, headers=api.headers()
    )
    assert second.status_code == 200, second.text
    third = await api.http.post(
        f"/v1/workflows/{workflow_id}/runs", json={"input": {"who": "c"}}, headers=api.headers()
    )
    assert third.status_code == 201, third.text
    assert validated.get(key, registry) is hit  # not validated (and stored) again
    for run in (first, second, third):
        assert (await api.wait_status(run.json()["runId"], "finished"))["workflowId"] == workflow_id


async def test_dispatch_stored_workflow_by_id_and_name(api: Api) -> None:
    workflow_id = await store_workflow(api, LOG_WORKFLOW)
    by_id = await api.http.post(
        "/v1/runs", json={"workflowId": workflow_id, "input": {"who": "id"}}, headers=api.headers()
    )
    assert by_id.status_code == 200, by_id.text
    assert by_id.json()["workflowId"] == workflow_id and by_id.json()["workflowVersion"] == 1
    by_name = await api.http.post(
        "/v1/runs", json={"workflow": "three-logs", "input": {"who": "n"}}, headers=api.headers()
    )
    assert by_name.status_code == 200 and by_name.json()["workflowId"] == workflow_id
    body = await api.wait_status(by_name.json()["runId"], "finished")
    assert body["triggeredBy"] == "exec-key"
    unknown = await api.http.post("/v1/runs", json={"workflow": "nope"}, headers=api.headers())
    assert unknown.status_code == 404 and unknown.json()["code"] == "workflow_not_found"
    hidden = await api.http.post(
        "/v1/runs", json={"workflowId": workflow_id}, headers=api.headers(OTHER_NS)
    )
    assert hidden.status_code == 404
    bad_input = await api.http.post(
        "/v1/runs", json={"workflowId": workflow_id, "input": {"who": 3}}, headers=api.headers()
    )
    assert bad_input.status_code == 400 and bad_input.json()["code"] == "input_invalid"
