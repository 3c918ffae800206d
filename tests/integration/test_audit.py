"""The audit log: written in the mutation's transaction, read with filters, API and CLI."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from api_support import ApiHarness, api_fixture, started  # noqa: F401  (the api fixture)
from typer.testing import CliRunner

from flowplane.cli.main import app as cli
from flowplane.security.crypto import KeyRing, generate_key, key_id_of
from flowplane.services.caller import Caller
from flowplane.services.credentials import CredentialService
from flowplane.store import audit
from flowplane.store.audit import Actor
from flowplane.store.base import Store
from flowplane.store.tx import Tx

BOB = Actor("bob", "user", "u_1", "req-1")


async def _write(store: Store, **kwargs: Any) -> None:
    def fn(tx: Tx) -> None:
        audit.record(tx, **kwargs)

    await store.transact(fn)


async def test_record_filters_and_pagination(store: Store) -> None:
    await _write(
        store,
        actor=BOB,
        action="kv.set",
        namespace="a",
        target_type="kv",
        target_id="k1",
        after_version=1,
        details={"ttlSeconds": 5, "Password": "hunter2", "nested": [{"token": "t0k"}]},
    )
    await _write(
        store,
        actor="scheduler",
        actor_kind="system",
        action="schedule.fire",
        namespace="b",
        target_type="schedule",
        target_id="s1",
    )
    await _write(
        store,
        actor=BOB,
        action="kv_x.set",
        namespace="a",
        target_type="kv",
        target_id="k2",
        request_id="req-2",
    )
    await _write(
        store,
        actor=BOB,
        action="api_key.create",
        namespace=None,
        target_type="api_key",
        target_id="key_1",
    )

    def entries(before_id: int | None = None, limit: int = 100, **filters: Any) -> Any:
        where = audit.AuditFilter(**filters)
        return store.read(
            lambda tx: audit.list_entries(tx, where, before_id=before_id, limit=limit)
        )

    everything = await entries()
    assert [e.target_id for e in everything] == ["key_1", "k2", "s1", "k1"]  # newest first
    first = everything[-1]
    assert first.actor == "bob" and first.actor_kind == "user" and first.actor_id == "u_1"
    assert first.request_id == "req-1" and first.after_version == 1
    assert first.details == {
        "ttlSeconds": 5,
        "Password": "[REDACTED]",
        "nested": [{"token": "[REDACTED]"}],
    }
    assert [e.target_id for e in await entries(namespaces=["a"])] == ["k2", "k1"]
    # A prefix ending with "." does not match "kv_x." ("_" is not a wildcard).
    assert [e.target_id for e in await entries(action="kv.")] == ["k1"]
    assert [e.target_id for e in await entries(action="kv*")] == ["k2", "k1"]
    assert [e.target_id for e in await entries(actor="u_1", limit=1)] == ["key_1"]
    assert [e.target_id for e in await entries(request_id="req-2")] == ["k2"]
    assert [e.target_id for e in await entries(target_type="schedule")] == ["s1"]
    assert await entries(before_id=first.id) == []
    assert len(await entries(since_ms=first.ts_ms, until_ms=first.ts_ms + 60_000)) == 4


async def test_entry_rolls_back_with_its_mutation(store: Store) -> None:
    class Boom(Exception):
        pass

    def fn(tx: Tx) -> None:
        audit.record(tx, actor=BOB, action="kv.set", namespace="a", target_type="kv", target_id="k")
        raise Boom

    with pytest.raises(Boom):
        await store.transact(fn)
    assert await store.read(lambda tx: audit.list_entries(tx)) == []


async def test_api_filters_roles_and_request_ids(api: ApiHarness) -> None:
    c = api.client
    r = await c.put("/v1/kv/team-a/x", json={"value": 1}, headers={"X-Request-Id": "bad id!"})
    generated = r.headers["x-request-id"]
    assert generated.startswith("req_") and generated != "bad id!"
    await c.put("/v1/kv/team-b/y", json={"value": 1}, headers={"X-Request-Id": "trace-42"})
    await c.put("/v1/kv/team-b/y", json={"value": 2})

    page = (await c.get("/v1/audit", params={"limit": 2, "targetType": "kv"})).json()
    assert len(page["items"]) == 2 and page["nextCursor"]
    params = {"cursor": page["nextCursor"], "targetType": "kv"}
    rest = (await c.get("/v1/audit", params=params)).json()
    items = page["items"] + rest["items"]
    assert [
        (i["namespace"], i["targetId"], i["beforeVersion"], i["afterVersion"]) for i in items
    ] == [
        ("team-b", "y", 1, 2),
        ("team-b", "y", None, 1),
        ("team-a", "x", None, 1),
    ]
    assert items[2]["requestId"] == generated and items[1]["requestId"] == "trace-42"
    assert items[0]["actorKind"] == "api_key" and items[0]["timestamp"].endswith("Z")
    found = (await c.get("/v1/audit", params={"requestId": "trace-42"})).json()["items"]
    assert [i["targetId"] for i in found] == ["y"]

    team_admin = await api.key("admin", namespaces=["team-a"])
    async with api.client_for(team_admin) as as_team_admin:
        visible = (await as_team_admin.get("/v1/audit")).json()["items"]
        assert {i["namespace"] for i in visible} == {"team-a"}  # global entries are hidden
        none = await as_team_admin.get("/v1/audit", params={"namespace": "team-b"})
        assert none.json()["items"] == []
    editor = await api.key("editor")
    assert (await c.get("/v1/audit", headers=api.auth(editor))).status_code == 403
    assert (await c.get("/v1/audit", params={"limit": 0})).status_code == 400


def test_cli_audit_and_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    old_key, new_key = generate_key(), generate_key()
    monkeypatch.setenv("FLOWPLANE_DATABASE_URL", url)
    monkeypatch.setenv("FLOWPLANE_SECRET_KEY", old_key)
    monkeypatch.delenv("FLOWPLANE_URL", raising=False)
    runner = CliRunner()

    r = runner.invoke(
        cli,
        ["secrets", "set", "API_TOKEN", "-n", "ops", "--value-stdin", "--create"],
        input="s3cret-value\n",
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["secrets", "set", "API_TOKEN", "-n", "ops"], input="s3cret-2\n")
    assert r.exit_code == 0 and "updated" in r.output
    r = runner.invoke(cli, ["secrets", "list", "--json"])
    assert r.exit_code == 0
    (listed,) = json.loads(r.stdout)
    assert listed["name"] == "API_TOKEN" and listed["version"] == 2
    assert "s3cret" not in r.output

    r = runner.invoke(cli, ["secrets", "rotate-key", "--new-key", new_key])
    assert r.exit_code == 0, r.output
    assert "Re-encrypted 1 credential" in r.output

    async def check() -> str:
        store = await Store.open(url)
        try:
            service = CredentialService(store, KeyRing.parse(new_key))
            resolved = await service.resolve("ops", ["API_TOKEN"])
            page = await service.list(Caller.system())
            assert key_id_of(page.items[0].key_id + ":") is None  # a bare id, not an envelope
            return resolved["API_TOKEN"] + "|" + page.items[0].key_id
        finally:
            await store.close()

    value, kid = asyncio.run(check()).split("|")
    assert value == "s3cret-2" and kid == KeyRing.parse(new_key).current.kid

    r = runner.invoke(cli, ["audit", "--json", "--action", "credential."])
    assert r.exit_code == 0, r.output
    actions = [i["action"] for i in json.loads(r.stdout)]
    assert actions == ["credential.rotate_key", "credential.update", "credential.create"]
    r = runner.invoke(cli, ["audit", "--limit", "1"])
    assert r.exit_code == 0 and "action" in r.output and "cred_" in r.output
    assert "s3cret" not in r.output
    r = runner.invoke(cli, ["secrets", "generate-key"])
    assert r.exit_code == 0 and len(r.stdout.strip()) == 44


async def test_workflow_and_auth_mutations_are_audited(api: ApiHarness) -> None:
    c = api.client
    editor = await api.key("editor", name="wf-editor")
    doc = {
        "name": "audited",
        "nodes": [{"id": "a", "type": "util.log", "params": {"message": "x"}}],
    }
    async with api.client_for(editor) as as_editor:
        r = await as_editor.post("/v1/workflows", json=doc, headers={"X-Request-Id": "wf-1"})
        assert r.status_code == 201, r.text
        wf_id = r.json()["id"]
        changed = {**doc, "description": "changed"}
        r = await as_editor.put(f"/v1/workflows/{wf_id}", json=changed, headers={"If-Match": '"1"'})
        assert r.status_code == 200, r.text
        assert (await as_editor.delete(f"/v1/workflows/{wf_id}")).status_code == 204
    items = (await c.get("/v1/audit", params={"targetType": "workflow"})).json()["items"]
    assert [(i["action"], i["beforeVersion"], i["afterVersion"]) for i in items] == [
        ("workflow.delete", 2, None),
        ("workflow.update", 1, 2),
        ("workflow.create", None, 1),
    ]
    assert {i["actor"] for i in items} == {"wf-editor"}
    assert items[-1]["requestId"] == "wf-1" and items[-1]["details"] == {"name": "audited"}

    r = await c.post("/v1/auth/tokens", json={"name": "ci", "role": "viewer"})
    assert r.status_code == 201, r.text
    keys = (await c.get("/v1/audit", params={"action": "api_key."})).json()["items"]
    created = [i for i in keys if i["details"]["name"] == "ci"]
    assert len(created) == 1 and created[0]["actorKind"] == "api_key"
    assert "fp_" not in json.dumps(keys)  # never a key


async def test_run_mutations_are_audited(api: ApiHarness) -> None:
    c = api.client
    doc = {
        "name": "ask",
        "nodes": [{"id": "a", "type": "control.approval", "params": {"title": "ok?"}}],
    }
    wf_id = (await c.post("/v1/workflows", json=doc)).json()["id"]
    executor = await api.key("executor", name="runner")
    async with api.client_for(executor) as as_executor:
        r = await as_executor.post(f"/v1/workflows/{wf_id}/runs", json={})
        assert r.status_code == 201, r.text
        run_id = r.json()["runId"]
        assert (await as_executor.post(f"/v1/runs/{run_id}/cancel")).status_code == 200
    items = (await c.get("/v1/audit", params={"targetType": "run"})).json()["items"]
    assert [(i["action"], i["actor"], i["targetId"]) for i in items] == [
        ("run.cancel", "runner", run_id),
        ("run.start", "runner", run_id),
    ]
    assert items[1]["details"] == {"workflow": "ask", "trigger": "api"}
    assert items[0]["namespace"] == "default"


def test_cli_audit_remote_pages_through(monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    seen: list[httpx.Request] = []
    entry = {
        "id": 2,
        "tsMs": 1_700_000_000_000,
        "actor": "ci",
        "actorKind": "api_key",
        "action": "kv.set",
        "namespace": "default",
        "targetType": "kv",
        "targetId": "k",
        "beforeVersion": None,
        "afterVersion": 1,
        "requestId": "r1",
    }

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if "cursor" in request.url.params:
            return httpx.Response(200, json={"items": [{**entry, "id": 1}], "nextCursor": None})
        return httpx.Response(200, json={"items": [entry], "nextCursor": "2"})

    real_client = httpx.Client
    monkeypatch.setattr(
        httpx,
        "Client",
        lambda **kw: real_client(transport=httpx.MockTransport(handler), **kw),
    )
    r = CliRunner().invoke(
        cli, ["audit", "--server", "http://fp.test", "--token", "fp_x", "--json", "-n", "default"]
    )
    assert r.exit_code == 0, r.output
    assert [i["id"] for i in json.loads(r.stdout)] == [2, 1]
    assert seen[0].headers["authorization"] == "Bearer fp_x"
    assert seen[0].url.params["namespace"] == "default" and seen[1].url.params["cursor"] == "2"
