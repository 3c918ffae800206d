"""Empty drafts through ``/v1``: a workflow from ``{}`` is stored, patched, and not run.

An LLM repair loop starts from nothing: ``POST /v1/workflows`` with ``{}`` (or a name and no
nodes) stores a draft at version 1, EditOps fill it in, and running it before it has nodes
is a 400 ``workflow_empty``, never a 500. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from api_support import ApiHarness, api_fixture  # noqa: F401  (the ``api`` fixture)


async def test_empty_body_is_a_draft_that_ops_fill_in(api: ApiHarness) -> None:
    created = await api.client.post("/v1/workflows", json={})
    assert created.status_code == 201, created.text
    draft = created.json()
    assert draft["version"] == 1 and draft["name"].startswith("draft-")
    assert draft["document"]["nodes"] == []
    wf_id = draft["id"]

    run = await api.client.post(f"/v1/workflows/{wf_id}/runs", json={"input": {}})
    assert run.status_code == 400, run.text
    problem = run.json()
    assert problem["code"] == "workflow_empty"
    assert [e["code"] for e in problem["errors"]] == ["workflow_empty"]

    ops: list[dict[str, Any]] = [
        {"op": "set", "field": "name", "value": "greeter"},
        {"op": "add", "node_id": "hello", "type": "util.log", "params": {"message": "hi"}},
    ]
    patched = await api.client.post(
        f"/v1/workflows/{wf_id}/operations", json={"ops": ops}, headers={"If-Match": '"1"'}
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["ok"] is True and body["version"] == 2, body
    got = (await api.client.get(f"/v1/workflows/{wf_id}")).json()
    assert got["name"] == "greeter" and [n["id"] for n in got["document"]["nodes"]] == ["hello"]

    run = await api.client.post(f"/v1/workflows/{wf_id}/runs", json={"input": {}})
    assert run.status_code == 201, run.text


async def test_named_draft_without_nodes_and_its_edits(api: ApiHarness) -> None:
    created = await api.client.post("/v1/workflows", json={"name": "later", "nodes": []})
    assert created.status_code == 201, created.text
    wf_id = created.json()["id"]
    assert created.json()["name"] == "later"

    # An edit that adds nothing is still saved: the draft is a workflow, only an empty one.
    described = await api.client.post(
        f"/v1/workflows/{wf_id}/operations",
        json={"ops": [{"op": "set", "field": "description", "value": "to do"}]},
    )
    body = described.json()
    assert described.status_code == 200 and body["version"] == 2, body
    assert body["ok"] is False
    assert [e["code"] for e in body["validation_errors"]] == ["workflow_empty"]
    assert '"op": "add"' in body["summary"]

    # A run by name is refused the same way, with the stable code.
    run = await api.client.post("/v1/runs", json={"workflow": "later"})
    assert run.status_code == 400 and run.json()["code"] == "workflow_empty", run.text


async def test_a_draft_is_not_a_way_around_validation(api: ApiHarness) -> None:
    bad = await api.client.post(
        "/v1/workflows", json={"nodes": [{"id": "a", "type": "util.nope", "params": {}}]}
    )
    assert bad.status_code == 400 and bad.json()["code"] == "workflow_invalid", bad.text
    text = await api.client.post(
        "/v1/workflows", content="{}", headers={"Content-Type": "application/yaml"}
    )
    assert text.status_code == 201 and text.json()["name"].startswith("draft-"), text.text
