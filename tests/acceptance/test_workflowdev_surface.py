"""workflowdev's REST surface, with the seed's examples sent as printed (``002_*``).

One real ``flowplane serve`` per backend (SQLite, PostgreSQL) for the whole module. Each
request body of the seed is copied verbatim; the comment above it names the seed section.
Where the seed prints a placeholder (``"password": "..."``, ``{id}``), the test fills it.
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from serve_support import Serve, serving
from websockets.sync.client import connect

from conftest import POSTGRES_URL, drop_schema, require_postgres

PASSWORD = "correct horse battery staple"
"""The seed prints ``"password": "..."``: a placeholder (the policy wants 8 characters)."""
TERMINAL = {"SUCCESS", "FAILED", "CANCELLED", "TIMED_OUT"}


@dataclass
class Workflowdev:
    """A server, the seed's registration answer, and its token."""

    server: Serve
    registered: httpx.Response
    token: str

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def auth(self) -> dict[str, str]:
        # Authentication: "# Use token"
        return {"Authorization": f"Bearer {self.token}"}

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.auth, timeout=30)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def wd(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Workflowdev]:
    """``flowplane serve`` with open first registration; the seed's admin registered."""
    base = tmp_path_factory.mktemp(f"workflowdev-{request.param}")
    env = {
        "FLOWPLANE_OPEN_FIRST_REGISTRATION": "true",
        "FLOWPLANE_SECRET_KEY": base64.b64encode(os.urandom(32)).decode(),
    }
    schema = None
    if request.param == "sqlite":
        url, args = f"sqlite:///{base / 'fp.db'}", ()
    else:
        require_postgres()
        schema = f"t_{uuid.uuid4().hex[:12]}"
        url, args = POSTGRES_URL, ("--database-schema", schema)
    try:
        with serving(base, url, *args, env=env, ready_path="/readyz") as server:
            # Authentication: "# Register" (no credentials: the server's first user)
            registered = httpx.post(
                f"{server.url}/auth/register",
                headers={"Content-Type": "application/json"},
                content='{"username": "admin", "password": "' + PASSWORD + '", "role": "admin"}',
            )
            # Authentication: "# Login" ... | jq -r .token
            login = httpx.post(
                f"{server.url}/auth/login",
                headers={"Content-Type": "application/json"},
                content='{"username": "admin", "password": "' + PASSWORD + '"}',
            )
            assert login.status_code == 200, login.text
            yield Workflowdev(server, registered, login.json()["token"])
    finally:
        if schema is not None:
            drop_schema(schema)


@pytest.fixture(scope="module")
def flow(wd: Workflowdev) -> httpx.Response:
    """The seed's "Create a flow", sent once per server."""
    # Flows: "Create a flow"
    return httpx.post(
        f"{wd.url}/api/v1/flows",
        headers={"Content-Type": "application/json", **wd.auth},
        content="""{
    "name": "my-workflow",
    "namespace": "production",
    "yamlContent": "name: my-workflow\\ntasks:\\n  - name: hello\\n    type: util.log\\n    properties:\\n      message: Hello world\\n"
  }""",  # noqa: E501 (the seed's body, verbatim)
    )


def create(c: httpx.Client, name: str, yaml: str, namespace: str = "default") -> str:
    r = c.post("/api/v1/flows", json={"name": name, "namespace": namespace, "yamlContent": yaml})
    assert r.status_code == 201, r.text
    flow_id: str = r.json()["id"]
    return flow_id


