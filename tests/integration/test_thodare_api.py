"""The @thodare/api surface under ``/api/*``, in-process, on SQLite and PostgreSQL.

The seed's examples run verbatim against a real ``flowplane serve`` in
``tests/acceptance/test_thodare_serve.py``; here are the edge cases: typed skips in
thodare's words, ``If-Match`` and 412, bad auth, 429 with ``retryAfterMs``, error bodies in
thodare's shape (and ``/v1`` and ``/api/v1`` left as they are), runs, logs, cancel,
schedules, tick and webhooks.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from api_support import ApiHarness, api_fixture, api_with_worker_fixture  # noqa: F401

TRIGGER_AND_LOG = [
    {"operation_type": "add", "block_id": "trg", "type": "trigger_webhook", "params": {}},
    {
        "operation_type": "add",
        "block_id": "say",
        "type": "util.log",
        "params": {"message": "hello {{trigger.who}}"},
    },
    {"operation_type": "connect", "block_id": "trg", "target_block_id": "say"},
]


async def create(api: ApiHarness, body: Any = None) -> dict[str, Any]:
    response = await api.client.post("/api/workflows", json={} if body is None else body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def patch(
    api: ApiHarness, wf_id: str, ops: list[Any], if_match: str | None = None
) -> httpx.Response:
    headers = {"If-Match": if_match} if if_match is not None else {}
    return await api.client.post(
        f"/api/workflows/{wf_id}/operations", json={"ops": ops}, headers=headers
    )


async def until_state(api: ApiHarness, run_id: str, *states: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        body: dict[str, Any] = (await api.client.get(f"/api/runs/{run_id}")).json()
        if body.get("state") in states:
            return body
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.05)


async def test_empty_workflow_then_ops_in_thodare_words(api: ApiHarness) -> None:
    created = await create(api)
    assert created["version"] == 1
    assert created["workflow"]["blocks"] == [] and created["workflow"]["connections"] == []
    got = await api.client.get(f"/api/workflows/{created['id']}")
    assert got.status_code == 200 and got.json()["id"] == created["id"]

    response = await patch(api, created["id"], TRIGGER_AND_LOG, if_match="1")
    assert response.status_code == 200, response.text
    body = response.json()
    assert {"ok", "version", "validation_errors", "skipped_items", "summary"} <= set(body)
    assert body["ok"] is True and body["version"] == 2, body["skipped_items"]
    blocks = {b["id"]: b for b in body["workflow"]["blocks"]}
    assert set(blocks) == {"trg", "say"}
    assert blocks["say"]["params"] == {"message": "hello {{ input.who }}"}
    assert body["workflow"]["connections"] == [{"source": "trg", "target": "say"}]

    hooked = await create(api)
    ops = [{"operation_type": "add", "block_id": "in", "type": "trigger_webhook",
            "params": {"path": "orders"}}]  # fmt: skip
    said = (await patch(api, hooked["id"], ops)).json()
    assert said["ok"] is True and "POST /api/webhooks/orders" in said["summary"]

    named = await create(api, {"metadata": {"name": "My flow", "description": "d"}})
    assert named["name"] == "My-flow" and named["workflow"]["metadata"]["description"] == "d"


async def test_typed_skips_say_what_exists(api: ApiHarness) -> None:
    wf = await create(api)
    ops: list[Any] = [
        {"operation_type": "execute", "code": "rm -rf /"},
        {"block_id": "x", "type": "util.log"},
        {"operation_type": "add", "block_id": "ghost", "type": "definitely-not-real"},
        {"operation_type": "add", "block_id": "a", "type": "util.log", "params": {"message": "m"}},
        {"operation_type": "add", "block_id": "a", "type": "util.log", "params": {"message": "m"}},
        {"operation_type": "edit", "block_id": "nope", "params": {}},
        {"operation_type": "connect", "block_id": "a", "target_block_id": "a", "condition": "x"},
        {"op": "set", "field": "description", "value": "Flowplane ops pass through"},
        {"operation_type": "rename", "block_id": "a", "new_id": "a2"},
    ]
    response = await patch(api, wf["id"], ops)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ok"] is False and body["version"] == 2
    skips = {s["index"]: s for s in body["skipped_items"]}
    assert sorted(skips) == [0, 1, 2, 4, 5, 6]
    assert skips[0]["reason_code"] == "invalid_op" and skips[0]["operation_type"] == "execute"
    assert "add, edit, delete, connect, disconnect" in skips[0]["reason"]
    assert "None" not in skips[1]["reason"] and "operation_type" in skips[1]["reason"]
    assert skips[1]["operation_type"] is None and skips[1]["block_id"] == "x"
    assert skips[2]["reason_code"] == "block_type_not_registered"
    assert skips[2]["block_id"] == "ghost" and skips[2]["code"] == "node_type_not_registered"
    assert skips[4]["reason_code"] == "block_already_exists"
    assert skips[5]["reason_code"] == "block_not_found"
    assert skips[6]["reason_code"] == "invalid_op" and "condition" in skips[6]["reason"]
    assert "unknown operation_type 'execute'" in body["summary"]
    assert body["workflow"]["metadata"]["description"] == "Flowplane ops pass through"
    assert [b["id"] for b in body["workflow"]["blocks"]] == ["a2"]


async def test_if_match_412_and_bad_bodies(api: ApiHarness) -> None:
    wf = await create(api)
    first = await patch(api, wf["id"], TRIGGER_AND_LOG[:1], if_match="1")
    assert first.status_code == 200 and first.json()["version"] == 2
    stale = await patch(api, wf["id"], TRIGGER_AND_LOG[1:2], if_match="1")
    assert stale.status_code == 412
    assert stale.headers["content-type"] == "application/json"
    assert stale.json()["error"] == "version_mismatch" and stale.json()["current"] == 2
    bad = await patch(api, wf["id"], [], if_match="abc")
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_if_match"

    not_json = await api.client.post(
        "/api/workflows", content=b"not-json", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 400 and not_json.json()["error"] == "invalid_body"
    no_ops = await api.client.post(f"/api/workflows/{wf['id']}/operations", json={"noops": True})
    assert no_ops.status_code == 400 and no_ops.json()["error"] == "invalid_body"
    missing = await patch(api, "00000000-0000-0000-0000-000000000000", [])
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    assert missing.json()["code"] == "workflow_not_found"

    empty = await create(api)
    bad_key = await api.client.post(f"/api/workflows/{empty['id']}/run", json={"idempotencyKey": 7})
    assert bad_key.status_code == 400 and bad_key.json()["error"] == "invalid_body"
    run = await api.client.post(f"/api/workflows/{empty['id']}/run", json={})
    assert run.status_code == 400 and run.json()["error"] == "workflow_empty", run.text

    deleted = await api.client.delete(f"/api/workflows/{wf['id']}")
    assert deleted.status_code == 204
    assert (await api.client.get(f"/api/workflows/{wf['id']}")).status_code == 404


async def test_auth_fails_closed_in_thodare_shape(api: ApiHarness) -> None:
    async with api.client_for(None) as anonymous:
        response = await anonymous.post("/api/workflows", json={})
        assert response.status_code == 401 and response.json()["error"] == "unauthorized"
        bare = await anonymous.post(
            "/api/workflows", json={}, headers={"Authorization": api.admin_key}
        )
        assert bare.status_code == 401
        fake = await anonymous.post(
            "/api/workflows", json={}, headers={"Authorization": "Bearer thd_fake_key"}
        )
        assert fake.status_code == 401 and fake.json()["error"] == "unauthorized"
        for scheme in ("bearer", "BEARER", "Bearer"):
            ok = await anonymous.post(
                "/api/workflows", json={}, headers={"Authorization": f"{scheme} {api.admin_key}"}
            )
            assert ok.status_code == 201, (scheme, ok.text)
        by_header = await anonymous.post(
            "/api/workflows", json={}, headers={"X-API-Key": api.admin_key}
        )
        assert by_header.status_code == 201
        health = await anonymous.get("/health")
        assert health.status_code == 200
        # /v1 keeps problem+json; /api/v1 belongs to workflowdev and is not rewritten here
        # (its errors carry the message in ``error``, not thodare's error name).
        v1 = await anonymous.get("/v1/workflows")
        assert v1.headers["content-type"] == "application/problem+json"
        assert v1.json()["code"] == "unauthorized"
        other = await anonymous.get("/api/v1/flows")
        assert other.status_code == 401 and other.json()["code"] == "unauthorized"
        assert other.json()["error"] != "unauthorized" and "message" not in other.json()
    viewer = await api.key("viewer")
    refused = await api.client.post("/api/workflows", json={}, headers=api.auth(viewer))
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"


async def test_a_team_key_works_in_its_namespace(api: ApiHarness) -> None:
    team = await api.key("editor", namespaces=["team"])
    created = await api.client.post("/api/workflows", json={}, headers=api.auth(team))
    assert created.status_code == 201 and created.json()["namespace"] == "team", created.text
    wf_id = created.json()["id"]
    other = await api.key("editor", namespaces=["other"])
    hidden = await api.client.get(f"/api/workflows/{wf_id}", headers=api.auth(other))
    assert hidden.status_code == 404 and hidden.json()["error"] == "not_found"
    gone = await api.client.delete(f"/api/workflows/{wf_id}", headers=api.auth(other))
    assert gone.status_code == 404
    own = await api.client.get(f"/api/workflows/{wf_id}", headers=api.auth(team))
    assert own.status_code == 200


async def test_rate_limit_429_with_retry_after_ms(api: ApiHarness) -> None:
    key = await api.key("viewer", rate_limit_per_minute=3, fresh=True)
    other = await api.key("viewer", rate_limit_per_minute=3, fresh=True)
    url = "/api/workflows/00000000-0000-0000-0000-000000000000"
    codes = [(await api.client.get(url, headers=api.auth(key))).status_code for _ in range(3)]
    assert codes == [404, 404, 404]
    limited = await api.client.get(url, headers=api.auth(key))
    assert limited.status_code == 429
    body = limited.json()
    assert body["error"] == "rate_limited" and 0 < body["retryAfterMs"] <= 60_000
    # Buckets are per key: another key is not starved.
    assert (await api.client.get(url, headers=api.auth(other))).status_code == 404


async def test_catalogue_full_by_default_and_summary(api: ApiHarness) -> None:
    full = (await api.client.get("/api/connectors")).json()["data"]
    assert full and {"type", "inputSchema", "outputSchema"} <= set(full[0])
    summary = (await api.client.get("/api/connectors", params={"detail": "summary"})).json()
    assert set(summary["data"][0]) == {"type", "name", "category", "description"}
    # thodare's entry block is in the catalogue, where the LLM looks for what exists.
    assert full[0]["type"] == summary["data"][0]["type"] == "trigger_webhook"
    trigger = await api.client.get("/api/connectors/trigger_webhook")
    assert trigger.status_code == 200 and trigger.json()["category"] == "trigger"
    one = await api.client.get("/api/connectors/util.log")
    assert one.status_code == 200 and one.json()["type"] == "util.log"
    missing = await api.client.get("/api/connectors/nope.nope")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


async def test_run_logs_and_cancel(api_with_worker: ApiHarness) -> None:
    api = api_with_worker
    wf = await create(api)
    assert (await patch(api, wf["id"], TRIGGER_AND_LOG)).json()["ok"] is True
    started = await api.client.post(
        f"/api/workflows/{wf['id']}/run",
        json={"input": {"who": "Ada"}, "idempotencyKey": "once"},
    )
    assert started.status_code == 202, started.text
    run_id = started.json()["runId"]
    again = await api.client.post(
        f"/api/workflows/{wf['id']}/run",
        json={"input": {"who": "Ada"}, "idempotencyKey": "once"},
    )
    assert again.json()["runId"] == run_id
    done = await until_state(api, run_id, "completed", "failed")
    assert done["state"] == "completed", done
    assert done["output"]["outputs"]["trg"] == {"who": "Ada"}
    assert "say" in done["output"]["outputs"]

    logs = await api.client.get(f"/api/runs/{run_id}/logs", params={"limit": 1})
    assert logs.status_code == 200
    page = logs.json()
    assert len(page["data"]) == 1 and page["pagination"]["next"]
    rest = await api.client.get(
        f"/api/runs/{run_id}/logs", params={"after": page["pagination"]["next"]}
    )
    names = {item["name"] for item in page["data"] + rest.json()["data"]}
    assert names == {"trg", "say"}
    assert (await api.client.get("/api/runs/nope/logs")).status_code == 404

    waiting = await create(api)
    ops = [
        {
            "operation_type": "add",
            "block_id": "w",
            "type": "wait.signal",
            "params": {"name": "never"},
        }
    ]
    assert (await patch(api, waiting["id"], ops)).json()["ok"] is True
    run = await api.client.post(f"/api/workflows/{waiting['id']}/run")
    assert run.status_code == 202, run.text
    parked = run.json()["runId"]
    await until_state(api, parked, "sleeping")
    cancel = await api.client.post(f"/api/runs/{parked}/cancel")
    assert cancel.status_code == 204
    assert (await until_state(api, parked, "canceled"))["status"] == "cancelled"
    again_cancel = await api.client.post(f"/api/runs/{parked}/cancel")
    assert again_cancel.status_code == 409 and again_cancel.json()["error"] == "RUN_NOT_ACTIVE"


async def test_schedules_tick_and_webhooks(api_with_worker: ApiHarness) -> None:
    api = api_with_worker
    wf = await create(api)
    await patch(api, wf["id"], TRIGGER_AND_LOG)
    bad = await api.client.post(
        "/api/schedules", json={"workflowId": wf["id"], "cron": "not a cron"}
    )
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_cron"
    created = await api.client.post(
        "/api/schedules",
        json={"id": "every-minute", "workflowId": wf["id"], "cron": "* * * * *", "payload": {}},
    )
    assert created.status_code == 201, created.text
    schedule = created.json()
    assert schedule["workflowId"] == wf["id"] and schedule["name"] == "every-minute"
    listed = (await api.client.get("/api/schedules")).json()["data"]
    assert [s["id"] for s in listed] == [schedule["id"]]
    tick = await api.client.post("/api/admin/tick")
    assert tick.status_code == 200
    assert {"fired", "failed", "skippedAlreadyFired", "skippedNotMatching"} <= set(tick.json())
    # The next slot is the next minute: nothing fires yet, and nothing failed.
    assert tick.json()["fired"] == [] and tick.json()["failed"] == []
    assert (await api.client.delete(f"/api/schedules/{schedule['id']}")).status_code == 204
    assert (await api.client.get("/api/schedules")).json()["data"] == []

    trigger = await api.client.post(
        "/v1/triggers", json={"key": "thodare-hook", "workflowId": wf["id"]}
    )
    assert trigger.status_code == 201, trigger.text
    delivered = await api.client.post("/api/webhooks/thodare-hook", json={"who": "hook"})
    assert delivered.status_code == 202, delivered.text
    done = await until_state(api, delivered.json()["runId"], "completed", "failed")
    assert done["state"] == "completed"
    unknown = await api.client.post("/api/webhooks/no-such-hook", json={})
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"
    async with api.client_for(None) as anonymous:
        refused = await anonymous.post("/api/webhooks/thodare-hook", json={})
        assert refused.status_code == 401
