"""The MCP server through the official ``mcp`` client, against a real ``flowplane serve``.

Both transports, on SQLite and PostgreSQL (one server per backend for the module):

- stdio: ``python -m flowplane mcp --server URL --token KEY`` (the Python client behind it);
- streamable HTTP: ``{url}/mcp`` of the server itself (the services behind it), with the
  key as ``Authorization: Bearer``.

A scripted agent session builds a workflow from an empty draft with a mistake, reads the typed
skip and validation error, repairs it, runs it, waits for the approval, approves and reads
the outputs. Roles and namespaces hold through MCP with the API's error codes.
"""

from __future__ import annotations

import contextlib
import json
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult
from serve_support import Serve, free_port, serving

from conftest import POSTGRES_URL, drop_schema, require_postgres
from flowplane.mcp import TOOL_NAMES

REPO = Path(__file__).resolve().parents[2]
TRANSPORTS = ["stdio", "http"]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Serve]:
    base = tmp_path_factory.mktemp(f"mcp-{request.param}")
    if request.param == "sqlite":
        with serving(base, f"sqlite:///{base / 'fp.db'}") as running:
            yield running
        return
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        with serving(base, POSTGRES_URL, "--database-schema", schema) as running:
            yield running
    finally:
        drop_schema(schema)


def new_key(server: Serve, role: str, namespaces: list[str] | None = None) -> str:
    body = {"name": f"mcp-{role}-{uuid.uuid4().hex[:6]}", "role": role, "namespaces": namespaces}
    response = httpx.post(f"{server.url}/v1/auth/tokens", json=body, headers=server.headers)
    assert response.status_code == 201, response.text
    secret: str = response.json()["secret"]
    return secret


@contextlib.asynccontextmanager
async def session(
    server: Serve, transport: str, key: str | None = None
) -> AsyncIterator[ClientSession]:
    """An initialized MCP client session over ``transport``, acting with ``key``."""
    key = key or server.key
    async with contextlib.AsyncExitStack() as stack:
        if transport == "stdio":
            params = StdioServerParameters(
                command=sys.executable,
                args=["-m", "flowplane", "mcp", "--server", server.url, "--token", key],
                env={"PYTHONPATH": str(REPO / "src")},
            )
            read, write = await stack.enter_async_context(stdio_client(params))
        else:
            http = await stack.enter_async_context(
                httpx2.AsyncClient(
                    headers={"Authorization": f"Bearer {key}"},
                    timeout=httpx2.Timeout(30, read=300),
                )
            )
            read, write = await stack.enter_async_context(
                streamable_http_client(f"{server.url}/mcp", http_client=http)
            )
        client = await stack.enter_async_context(ClientSession(read, write))
        await client.initialize()
        yield client


