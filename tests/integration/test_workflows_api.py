"""The workflows API through HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from api_support import ApiHarness, started

from flowplane.services.caller import Caller

ORDER_YAML = """\
name: order-followup
description: Fetch an order, then log it.
inputs:
  type: object
  required: [order_id]
  properties: {order_id: {type: integer}}
nodes:
  - id: fetch
    type: util.set
    params: {value: {total: 120}}
  - id: report
    type: util.log
    params:
      message: "order {{ input.order_id }}: {{ nodes.fetch.output.value.total }}"
"""


@pytest.fixture
async def api(db: tuple[str, str], tmp_path: Path) -> AsyncIterator[ApiHarness]:
    """A started app without a worker (runs stay where dispatch left them)."""
    async with started(db, tmp_path / "root") as harness:
        yield harness


def simple(name: str, namespace: str | None = None, message: str = "hi") -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": name,
        "nodes": [{"id": "a", "type": "util.log", "params": {"message": message}}],
    }
    if namespace is not None:
        doc["namespace"] = namespace
    return doc


async def create(api: ApiHarness, doc: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    headers = api.auth(key) if key else None
    response = await api.client.post("/v1/workflows", json=doc, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_create_from_yaml_and_json_then_get(api: ApiHarness) -> None:
    response = await api.client.post(
        "/v1/workflows", content=ORDER_YAML, headers={"Content-Type": "application/yaml"}
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["etag"] == '"1"'
    assert response.headers["location"] == f"/v1/workflows/{created['id']}"
    assert created["name"] == "order-followup" and created["namespace"] == "default"
    assert created["version"] == 1 and created["description"] == "Fetch an order, then log it."
    assert created["document"]["nodes"][1]["id"] == "report"
    assert created["createdAt"].endswith("Z") and created["createdAtMs"] > 0
    assert set(created) >= {"updatedAt", "updatedAtMs", "createdBy"}

    got = await api.client.get(f"/v1/workflows/{created['id']}")
    assert got.status_code == 200 and got.headers["etag"] == '"1"'
    assert got.json() == created
    by_name = await api.client.get("/v1/workflows/order-followup", params={"namespace": "default"})
    assert by_name.json()["id"] == created["id"]

    as_json = await create(api, simple("second", "team"))
    assert as_json["namespace"] == "team"

    duplicate = await api.client.post(
        "/v1/workflows", content=ORDER_YAML, headers={"Content-Type": "text/yaml"}
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "workflow_exists"
    assert duplicate.headers["content-type"].startswith("application/problem+json")

    invalid = simple("broken")
    invalid["nodes"][0]["type"] = "util.lgo"
    response = await api.client.post("/v1/workflows", json=invalid)
    assert response.status_code == 400
    problem = response.json()
    assert problem["code"] == "workflow_invalid"
    assert problem["errors"][0]["code"] == "unknown_type"

    response = await api.client.post(
        "/v1/workflows", content="name: x\nnodes: [", headers={"Content-Type": "application/yaml"}
    )
    assert response.status_code == 400 and response.json()["code"] == "document_invalid"
    response = await api.client.post(
        "/v1/workflows", content="a,b", headers={"Content-Type": "text/csv"}
    )
    assert response.status_code == 415

    viewer = await api.key("viewer")
    response = await api.client.post("/v1/workflows", json=simple("v"), headers=api.auth(viewer))
    assert response.status_code == 403
    assert (await api.client.get("/v1/workflows/nope")).status_code == 404


async def test_list_paginates_and_respects_namespaces(api: ApiHarness) -> None:
    made = [await create(api, simple(f"wf-{i}")) for i in range(5)]
    made += [await create(api, simple(f"team-{i}", "team")) for i in range(2)]

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = (await api.client.get("/v1/workflows", params=params)).json()
        seen += [w["id"] for w in page["items"]]
        pages += 1
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == [w["id"] for w in made] and pages == 3

    team = (await api.client.get("/v1/workflows", params={"namespace": "team"})).json()
    assert [w["name"] for w in team["items"]] == ["team-0", "team-1"]

    team_key = await api.key("editor", namespaces=["team"])
    listed = (await api.client.get("/v1/workflows", headers=api.auth(team_key))).json()
    assert {w["namespace"] for w in listed["items"]} == {"team"}
    foreign = made[0]["id"]
    for method, path in [
        ("GET", f"/v1/workflows/{foreign}"),
        ("GET", f"/v1/workflows/{foreign}/revisions"),
        ("GET", f"/v1/workflows/{foreign}/export"),
        ("DELETE", f"/v1/workflows/{foreign}"),
    ]:
        response = await api.client.request(method, path, headers=api.auth(team_key))
        assert response.status_code == 404, (method, path)
    response = await api.client.post(
        "/v1/workflows", json=simple("mine"), headers=api.auth(team_key)
    )
    assert response.status_code == 403 and response.json()["code"] == "forbidden"
    await create(api, simple("mine", "team"), team_key)


async def test_update_needs_if_match(api: ApiHarness) -> None:
    wf = await create(api, simple("upd"))
    url = f"/v1/workflows/{wf['id']}"
    changed = simple("upd", message="changed")

    response = await api.client.put(url, json=changed)
    assert response.status_code == 428 and response.json()["code"] == "precondition_required"

    response = await api.client.put(url, json=changed, headers={"If-Match": '"1"'})
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == '"2"' and response.json()["version"] == 2

    stale = await api.client.put(
        url, json=simple("upd", message="late"), headers={"If-Match": '"1"'}
    )
    assert stale.status_code == 412
    assert stale.json()["code"] == "version_mismatch" and stale.json()["current"] == 2

    same = await api.client.put(url, json=changed, headers={"If-Match": 'W/"2"'})
    assert same.json()["version"] == 2  # an identical document is not a new version

    renamed = await api.client.put(
        url,
        content="name: upd2\nnodes: [{id: a, type: util.noop}]",
        headers={"If-Match": "*", "Content-Type": "application/yaml"},
    )
    assert renamed.status_code == 200 and renamed.json()["name"] == "upd2"
    moved = await api.client.put(url, json=simple("upd2", "elsewhere"), headers={"If-Match": "*"})
    assert moved.status_code == 400


async def test_soft_delete_keeps_runs_pinned_copy(api: ApiHarness) -> None:
    wf = await create(api, simple("doomed", message="pinned"))
    run = await api.client.post(f"/v1/workflows/{wf['id']}/runs", json={"input": None})
    assert run.status_code == 201, run.text
    run_id = run.json()["runId"]

    deleted = await api.client.delete(f"/v1/workflows/{wf['id']}", headers={"If-Match": '"7"'})
    assert deleted.status_code == 412
    deleted = await api.client.delete(f"/v1/workflows/{wf['id']}")
    assert deleted.status_code == 204
    assert (await api.client.get(f"/v1/workflows/{wf['id']}")).status_code == 404
    assert (await api.client.delete(f"/v1/workflows/{wf['id']}")).status_code == 404
    listed = (await api.client.get("/v1/workflows")).json()
    assert wf["id"] not in [w["id"] for w in listed["items"]]

    assert (await api.client.get(f"/v1/runs/{run_id}")).status_code == 200
    pinned = await api.services.runs.document(Caller.system(), run_id)
    assert pinned["nodes"][0]["params"]["message"] == "pinned"
    # The name is free again.
    assert (await create(api, simple("doomed")))["id"] != wf["id"]


async def test_revisions_and_restore(api: ApiHarness) -> None:
    wf = await create(api, simple("hist", message="one"))
    url = f"/v1/workflows/{wf['id']}"
    await api.client.put(url, json=simple("hist", message="two"), headers={"If-Match": '"1"'})
    await api.client.post(
        f"{url}/operations",
        json={"ops": [{"op": "set", "field": "description", "value": "three"}]},
    )
    revisions = (await api.client.get(f"{url}/revisions")).json()["items"]
    assert [r["version"] for r in revisions] == [3, 2, 1]
    assert revisions[-1]["message"] == "created" and revisions[0]["message"].startswith("edit:")
    assert "document" not in revisions[0] or revisions[0]["document"] is None

    first = (await api.client.get(f"{url}/revisions/1")).json()
    assert first["document"]["nodes"][0]["params"]["message"] == "one"
    assert (await api.client.get(f"{url}/revisions/9")).status_code == 404

    stale = await api.client.post(f"{url}/revisions/1/restore", headers={"If-Match": '"2"'})
    assert stale.status_code == 412 and stale.json()["current"] == 3
    restored = await api.client.post(f"{url}/revisions/1/restore")
    assert restored.status_code == 200 and restored.headers["etag"] == '"4"'
    assert restored.json()["document"] == first["document"]
    latest = (await api.client.get(f"{url}/revisions")).json()["items"][0]
    assert latest["version"] == 4 and latest["message"] == "restored from version 1"


async def test_export_import_round_trip(api: ApiHarness) -> None:
    response = await api.client.post(
        "/v1/workflows", content=ORDER_YAML, headers={"Content-Type": "application/yaml"}
    )
    order = response.json()
    other = await create(api, simple("other", "team"))

    yaml_export = await api.client.get(f"/v1/workflows/{order['id']}/export")
    assert yaml_export.headers["content-type"].startswith("application/yaml")
    assert yaml_export.headers["etag"] == '"1"'
    assert yaml.safe_load(yaml_export.text) == order["document"]
    json_export = await api.client.get(
        f"/v1/workflows/{other['id']}/export", params={"format": "json"}
    )
    assert json.loads(json_export.text) == other["document"]

    # Importing an export into the same server changes nothing.
    again = await api.client.post(
        "/v1/workflows/import",
        content=yaml_export.text,
        headers={"Content-Type": "application/yaml"},
    )
    assert again.status_code == 200, again.text
    assert again.json()["unchanged"] == 1 and again.json()["items"][0]["version"] == 1

    # Delete both, import the exports as one YAML stream: same documents come back.
    for wf in (order, other):
        assert (await api.client.delete(f"/v1/workflows/{wf['id']}")).status_code == 204
    stream = yaml_export.text + "---\n" + yaml.safe_dump(json.loads(json_export.text))
    imported = await api.client.post(
        "/v1/workflows/import", content=stream, headers={"Content-Type": "application/yaml"}
    )
    body = imported.json()
    assert body["created"] == 2 and [i["action"] for i in body["items"]] == ["created"] * 2
    for item, original in zip(body["items"], (order, other), strict=True):
        got = (await api.client.get(f"/v1/workflows/{item['id']}")).json()
        assert got["document"] == original["document"]
        re_export = await api.client.get(f"/v1/workflows/{item['id']}/export")
        if original is order:
            assert re_export.text == yaml_export.text

    # JSON array import: one update, and an all-or-nothing failure.
    changed = simple("other", "team", message="new")
    response = await api.client.post("/v1/workflows/import", json={"workflows": [changed]})
    assert response.json()["items"][0] == {
        **response.json()["items"][0],
        "action": "updated",
        "version": 2,
    }
    bad = simple("bad")
    bad["nodes"][0]["type"] = "nope"
    response = await api.client.post("/v1/workflows/import", json=[simple("fresh"), bad])
    assert response.status_code == 400
    assert response.json()["errors"][0]["index"] == 1
    assert (await api.client.get("/v1/workflows/fresh")).status_code == 404


async def test_validate(api: ApiHarness) -> None:
    response = await api.client.post("/v1/workflows/validate", json=simple("ok"))
    assert response.json()["valid"] is True
    response = await api.client.post(
        "/v1/workflows/validate",
        content="name: v\nnodes:\n  - {id: a, type: util.log, params: {}}\n",
        headers={"Content-Type": "application/yaml"},
    )
    body = response.json()
    assert response.status_code == 200 and body["valid"] is False
    assert body["errors"][0]["code"] == "missing_param" and body["errors"][0]["node_id"] == "a"
    response = await api.client.post(
        "/v1/workflows/validate",
        content="name: v\nnodes:\n  - {id: a}\n",
        headers={"Content-Type": "application/yaml"},
    )
    error = response.json()["errors"][0]
    assert error["code"] == "invalid_document" and error["line"] == 3


async def test_operations_endpoint(api: ApiHarness) -> None:
    wf = await create(api, simple("patchy"))
    url = f"/v1/workflows/{wf['id']}/operations"
    ops = [
        {
            "op": "add",
            "node_id": "b",
            "type": "util.log",
            "params": {"message": "{{ nodes.a.output.message }}"},
        },
        {"op": "add", "node_id": "a", "type": "util.log"},
        {"op": "add", "node_id": "c", "type": "util.lgo"},
        {
            "op": "add",
            "node_id": "d",
            "type": "util.log",
            "needs": ["a"],
            "params": {"message": "{{ nodes.b.output.message }}"},
        },
        {"op": "frobnicate"},
    ]
    response = await api.client.post(url, json={"ops": ops})
    assert response.status_code == 200, response.text
    body = response.json()
    assert response.headers["etag"] == '"2"'
    assert body["ok"] is False and body["version"] == 2 and body["saved"] is True
    assert [n["id"] for n in body["workflow"]["nodes"]] == ["a", "b", "d"]
    assert [s["reason_code"] for s in body["skipped_items"]] == [
        "node_already_exists",
        "node_type_not_registered",
        "invalid_op",
    ]
    assert set(body["skipped_items"][0]) == {
        "index",
        "op",
        "node_id",
        "reason_code",
        "reason",
        "details",
    }
    [error] = body["validation_errors"]
    assert {k: error[k] for k in ("node_id", "node_type", "field", "value")} == {
        "node_id": "d",
        "node_type": "util.log",
        "field": "params",
        "value": "b",
    }
    assert "node 'd' references nodes.b, which is not upstream" in body["summary"]
    assert "its upstream nodes are: a" in body["summary"]
    stored = (await api.client.get(f"/v1/workflows/{wf['id']}")).json()
    assert stored["version"] == 2 and stored["document"] == body["workflow"]

    fix = {"ops": [{"op": "connect", "node_id": "b", "target_node_id": "d"}]}
    stale = await api.client.post(url, json=fix, headers={"If-Match": '"1"'})
    assert stale.status_code == 412 and stale.json()["current"] == 2
    fixed = (await api.client.post(url, json=fix, headers={"If-Match": '"2"'})).json()
    assert fixed["ok"] is True and fixed["version"] == 3 and fixed["validation_errors"] == []

    nothing = (await api.client.post(url, json={"ops": [{"op": "delete", "node_id": "zz"}]})).json()
    assert nothing["saved"] is False and nothing["version"] == 3

    for bad in ([{"op": "delete", "node_id": "a"}], {"ops": "x"}, {"ops": [], "extra": 1}, {}):
        response = await api.client.post(url, json=bad)
        assert response.status_code == 400, bad
    viewer = await api.key("viewer")
    assert (await api.client.post(url, json=fix, headers=api.auth(viewer))).status_code == 403


async def test_run_dispatch_and_idempotency(api: ApiHarness) -> None:
    response = await api.client.post(
        "/v1/workflows", content=ORDER_YAML, headers={"Content-Type": "application/yaml"}
    )
    wf = response.json()
    url = f"/v1/workflows/{wf['id']}/runs"
    executor = await api.key("executor")
    headers = {**api.auth(executor), "Idempotency-Key": "order-7"}

    first = await api.client.post(url, json={"input": {"order_id": 7}}, headers=headers)
    assert first.status_code == 201, first.text
    run = first.json()
    assert run["workflowName"] == "order-followup" and run["workflowId"] == wf["id"]
    assert run["workflowVersion"] == 1 and run["status"] and run["created"] is True

    replay = await api.client.post(url, json={"input": {"order_id": 7}}, headers=headers)
    assert replay.status_code == 200 and replay.json()["runId"] == run["runId"]
    assert replay.json()["created"] is False
    reused = await api.client.post(url, json={"input": {"order_id": 8}}, headers=headers)
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"
    by_field = await api.client.post(
        url,
        json={"input": {"order_id": 7}, "idempotencyKey": "order-7"},
        headers=api.auth(executor),
    )
    assert by_field.json()["runId"] == run["runId"]

    bad_input = await api.client.post(
        url, json={"input": {"order_id": "x"}}, headers=api.auth(executor)
    )
    assert bad_input.status_code == 400 and bad_input.json()["code"] == "input_invalid"
    unknown = await api.client.post(url, json={"input": {}, "what": 1}, headers=api.auth(executor))
    assert unknown.status_code == 400
    viewer = await api.key("viewer")
    forbidden = await api.client.post(
        url, json={"input": {"order_id": 1}}, headers=api.auth(viewer)
    )
    assert forbidden.status_code == 403
    missing = await api.client.post("/v1/workflows/nope/runs", json={}, headers=api.auth(executor))
    assert missing.status_code == 404


async def test_openapi_describes_yaml_bodies_and_etags(api: ApiHarness) -> None:
    spec = (await api.client.get("/openapi.json")).json()
    create_op = spec["paths"]["/v1/workflows"]["post"]
    assert set(create_op["requestBody"]["content"]) >= {
        "application/json",
        "application/yaml",
        "text/yaml",
    }
    assert "ETag" in create_op["responses"]["201"]["headers"]
    put = spec["paths"]["/v1/workflows/{workflow_id}"]["put"]
    assert {"412", "428"} <= set(put["responses"])
    patch = spec["paths"]["/v1/workflows/{workflow_id}/operations"]["post"]
    assert "requestBody" in patch and "400" in patch["responses"]


async def test_concurrent_batches_without_if_match_both_apply(api: ApiHarness) -> None:
    service = api.services.workflows
    system = Caller.system()
    wf = await service.create(system, simple("busy"))

    def add(node_id: str) -> list[Any]:
        return [{"op": "add", "node_id": node_id, "type": "util.noop"}]

    first, second = await asyncio.gather(
        service.patch(system, wf.id, add("x")), service.patch(system, wf.id, add("y"))
    )
    assert {first.version, second.version} == {2, 3}
    final = await service.get(system, wf.id)
    assert final.version == 3
    assert sorted(n["id"] for n in final.document["nodes"]) == ["a", "x", "y"]
    assert [r.version for r in await service.revisions(system, wf.id)] == [3, 2, 1]
