"""Schedules through HTTP and the tick, on SQLite and PostgreSQL.

The tick takes its clock as an argument, so downtime and restarts are simulated exactly:
"restart" here is a second :class:`Store` (as a new process would open) ticking the same
database at a later time.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from api_support import ApiHarness, api_fixture  # noqa: F401  (the ``api`` fixture)

from flowplane.engine.scheduler import TickResult, tick
from flowplane.services.caller import Caller
from flowplane.store import schema as t
from flowplane.store.base import Store

MINUTE_MS = 60_000


def workflow_doc(name: str, namespace: str = "default", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace,
        "inputs": {"type": "object", "properties": {"n": {"type": "integer"}}},
        "nodes": [{"id": "a", "type": "util.log", "params": {"message": "{{ input.n }}"}}],
        **extra,
    }


async def make_workflow(api: ApiHarness, name: str, **extra: Any) -> dict[str, Any]:
    response = await api.client.post("/v1/workflows", json=workflow_doc(name, **extra))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def make_schedule(api: ApiHarness, **fields: Any) -> dict[str, Any]:
    response = await api.client.post("/v1/schedules", json=fields)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_crud(api: ApiHarness) -> None:
    wf = await make_workflow(api, "nightly")
    created = await make_schedule(
        api,
        workflowId=wf["id"],
        name="every-morning",
        cron="0 8 * * 1-5",
        timezone="Europe/Paris",
        input={"n": 1},
        catchup="all",
        catchupWindowSeconds=600,
    )
    assert created["owner"] == "api" and created["enabled"] is True
    assert created["namespace"] == "default" and created["workflowId"] == wf["id"]
    assert created["nextFireAtMs"] > 0 and created["nextFireAt"].endswith("Z")
    got = await api.client.get(f"/v1/schedules/{created['id']}")
    assert got.status_code == 200 and got.json()["recentFires"] == []

    listed = (await api.client.get("/v1/schedules", params={"workflowId": wf["id"]})).json()
    assert [s["id"] for s in listed["items"]] == [created["id"]]

    patched = await api.client.patch(
        f"/v1/schedules/{created['id']}", json={"cron": "@hourly", "timezone": "UTC"}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["cron"] == "@hourly"
    assert patched.json()["nextFireAtMs"] % 3_600_000 == 0
    disabled = await api.client.patch(f"/v1/schedules/{created['id']}", json={"enabled": False})
    assert disabled.json()["enabled"] is False

    by_name = await make_schedule(api, workflow="nightly", namespace="default", cron="* * * * *")
    assert by_name["workflowId"] == wf["id"] and by_name["name"].startswith("schedule-")
    duplicate = await api.client.post(
        "/v1/schedules", json={"workflowId": wf["id"], "name": "every-morning", "cron": "@daily"}
    )
    assert duplicate.status_code == 409

    assert (await api.client.delete(f"/v1/schedules/{created['id']}")).status_code == 204
    missing = await api.client.get(f"/v1/schedules/{created['id']}")
    assert missing.status_code == 404 and missing.json()["code"] == "schedule_not_found"


async def test_invalid_cron_and_fields_are_400(api: ApiHarness) -> None:
    wf = await make_workflow(api, "bad-cron")
    response = await api.client.post(
        "/v1/schedules", json={"workflowId": wf["id"], "cron": "61 * * * *"}
    )
    assert response.status_code == 400
    problem = response.json()
    assert problem["code"] == "invalid_cron"
    assert problem["detail"] == (
        "invalid cron expression '61 * * * *': minute value 61 is out of range 0-59"
    )
    assert problem["field"] == "minute"
    zone = await api.client.post(
        "/v1/schedules", json={"workflowId": wf["id"], "cron": "* * * * *", "timezone": "Nowhere"}
    )
    assert zone.status_code == 400 and zone.json()["code"] == "invalid_timezone"
    dates = await api.client.post(
        "/v1/schedules",
        json={
            "workflowId": wf["id"],
            "cron": "* * * * *",
            "startAt": "2030-01-02T00:00:00Z",
            "endAt": "2030-01-01T00:00:00Z",
        },
    )
    assert dates.status_code == 400 and "endAt is before startAt" in dates.json()["detail"]
    policy = await api.client.post(
        "/v1/schedules", json={"workflowId": wf["id"], "cron": "* * * * *", "catchup": "some"}
    )
    assert policy.status_code == 400
    unknown = await api.client.post("/v1/schedules", json={"workflowId": "nope", "cron": "@daily"})
    assert unknown.status_code == 404
    sched = await make_schedule(api, workflowId=wf["id"], cron="@daily")
    patched = await api.client.patch(f"/v1/schedules/{sched['id']}", json={"cron": "* * 32 * *"})
    assert patched.status_code == 400 and patched.json()["code"] == "invalid_cron"
    null = await api.client.patch(f"/v1/schedules/{sched['id']}", json={"cron": None})
    assert null.status_code == 400


async def test_roles_and_namespaces(api: ApiHarness) -> None:
    wf = await make_workflow(api, "guarded", namespace="team-a")
    sched = await make_schedule(api, workflowId=wf["id"], cron="@daily")
    executor = await api.key("executor")
    other = await api.key("editor", namespaces=["team-b"])
    async with api.client_for(executor) as as_executor:
        assert (await as_executor.get("/v1/schedules")).status_code == 403
        assert (await as_executor.post("/v1/admin/tick")).status_code == 403
    async with api.client_for(other) as as_other:
        assert (await as_other.get(f"/v1/schedules/{sched['id']}")).status_code == 404
        assert (await as_other.get("/v1/schedules")).json()["items"] == []
        forbidden = await as_other.post(
            "/v1/schedules", json={"workflowId": wf["id"], "cron": "@daily"}
        )
        assert forbidden.status_code == 404
    editor = await api.key("editor")
    async with api.client_for(editor) as as_editor:
        assert (await as_editor.post("/v1/admin/tick")).status_code == 403
    async with api.client_for(None) as anonymous:
        assert (await anonymous.get("/v1/schedules")).status_code == 401


async def test_workflow_declared_schedules_follow_the_document(api: ApiHarness) -> None:
    triggers = [
        {"type": "schedule", "cron": "0 8 * * *", "timezone": "Europe/Paris", "input": {"n": 2}},
        {"type": "schedule", "name": "weekly", "cron": "@weekly"},
    ]
    wf = await make_workflow(api, "declared", triggers=triggers)
    listed = (await api.client.get("/v1/schedules", params={"workflowId": wf["id"]})).json()
    by_name = {s["name"]: s for s in listed["items"]}
    assert set(by_name) == {"schedule-1", "weekly"}
    first = by_name["schedule-1"]
    assert first["owner"] == "workflow" and first["timezone"] == "Europe/Paris"
    assert first["input"] == {"n": 2}

    # Only ``enabled`` can be changed here; deleting is refused.
    refused = await api.client.patch(f"/v1/schedules/{first['id']}", json={"cron": "@daily"})
    assert refused.status_code == 409
    assert (await api.client.delete(f"/v1/schedules/{first['id']}")).status_code == 409
    paused = await api.client.patch(f"/v1/schedules/{first['id']}", json={"enabled": False})
    assert paused.status_code == 200

    # A new version: schedule-1 changes (keeps its id and pause), weekly goes, daily comes.
    changed = workflow_doc(
        "declared",
        triggers=[
            {"type": "schedule", "cron": "30 9 * * *", "timezone": "Europe/Paris"},
            {"type": "schedule", "name": "daily", "cron": "@daily"},
        ],
    )
    updated = await api.client.put(
        f"/v1/workflows/{wf['id']}", json=changed, headers={"If-Match": '"1"'}
    )
    assert updated.status_code == 200, updated.text
    listed = (await api.client.get("/v1/schedules", params={"workflowId": wf["id"]})).json()
    by_name = {s["name"]: s for s in listed["items"]}
    assert set(by_name) == {"schedule-1", "daily"}
    assert by_name["schedule-1"]["id"] == first["id"]
    assert by_name["schedule-1"]["cron"] == "30 9 * * *"
    assert by_name["schedule-1"]["enabled"] is False

    # An invalid cron in a document rejects the whole write, with the precise message.
    broken = workflow_doc("declared", triggers=[{"type": "schedule", "cron": "0 25 * * *"}])
    response = await api.client.put(
        f"/v1/workflows/{wf['id']}", json=broken, headers={"If-Match": '"2"'}
    )
    assert response.status_code == 400 and response.json()["code"] == "invalid_cron"
    assert "hour value 25 is out of range 0-23" in response.json()["detail"]
    other = await api.client.post(
        "/v1/workflows", json=workflow_doc("other", triggers=broken["triggers"])
    )
    assert other.status_code == 400

    # Deleting the workflow deletes its schedules.
    assert (await api.client.delete(f"/v1/workflows/{wf['id']}")).status_code == 204
    listed = (await api.client.get("/v1/schedules", params={"workflowId": wf["id"]})).json()
    assert listed["items"] == []


async def test_trigger_now_and_admin_tick(api: ApiHarness) -> None:
    wf = await make_workflow(api, "manual")
    sched = await make_schedule(api, workflowId=wf["id"], cron="@yearly", input={"n": 5})
    response = await api.client.post(f"/v1/schedules/{sched['id']}/trigger")
    assert response.status_code == 202, response.text
    run_id = response.json()["runId"]
    run = await api.services.runs.get(Caller.system(), run_id)
    assert run.trigger == "schedule" and run.input == {"n": 5}
    override = await api.client.post(
        f"/v1/schedules/{sched['id']}/trigger", json={"input": {"n": 6}}
    )
    assert (await api.services.runs.get(Caller.system(), override.json()["runId"])).input == {
        "n": 6
    }

    ticked = await api.client.post("/v1/admin/tick")
    assert ticked.status_code == 200
    assert set(ticked.json()) == {
        "fired",
        "failed",
        "skippedAlreadyFired",
        "skippedNotMatching",
        "skippedExpired",
        "runIds",
    }


# --- the tick: exactly once, catch-up after a restart ----------------------------------------


async def _fires(store: Store) -> list[tuple[str, int, str | None]]:
    def read(tx: Any) -> list[tuple[str, int, str | None]]:
        c = t.schedule_fires.c
        query = sa.select(c.schedule_id, c.slot_ms, c.run_id).order_by(c.schedule_id, c.slot_ms)
        return [tuple(r) for r in tx.conn.execute(query)]

    return await store.read(read)


async def test_concurrent_ticks_fire_each_slot_once(api: ApiHarness) -> None:
    """Three stores (three "processes") tick the same database at the same instants."""
    wf = await make_workflow(api, "racy")
    sched = await make_schedule(api, workflowId=wf["id"], cron="* * * * *", catchup="all")
    start = sched["nextFireAtMs"]
    url, schema = api.settings.database_url, api.settings.database_schema
    stores = [await Store.open(url, schema=schema, migrate=False) for _ in range(3)]
    try:
        total = TickResult()
        for minute in range(4):
            now = start + minute * MINUTE_MS + 500
            results = await asyncio.gather(*(tick(s, now) for s in stores for _ in range(2)))
            for r in results:
                total.fired += r.fired
                total.skipped_already_fired += r.skipped_already_fired
                total.failed += r.failed
    finally:
        for s in stores:
            await s.close()
    fires = await _fires(api.services.store)
    assert [slot for _, slot, _ in fires] == [start + m * MINUTE_MS for m in range(4)]
    assert total.fired == 4 and total.failed == 0
    keys = await api.services.store.read(
        lambda tx: [r[0] for r in tx.conn.execute(sa.select(t.runs.c.idempotency_key))]
    )
    assert len(keys) == 4
    assert set(keys) == {f"schedule:{sched['id']}:{start + m * MINUTE_MS}" for m in range(4)}


async def test_restart_applies_each_catchup_policy(api: ApiHarness, tmp_path: Path) -> None:
    wf = await make_workflow(api, "downtime")
    schedules = {
        policy: await make_schedule(
            api,
            workflowId=wf["id"],
            name=policy,
            cron="* * * * *",
            catchup=policy,
            catchupWindowSeconds=300,
        )
        for policy in ("skip", "latest", "all")
    }
    start = schedules["skip"]["nextFireAtMs"]
    assert all(s["nextFireAtMs"] == start for s in schedules.values())
    url, schema = api.settings.database_url, api.settings.database_schema

    # Process one: on time for the first slot, then it dies.
    first = await Store.open(url, schema=schema, migrate=False)
    on_time = await tick(first, start + 200)
    await first.close()
    assert on_time.fired == 3

    # Down for ten minutes; a new process starts 20 s after the 10th missed slot.
    second = await Store.open(url, schema=schema, migrate=False)
    now = start + 10 * MINUTE_MS + 20_000
    try:
        after = await tick(second, now)
        again = await tick(second, now + 1000)
    finally:
        await second.close()
    fires = await _fires(api.services.store)
    slots = {
        policy: sorted(slot for sid, slot, _ in fires if sid == s["id"])
        for policy, s in schedules.items()
    }
    assert slots["skip"] == [start]
    assert slots["latest"] == [start, start + 10 * MINUTE_MS]
    # ``all`` catches up only within its 5-minute window: slots 6..10 minutes.
    assert slots["all"] == [start] + [start + m * MINUTE_MS for m in range(6, 11)]
    assert after.fired == 1 + 5
    assert after.skipped_expired == 10 + 9 + 5
    assert again.fired == 0 and again.skipped_already_fired == 0
    for policy, s in schedules.items():
        row = (await api.client.get(f"/v1/schedules/{s['id']}")).json()
        assert row["nextFireAtMs"] == start + 11 * MINUTE_MS, policy
    latest = (await api.client.get(f"/v1/schedules/{schedules['latest']['id']}")).json()
    assert latest["lastFiredSlotMs"] == start + 10 * MINUTE_MS
    assert [f["slotMs"] for f in latest["recentFires"]] == [start + 10 * MINUTE_MS, start]


async def test_fire_failure_is_recorded_once(api: ApiHarness) -> None:
    wf = await make_workflow(api, "needs-int")
    sched = await make_schedule(
        api, workflowId=wf["id"], cron="* * * * *", input={"n": "not a number"}
    )
    start = sched["nextFireAtMs"]
    result = await tick(api.services.store, start + 100)
    assert result.failed == 1 and result.fired == 0
    again = await tick(api.services.store, start + MINUTE_MS + 100)
    assert again.failed == 1
    got = (await api.client.get(f"/v1/schedules/{sched['id']}")).json()
    assert [f["status"] for f in got["recentFires"]] == ["failed", "failed"]
    assert got["recentFires"][0]["error"]["code"] == "input_invalid"