async def call(client: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call ``tool``; return its structured answer (failing on a tool error)."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    return structured(result)


async def refused(client: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call ``tool`` expecting a tool error; return the error (``code``, ``message``)."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result.content
    error: dict[str, Any] = structured(result)["error"]
    return error


def structured(result: CallToolResult) -> dict[str, Any]:
    # The text is the same JSON (on the last line, after an error's "code: message").
    text = result.content[0].text  # type: ignore[union-attr]
    data: dict[str, Any] = json.loads(text.rsplit("\n", 1)[-1])
    assert result.structured_content in (None, data)
    return data


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_tools_resources_and_prompts_are_listed(server: Serve, transport: str) -> None:
    async with session(server, transport) as client:
        tools = (await client.list_tools()).tools
        assert [t.name for t in tools] == list(TOOL_NAMES)
        edit = next(t for t in tools if t.name == "edit_workflow")
        assert edit.input_schema["required"] == ["workflow_id", "ops"]
        assert "skipped_items" in (edit.description or "")
        templates = (await client.list_resource_templates()).resource_templates
        assert {t.uri_template for t in templates} == {
            "flowplane://connectors/{detail}",
            "flowplane://workflows/{workflow_id}",
            "flowplane://runs/{run_id}",
        }
        catalogue = await client.read_resource("flowplane://connectors/summary")
        types = {c["type"] for c in json.loads(catalogue.contents[0].text)}  # type: ignore[union-attr]
        assert "control.approval" in types
        prompts = {p.name for p in (await client.list_prompts()).prompts}
        assert prompts == {"build_workflow", "repair_run"}
        prompt = await client.get_prompt("repair_run", {"run_id": "r-1"})
        assert "r-1" in prompt.messages[0].content.text  # type: ignore[union-attr]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_agent_session_builds_repairs_runs_and_approves(
    server: Serve, transport: str
) -> None:
    async with session(server, transport) as client:
        found = await call(client, "search_connectors", query="approval")
        approval_type = next(c["type"] for c in found["items"] if c["category"] == "control")
        manifest = await call(client, "describe_connector", type=approval_type)
        assert "title" in manifest["inputSchema"]["required"]

        draft = await call(client, "create_workflow", document={})
        workflow_id = draft["id"]
        assert draft["document"].get("nodes", []) == []
        empty = await refused(client, "start_run", workflow_id=workflow_id)
        assert empty["code"] == "workflow_empty"

        # A mistake: an unknown connector type, and a missing required param.
        name = f"mcp-{transport}-{uuid.uuid4().hex[:6]}"
        first = await call(
            client,
            "edit_workflow",
            workflow_id=workflow_id,
            ops=[
                {"op": "set", "field": "name", "value": name},
                {"op": "add", "node_id": "start", "type": "util.log", "params": {"message": "hi"}},
                {"op": "add", "node_id": "ask", "type": approval_type, "params": {}},
                {"op": "add", "node_id": "done", "type": "util.sett", "params": {"value": 42}},
            ],
        )
        assert first["ok"] is False
        assert first["saved"] is True and first["workflow"]["name"] == name
        (skip,) = first["skipped_items"]
        assert (skip["node_id"], skip["reason_code"]) == ("done", "node_type_not_registered")
        assert "util.set" in skip["details"]["close_matches"]
        (invalid,) = first["validation_errors"]
        assert (invalid["node_id"], invalid["code"]) == ("ask", "missing_param")
        assert "util.sett" in first["summary"]

        # The repair, as the summary suggests.
        repaired = await call(
            client,
            "edit_workflow",
            workflow_id=workflow_id,
            ops=[
                {"op": "edit", "node_id": "ask", "params": {"title": "Ship it?"}},
                {"op": "add", "node_id": "done", "type": "util.set", "params": {"value": 42}},
            ],
            expected_version=first["version"],
        )
        assert repaired["ok"] is True, repaired["summary"]
        assert repaired["skipped_items"] == [] and repaired["validation_errors"] == []

        run = await call(client, "start_run", workflow_id=workflow_id)
        run_id = run["runId"]
        waiting = await call(client, "wait_for_run", run_id=run_id, timeout_seconds=60)
        assert waiting["reached"] is True
        assert waiting["status"] == "waiting-approval"
        assert [n["nodeId"] for n in waiting["waitingNodes"]] == ["ask"]
        inbox = await call(client, "list_approvals")
        assert run_id in {a["runId"] for a in inbox["approvals"]}

        decided = await call(client, "approve", run_id=run_id, node_id="ask", note="ok")
        assert decided["status"] == "approved"
        settled = await call(client, "wait_for_run", run_id=run_id, timeout_seconds=60)
        assert settled["status"] == "finished"
        output = await call(client, "get_node_output", run_id=run_id, node_id="done")
        assert [n["output"] for n in output["nodes"]] == [42]
        logs = await call(client, "get_run_logs", run_id=run_id, node_id="start")
        assert any(item.get("message") == "hi" for item in logs["items"])

        resource = await client.read_resource(f"flowplane://runs/{run_id}")
        assert json.loads(resource.contents[0].text)["status"] == "finished"  # type: ignore[union-attr]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_steering_tools(server: Serve, transport: str) -> None:
    """Validate, signal, deny, list, retry, cancel, resume, fork and diff through MCP."""
    document = {
        "name": f"steer-{transport}-{uuid.uuid4().hex[:6]}",
        "nodes": [
            {"id": "sig", "type": "wait.signal", "params": {"name": "go"}},
            {"id": "ask", "type": "control.approval", "params": {"title": "Go on?"}},
        ],
    }
    async with session(server, transport) as client:
        assert (await call(client, "validate_workflow", document=document))["valid"] is True
        bad = {**document, "nodes": [{"id": "x", "type": "util.set", "params": {}}]}
        report = await call(client, "validate_workflow", document=bad)
        assert report["valid"] is False
        assert [e["code"] for e in report["errors"]] == ["missing_param"]

        workflow_id = (await call(client, "create_workflow", document=document))["id"]
        run_id = (await call(client, "start_run", workflow_id=workflow_id))["runId"]
        waiting = await call(client, "wait_for_run", run_id=run_id, timeout_seconds=60)
        assert (waiting["status"], waiting["waitingNodes"][0]["nodeId"]) == ("waiting-event", "sig")
        signal = await call(client, "send_signal", run_id=run_id, name="go", payload={"n": 1})
        assert signal["delivered"] is True
        waiting = await call(client, "wait_for_run", run_id=run_id, timeout_seconds=60)
        assert waiting["status"] == "waiting-approval"
        denied = await call(client, "deny", run_id=run_id, node_id="ask", note="no")
        assert denied["status"] == "denied"
        failed = await call(client, "wait_for_run", run_id=run_id, timeout_seconds=60)
        assert failed["status"] == "failed"
        listed = await call(client, "list_runs", status=["failed"], workflow=workflow_id)
        assert [r["runId"] for r in listed["runs"]] == [run_id]

        retried = await call(client, "retry_run", run_id=run_id)
        assert retried["runId"] != run_id
        cancelled = await call(client, "cancel_run", run_id=retried["runId"])
        assert cancelled["status"] == "cancelled"
        again = await refused(client, "cancel_run", run_id=retried["runId"])
        assert again["code"] == "RUN_NOT_ACTIVE"
        resumed = await call(client, "resume_run", run_id=retried["runId"])
        assert resumed["status"] not in ("cancelled", "failed")

        fork = await call(client, "fork_run", run_id=run_id, from_node="ask")
        assert fork["forkedFrom"] == run_id
        waiting = await call(client, "wait_for_run", run_id=fork["runId"], timeout_seconds=60)
        assert [n["nodeId"] for n in waiting["waitingNodes"]] == ["ask"]  # sig was reused
        await call(client, "approve", run_id=fork["runId"], node_id="ask")
        done = await call(client, "wait_for_run", run_id=fork["runId"], timeout_seconds=60)
        assert done["status"] == "finished"
        diff = await call(client, "diff_runs", run_id=run_id, other_run_id=fork["runId"])
        assert diff["changedNodes"] == ["ask"]
        assert (await refused(client, "describe_run", run_id="nope"))["code"] == "RUN_NOT_FOUND"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_roles_and_namespaces_hold(server: Serve, transport: str) -> None:
    document = {
        "name": f"guarded-{transport}-{uuid.uuid4().hex[:6]}",
        "nodes": [{"id": "a", "type": "util.set", "params": {"value": 1}}],
    }
    stored = httpx.post(f"{server.url}/v1/workflows", json=document, headers=server.headers)
    assert stored.status_code == 201, stored.text
    workflow_id = stored.json()["id"]

    viewer = new_key(server, "viewer")
    api = httpx.post(
        f"{server.url}/v1/workflows/{workflow_id}/runs",
        json={},
        headers={"Authorization": f"Bearer {viewer}"},
    )
    assert api.status_code == 403
    async with session(server, transport, viewer) as client:
        assert (await call(client, "get_workflow", workflow=workflow_id))["id"] == workflow_id
        refusal = await refused(client, "start_run", workflow_id=workflow_id)
        assert refusal["code"] == api.json()["code"] == "forbidden"
        edit = await refused(
            client, "edit_workflow", workflow_id=workflow_id, ops=[{"op": "delete", "node_id": "a"}]
        )
        assert edit["code"] == "forbidden"
        assert (await refused(client, "create_workflow", document={"name": "x"}))["code"] == (
            "forbidden"
        )

    limited = new_key(server, "editor", ["team-a"])
    api = httpx.get(
        f"{server.url}/v1/workflows/{workflow_id}", headers={"Authorization": f"Bearer {limited}"}
    )
    assert api.status_code == 404
    async with session(server, transport, limited) as client:
        missing = await refused(client, "get_workflow", workflow=workflow_id)
        assert missing["code"] == api.json()["code"] == "workflow_not_found"
        listed = await call(client, "list_workflows")
        assert listed["items"] == []
        outside = await refused(
            client, "create_workflow", document={**document, "name": "elsewhere"}
        )
        assert outside["code"] == "forbidden"


async def test_http_endpoint_needs_credentials(server: Serve) -> None:
    answer = httpx.post(f"{server.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
    assert answer.status_code == 401
    assert answer.json()["code"] == "unauthorized"


async def test_stdio_on_a_local_database(tmp_path: Path) -> None:
    """Without --server, ``flowplane mcp`` acts on the database itself, with a worker."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "flowplane", "mcp", "--database-url", f"sqlite:///{tmp_path / 'fp.db'}"],
        env={"PYTHONPATH": str(REPO / "src"), "FLOWPLANE_DATA_DIR": str(tmp_path / "data")},
        cwd=tmp_path,
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as client:
        await client.initialize()
        draft = await call(client, "create_workflow", document={"name": "local"})
        ops = [{"op": "add", "node_id": "v", "type": "util.set", "params": {"value": "x"}}]
        assert (await call(client, "edit_workflow", workflow_id=draft["id"], ops=ops))["ok"]
        run = await call(client, "start_run", workflow_id=draft["id"])
        settled = await call(client, "wait_for_run", run_id=run["runId"], timeout_seconds=60)
        assert settled["status"] == "finished"
        assert settled["run"]["nodes"][0]["output"] == "x"


async def test_stdio_reports_an_unreachable_server() -> None:
    dead = Serve(f"http://127.0.0.1:{free_port()}", "fp_unused", None, Path())  # type: ignore[arg-type]
    async with session(dead, "stdio") as client:
        error = await refused(client, "list_workflows")
        assert error["code"] == "server_unreachable"