def wait_for(c: httpx.Client, execution_id: str, statuses: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        r = c.get(f"/api/v1/executions/{execution_id}")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        if body["execution"]["status"] in statuses or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


# --- Authentication ----------------------------------------------------------------------


def test_register_answers_a_token_and_later_registering_needs_an_admin(wd: Workflowdev) -> None:
    assert wd.registered.status_code == 201, wd.registered.text
    body = wd.registered.json()
    assert body["token"] and body["user"]["role"] == "admin"
    # The first user exists: anonymous registration is closed from now on.
    again = httpx.post(
        f"{wd.url}/auth/register",
        json={"username": "mallory", "password": PASSWORD, "role": "admin"},
    )
    assert again.status_code == 401
    assert again.json()["code"] == "unauthorized" and "admin" in again.json()["error"]


def test_roles_are_hierarchical(wd: Workflowdev, flow: httpx.Response) -> None:
    with wd.client() as c:
        r = c.post(
            "/auth/register", json={"username": "vera", "password": PASSWORD, "role": "viewer"}
        )
        assert r.status_code == 201, r.text
        viewer = {"Authorization": f"Bearer {r.json()['token']}"}
        assert c.get("/api/v1/flows", headers=viewer).status_code == 200
        refused = c.post(
            "/api/v1/flows",
            headers=viewer,
            json={"name": "nope", "yamlContent": "name: nope\ntasks: [{name: a, type: util.noop}]"},
        )
        assert refused.status_code == 403
        assert refused.json()["code"] == "forbidden"
        assert "editor" in refused.json()["error"]
        execute = c.post(f"/api/v1/flows/{flow.json()['id']}/execute", headers=viewer)
        assert execute.status_code == 403


def test_login_with_a_wrong_password_is_401_in_workflowdevs_shape(wd: Workflowdev) -> None:
    r = httpx.post(f"{wd.url}/auth/login", json={"username": "admin", "password": "wrong-one"})
    assert r.status_code == 401
    assert set(r.json()) >= {"error", "code", "status"}


def test_routes_need_a_token(wd: Workflowdev) -> None:
    r = httpx.get(f"{wd.url}/api/v1/flows")
    assert r.status_code == 401
    assert r.json()["code"] == "unauthorized" and r.json()["status"] == 401


# --- Flows -------------------------------------------------------------------------------


def test_create_a_flow_as_printed(wd: Workflowdev, flow: httpx.Response) -> None:
    assert flow.status_code == 201, flow.text
    body = flow.json()
    assert body["name"] == "my-workflow" and body["namespace"] == "production"
    assert body["yamlContent"] == (
        "name: my-workflow\ntasks:\n  - name: hello\n    type: util.log\n    properties:\n"
        "      message: Hello world\n"
    )
    assert body["id"] and body["createdAt"].endswith("Z") and body["updatedAt"].endswith("Z")
    with wd.client() as c:
        got = c.get(f"/api/v1/flows/{body['id']}").json()
        assert got["yamlContent"] == body["yamlContent"]
        assert body["id"] in [f["id"] for f in c.get("/api/v1/flows").json()]
        # The same flow through Flowplane's own API: a document with one util.log node.
        native = c.get(f"/v1/workflows/{body['id']}").json()
        assert native["document"]["nodes"] == [
            {"id": "hello", "type": "util.log", "params": {"message": "Hello world"}}
        ]


def test_execute_a_flow_and_get_its_status(wd: Workflowdev, flow: httpx.Response) -> None:
    flow_id = flow.json()["id"]
    # Flows: "Execute a flow" (curl -X POST .../execute, no body)
    r = httpx.post(f"{wd.url}/api/v1/flows/{flow_id}/execute", headers=wd.auth)
    assert r.status_code == 200, r.text
    started = r.json()
    assert started["status"] == "QUEUED" and started["tasksTotal"] == 1
    with wd.client() as c:
        # Executions: "Get execution status"
        body = wait_for(c, started["executionId"], TERMINAL)
    execution = body["execution"]
    assert execution["id"] == started["executionId"] and execution["flowId"] == flow_id
    assert execution["status"] == "SUCCESS"
    assert execution["tasksTotal"] == 1 and execution["tasksExecuted"] == 1
    assert execution["startedAt"] and execution["finishedAt"]
    assert isinstance(execution["durationMs"], int)
    [task] = body["tasks"]
    assert task["taskName"] == "hello" and task["taskType"] == "util.log"
    assert task["status"] == "SUCCESS"
    assert json.loads(task["outputs"]) == {"message": "Hello world"}
    assert task["startedAt"] and task["finishedAt"]


def test_update_saves_revisions_and_restore_brings_the_yaml_back(wd: Workflowdev) -> None:
    first = "name: revisable\ntasks:\n  - name: one\n    type: util.noop\n"
    second = "name: revisable\n# edited\ntasks:\n  - name: two\n    type: util.noop\n"
    with wd.client() as c:
        flow_id = create(c, "revisable", first)
        r = c.put(f"/api/v1/flows/{flow_id}", json={"yamlContent": second})
        assert r.status_code == 200, r.text
        assert r.json()["yamlContent"] == second
        revisions = c.get(f"/api/v1/flows/{flow_id}/revisions").json()
        assert [rev["revision"] for rev in revisions] == [2, 1]
        restored = c.post(f"/api/v1/flows/{flow_id}/revisions/1/restore")
        assert restored.status_code == 200, restored.text
        assert restored.json()["yamlContent"] == first
        assert restored.json()["version"] == 3
        missing = c.post(f"/api/v1/flows/{flow_id}/revisions/9/restore")
        assert missing.status_code == 404 and missing.json()["status"] == 404


def test_export_then_import_gives_the_same_flow(wd: Workflowdev) -> None:
    yaml = (
        "name: portable\ntasks:\n  - name: a\n    type: util.log\n    properties: {message: hi}\n"
    )
    with wd.client() as c:
        flow_id = create(c, "portable", yaml)
        exported = c.get(f"/api/v1/flows/{flow_id}/export")
        assert exported.status_code == 200
        assert exported.json()["yamlContent"] == yaml
        assert c.delete(f"/api/v1/flows/{flow_id}").status_code == 204
        assert c.get(f"/api/v1/flows/{flow_id}").status_code == 404
        imported = c.post("/api/v1/flows/import", json=exported.json())
        assert imported.status_code == 201, imported.text
        assert imported.json()["yamlContent"] == yaml and imported.json()["name"] == "portable"


def test_validate_names_the_task_and_the_type(wd: Workflowdev) -> None:
    with wd.client() as c:
        ok = c.post(
            "/api/v1/flows/validate",
            json={
                "yamlContent": "name: v\ntasks:\n  - name: a\n    type: util.log\n"
                "    properties: {message: hi}\n"
            },
        ).json()
        assert ok == {"valid": True, "errors": []}
        bad = c.post(
            "/api/v1/flows/validate",
            json={"yamlContent": "name: v\ntasks:\n  - name: a\n    type: crm.sync\n"},
        ).json()
        assert bad["valid"] is False
        assert any(e["task"] == "a" and "crm.sync" in e["message"] for e in bad["errors"])
        unknown_key = c.post(
            "/api/v1/flows/validate",
            json={
                "yamlContent": "name: v\ntasks:\n  - name: a\n    type: util.noop\n    retries: 3\n"
            },
        ).json()
        assert unknown_key["valid"] is False and "retries" in unknown_key["errors"][0]["message"]
        # Creating an invalid flow is a 400 in workflowdev's shape, with the same errors.
        created = c.post(
            "/api/v1/flows",
            json={"name": "v", "yamlContent": "name: v\ntasks:\n  - name: a\n    type: crm.sync\n"},
        )
        assert created.status_code == 400
        assert created.json()["code"] == "workflow_invalid" and "crm.sync" in created.text


# --- Executions --------------------------------------------------------------------------


def test_cancel_retry_and_list(wd: Workflowdev) -> None:
    yaml = (
        "name: sleepy\ntasks:\n  - name: nap\n    type: util.sleep\n    properties:\n"
        "      duration: 1h\n"
    )
    with wd.client() as c:
        flow_id = create(c, "sleepy", yaml)
        started = c.post(f"/api/v1/flows/{flow_id}/execute").json()
        execution_id = started["executionId"]
        wait_for(c, execution_id, {"WAITING_TIMER"})
        cancelled = c.post(f"/api/v1/executions/{execution_id}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "CANCELLED"
        again = c.post(f"/api/v1/executions/{execution_id}/cancel")
        assert again.status_code == 409 and again.json()["status"] == 409
        retried = c.post(f"/api/v1/executions/{execution_id}/retry")
        assert retried.status_code == 200, retried.text
        assert retried.json()["status"] == "QUEUED" and retried.json()["retryOf"] == execution_id
        listed = c.get("/api/v1/executions", params={"flowId": flow_id}).json()
        assert {e["id"] for e in listed} == {execution_id, retried.json()["executionId"]}
        only_cancelled = c.get(
            "/api/v1/executions", params={"flowId": flow_id, "status": "CANCELLED"}
        ).json()
        assert [e["id"] for e in only_cancelled] == [execution_id]
        c.post(f"/api/v1/executions/{retried.json()['executionId']}/cancel")


def test_logs_stream_over_websocket(wd: Workflowdev) -> None:
    yaml = (
        "name: chatty\ntasks:\n  - name: first\n    type: util.log\n    properties:\n"
        "      message: one\n  - name: second\n    type: util.log\n    properties:\n"
        "      message: two\n"
    )
    with wd.client() as c:
        flow_id = create(c, "chatty", yaml)
        execution_id = c.post(f"/api/v1/flows/{flow_id}/execute").json()["executionId"]
    ws_url = wd.url.replace("http://", "ws://") + f"/api/v1/executions/{execution_id}/logs"
    frames: list[dict[str, Any]] = []
    with connect(ws_url, additional_headers=wd.auth, open_timeout=30) as ws:
        for message in ws:
            frames.append(json.loads(message))
    logs = [(f["taskName"], f["message"]) for f in frames if f["type"] == "log"]
    assert logs == [("first", "one"), ("second", "two")]
    assert frames[-1] == {"type": "status", "executionId": execution_id, "status": "SUCCESS"}
    finished = [f["taskName"] for f in frames if f["type"] == "task" and f["status"] == "SUCCESS"]
    assert finished == ["first", "second"]


def test_logs_websocket_of_an_unknown_execution_closes_4404(wd: Workflowdev) -> None:
    ws_url = wd.url.replace("http://", "ws://") + "/api/v1/executions/nope/logs"
    with connect(ws_url, additional_headers=wd.auth, open_timeout=30) as ws:
        frame = json.loads(ws.recv())
        assert frame["code"] == "RUN_NOT_FOUND" or frame["code"].lower() == "run_not_found"
        with pytest.raises(Exception, match="4404"):
            ws.recv()


# --- Triggers ----------------------------------------------------------------------------


def test_fire_a_webhook(wd: Workflowdev, flow: httpx.Response) -> None:
    with wd.client() as c:
        trigger = c.post(
            "/api/v1/triggers",
            json={"flowId": flow.json()["id"], "type": "webhook", "key": "my-webhook-key"},
        )
        assert trigger.status_code == 201, trigger.text
        assert trigger.json()["url"] == "/api/v1/webhook/my-webhook-key"
        # Triggers: "Fire a webhook" (no credentials: the key is the authentication)
        r = httpx.post(
            f"{wd.url}/api/v1/webhook/my-webhook-key",
            headers={"Content-Type": "application/json"},
            content='{"customerId": 42}',
        )
        assert r.status_code == 202, r.text
        assert r.json()["status"] == "QUEUED"
        execution_id = r.json()["executionId"]
        assert wait_for(c, execution_id, TERMINAL)["execution"]["status"] == "SUCCESS"
        assert c.get(f"/v1/runs/{execution_id}").json()["input"]["body"] == {"customerId": 42}
        listed = c.get("/api/v1/triggers").json()
        assert trigger.json()["id"] in [t["id"] for t in listed]
        disabled = c.put(
            f"/api/v1/triggers/{trigger.json()['id']}",
            json={"type": "webhook", "key": "my-webhook-key", "enabled": False},
        )
        assert disabled.status_code == 200 and disabled.json()["enabled"] is False
        assert httpx.post(f"{wd.url}/api/v1/webhook/my-webhook-key", json={}).status_code == 404
        assert c.delete(f"/api/v1/triggers/{trigger.json()['id']}").status_code == 204


def test_cron_trigger(wd: Workflowdev, flow: httpx.Response) -> None:
    with wd.client() as c:
        made = c.post(
            "/api/v1/triggers",
            json={"flowId": flow.json()["id"], "type": "cron", "cron": "0 3 * * *"},
        )
        assert made.status_code == 201, made.text
        assert made.json()["type"] == "cron" and made.json()["nextFireAt"]
        assert made.json()["id"] in [t["id"] for t in c.get("/api/v1/triggers").json()]
        assert c.delete(f"/api/v1/triggers/{made.json()['id']}").status_code == 204


# --- Plugins -----------------------------------------------------------------------------


def test_plugins(wd: Workflowdev) -> None:
    # Plugins: "List plugins" (curl .../api/v1/plugins | jq '.[].id')
    r = httpx.get(f"{wd.url}/api/v1/plugins", headers=wd.auth)
    assert r.status_code == 200
    ids = [p["id"] for p in r.json()]
    assert "util.log" in ids and "http.request" in ids
    for manifest in r.json():
        assert set(manifest) >= {
            "id",
            "name",
            "category",
            "description",
            "inputSchema",
            "outputSchema",
        }
    categories = httpx.get(f"{wd.url}/api/v1/plugins/categories", headers=wd.auth).json()
    assert {"name": "util", "count": sum(1 for i in ids if i.startswith("util."))} in categories
    one = httpx.get(f"{wd.url}/api/v1/plugins/http.request", headers=wd.auth).json()
    assert one["id"] == "http.request" and "url" in one["inputSchema"]["properties"]
    missing = httpx.get(f"{wd.url}/api/v1/plugins/crm.sync", headers=wd.auth)
    assert missing.status_code == 404 and missing.json()["status"] == 404


# --- Credentials, KV, audit, approvals ---------------------------------------------------


def test_credentials_never_return_their_value(wd: Workflowdev) -> None:
    secret = "sk-live-" + uuid.uuid4().hex
    with wd.client() as c:
        made = c.post("/api/v1/credentials", json={"name": "API_TOKEN", "value": secret})
        assert made.status_code == 201, made.text
        cred_id = made.json()["id"]
        responses = [
            made,
            c.get("/api/v1/credentials"),
            c.get(f"/api/v1/credentials/{cred_id}"),
            c.put(f"/api/v1/credentials/{cred_id}", json={"value": secret + "2"}),
        ]
        for r in responses:
            assert r.status_code in (200, 201), r.text
            assert secret not in r.text
        assert c.get(f"/api/v1/credentials/{cred_id}").json()["version"] == 2
        assert c.delete(f"/api/v1/credentials/{cred_id}").status_code == 204
        assert c.get(f"/api/v1/credentials/{cred_id}").status_code == 404


def test_key_value_store(wd: Workflowdev) -> None:
    with wd.client() as c:
        put = c.put("/api/v1/kv/production/last-order", json={"id": 7})
        assert put.status_code == 201, put.text
        assert c.get("/api/v1/kv/production/last-order").json()["value"] == {"id": 7}
        assert c.put("/api/v1/kv/production/last-order", json=8).status_code == 200
        keys = [e["key"] for e in c.get("/api/v1/kv/production").json()]
        assert keys == ["last-order"]
        assert c.delete("/api/v1/kv/production/last-order").status_code == 204
        gone = c.get("/api/v1/kv/production/last-order")
        assert gone.status_code == 404 and gone.json()["code"] == "kv_key_not_found"


def test_gate_approval_by_id(wd: Workflowdev) -> None:
    yaml = (
        "name: gated\ntasks:\n  - name: gate\n    type: control.gate\n    properties:\n"
        "      message: Ship it?\n  - name: after\n    type: util.log\n    properties:\n"
        "      message: shipped\n"
    )
    with wd.client() as c:
        flow_id = create(c, "gated", yaml)
        for approve, final in ((True, "SUCCESS"), (False, "FAILED")):
            execution_id = c.post(f"/api/v1/flows/{flow_id}/execute").json()["executionId"]
            waiting = wait_for(c, execution_id, {"WAITING_APPROVAL"})
            gate = waiting["tasks"][0]
            assert gate["status"] == "WAITING_APPROVAL"
            approval = c.get(f"/api/v1/approvals/{gate['approvalId']}")
            assert approval.status_code == 200
            assert approval.json()["status"] == "PENDING"
            assert approval.json()["title"] == "Ship it?"
            verb = "approve" if approve else "reject"
            decided = c.post(f"/api/v1/approvals/{gate['approvalId']}/{verb}")
            assert decided.status_code == 200, decided.text
            assert decided.json()["status"] == ("APPROVED" if approve else "REJECTED")
            assert wait_for(c, execution_id, TERMINAL)["execution"]["status"] == final
            twice = c.post(f"/api/v1/approvals/{gate['approvalId']}/{verb}")
            assert twice.status_code == 409
        assert c.get("/api/v1/approvals/nope").status_code == 404


def test_audit_lists_recent_entries(wd: Workflowdev, flow: httpx.Response) -> None:
    entries = httpx.get(f"{wd.url}/api/v1/audit", headers=wd.auth).json()
    actions = {e["action"] for e in entries}
    assert "workflow.create" in actions and "user.register" in actions
    assert all(e["timestamp"].endswith("Z") for e in entries)


# --- Other endpoints ---------------------------------------------------------------------


def test_health_readiness_and_metrics(wd: Workflowdev) -> None:
    assert httpx.get(f"{wd.url}/healthz").json()["status"] == "ok"
    assert httpx.get(f"{wd.url}/readyz").status_code == 200
    metrics = httpx.get(f"{wd.url}/metrics", headers=wd.auth)
    assert metrics.status_code == 200 and "flowplane_" in metrics.text


def test_errors_keep_flowplanes_code_and_v1_keeps_problem_json(wd: Workflowdev) -> None:
    with wd.client() as c:
        missing = c.get("/api/v1/flows/nope")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/json")
        assert missing.json() == {
            "error": "workflow 'nope' not found",
            "code": "workflow_not_found",
            "status": 404,
        }
        no_route = c.get("/api/v1/nothing-here")
        assert no_route.status_code == 404 and no_route.json()["status"] == 404
        native = c.get("/v1/workflows/nope")
        assert native.headers["content-type"].startswith("application/problem+json")
        assert native.json()["code"] == missing.json()["code"]


def test_a_v1_workflow_is_a_flow_too(wd: Workflowdev) -> None:
    doc = {"name": "native", "nodes": [{"id": "a", "type": "util.log", "params": {"message": "x"}}]}
    with wd.client() as c:
        made = c.post("/v1/workflows", json=doc)
        assert made.status_code == 201, made.text
        flow = c.get(f"/api/v1/flows/{made.json()['id']}").json()
    assert flow["yamlContent"] == (
        "name: native\ntasks:\n- name: a\n  type: util.log\n  properties:\n    message: x\n"
    )
