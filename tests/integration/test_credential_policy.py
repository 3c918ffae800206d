"""Credential use policies: an editor's workflow cannot route a credential into output.

Redaction masks exact values; ``{{ secrets.X | upper }}``, ``| reverse``, ``| list`` and
slices used to put the value, lightly transformed, into outputs and logs that viewers read.
Each credential now has a use policy set by admins (``allowedWorkflows``,
``allowedConnectors``, ``templateUse``), checked by the engine before it decrypts a value.
Everything here goes through the HTTP API, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from api_support import ApiHarness, started
from http_peer import http_server
from typer.testing import CliRunner

from flowplane.cli.main import app as cli
from flowplane.security.crypto import KeyRing, credential_context, generate_key
from flowplane.store import credential_queries
from flowplane.store.base import Store
from flowplane.store.migrate import current_revision, head_revision, upgrade
from flowplane.store.schema import metadata

TOKEN = "tOkEn-4Fq9-zx81-Lm0p"
TERMINAL = {"finished", "failed", "cancelled", "timed-out"}


def forms(value: str) -> dict[str, str]:
    """The value and the light transformations templates made of it."""
    return {
        "plain": value,
        "upper": value.upper(),
        "lower": value.lower(),
        "reversed": value[::-1],
        "list": json.dumps(list(value)),
        "list-py": str(list(value)),
        "tail": value[1:],
        "head": value[:-1],
    }


def leaks(text: str, value: str = TOKEN) -> list[str]:
    """The names of the forms of ``value`` found in ``text``."""
    return [name for name, form in forms(value).items() if form in text]


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"authorization": self.headers.get("Authorization")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def echo_server() -> Iterator[str]:
    """A local HTTP server echoing the Authorization header back."""
    with http_server(_Echo) as port:
        yield f"http://127.0.0.1:{port}"


def _header_call(echo_url: str, name: str = "TOKEN") -> dict[str, Any]:
    return {
        "id": "call",
        "type": "http.request",
        "params": {"url": echo_url + "/echo", "headers": {"Authorization": f"Bearer ${{{name}}}"}},
        "on_error": "continue",
    }


def _node(node_id: str, type_: str, **params: Any) -> dict[str, Any]:
    return {"id": node_id, "type": type_, "params": params}


def _leaky_nodes() -> list[dict[str, Any]]:
    """Every way an editor used to read the value back (each continues on error)."""
    nodes: list[dict[str, Any]] = [
        {
            "id": "log_upper",
            "type": "util.log",
            "params": {"message": "{{ secrets.TOKEN | upper }}"},
        },
        {"id": "log_plain", "type": "util.log", "params": {"message": "token ${TOKEN}"}},
        {
            "id": "out_reverse",
            "type": "util.set",
            "params": {"value": "{{ secrets.TOKEN | reverse }}"},
        },
        {"id": "out_list", "type": "util.set", "params": {"value": "{{ secrets.TOKEN | list }}"}},
        {"id": "out_slice", "type": "util.set", "params": {"value": "{{ secrets.TOKEN[1:] }}"}},
        {
            "id": "out_filter_block",
            "type": "util.set",
            "params": {"value": "{% filter lower %}{{ secrets.TOKEN }}{% endfilter %}"},
        },
        {
            "id": "out_all",
            "type": "util.set",
            "params": {"value": {"a": "${TOKEN}", "b": "{{ secrets | list }}"}},
        },
        {
            "id": "call_upper",
            "type": "http.request",
            "params": {
                "url": "http://127.0.0.1:9/never",
                "headers": {
                    "Authorization": "Bearer ${TOKEN}",
                    "X-Copy": "{{ secrets.values() | first | upper }}",
                },
            },
        },
        {
            "id": "render",
            "type": "data.template",
            "params": {"template": "{{ secrets.TOKEN | upper }}"},
        },
        {
            "id": "gate",
            "type": "util.set",
            "when": "{{ secrets.TOKEN[0] == 't' }}",
            "params": {"value": "starts with t"},
        },
        {
            "id": "each",
            "type": "util.set",
            "foreach": "{{ secrets.TOKEN | list }}",
            "params": {"value": "{{ item }}"},
        },
    ]
    for node in nodes:
        node["on_error"] = "continue"
    return nodes


async def _wait_terminal(client: Any, run_id: str) -> dict[str, Any]:
    for _ in range(300):
        body: dict[str, Any] = (await client.get(f"/v1/runs/{run_id}")).json()
        if body.get("status") in TERMINAL:
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish")


async def _run_stored(client: Any, document: dict[str, Any]) -> dict[str, Any]:
    created = await client.post("/v1/workflows", json=document)
    assert created.status_code == 201, created.text
    started_run = await client.post(f"/v1/workflows/{created.json()['id']}/runs", json={})
    assert started_run.status_code == 201, started_run.text
    return await _wait_terminal(client, started_run.json()["runId"])


def _nodes(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["nodeId"]: n for n in run["nodes"]}


async def _all_rows(api: ApiHarness) -> str:
    def dump(tx: Any) -> str:
        return "\n".join(
            f"{table.name}: {[tuple(r) for r in tx.conn.execute(sa.select(table)).all()]!r}"
            for table in metadata.sorted_tables
        )

    return await api.services.store.read(dump)


async def test_an_editor_cannot_read_a_credential_through_templates(
    db: tuple[str, str], tmp_path: Path, echo_server: str
) -> None:
    async with started(
        db, tmp_path / "root", workers=1, secret_key=generate_key(), allow_hosts=["127.0.0.1"]
    ) as api:
        created = await api.client.post("/v1/credentials", json={"name": "TOKEN", "value": TOKEN})
        assert created.status_code == 201, created.text
        assert created.json()["templateUse"] == "exact"
        assert created.json()["allowedConnectors"] is None
        editor = await api.key("editor")
        document = {
            "name": "exfiltrate",
            "nodes": [
                *_leaky_nodes(),
                _header_call(echo_server),
                {
                    "id": "sign",
                    "type": "data.hmac",
                    "params": {"data": "payload", "credential": "TOKEN"},
                },
            ],
        }
        async with api.client_for(editor) as client:
            run = await _run_stored(client, document)
            nodes = _nodes(run)
            refused = {k for k, n in nodes.items() if n["state"] == "failed"}
            assert refused == {n["id"] for n in _leaky_nodes()}, nodes
            for node_id in refused:
                error = nodes[node_id]["error"]
                assert error["code"] == "credential_use_denied", error
                assert error["credential"] == "TOKEN" and error["rule"] == "templateUse"
                assert "'TOKEN'" in error["message"] and node_id in error["message"]
            # The uses the default policy allows work: a header of http.request (exact, in a
            # secret-bearing param; the echo comes back redacted) and a credential param.
            assert nodes["call"]["state"] == "finished"
            assert nodes["call"]["output"]["body"]["authorization"] == "Bearer [REDACTED]"
            assert nodes["sign"]["state"] == "finished" and nodes["sign"]["output"]["signature"]

            responses = {
                "run": json.dumps(run),
                "events": (await client.get(f"/v1/runs/{run['runId']}/events")).text,
                "logs": (await client.get(f"/v1/runs/{run['runId']}/logs")).text,
            }
        assert "credential_use_denied" in responses["events"]
        found = {name: leaks(text) for name, text in responses.items() if leaks(text)}
        assert found == {}, f"the value leaked: {found}"
        assert leaks(await _all_rows(api)) == []


async def test_connector_workflow_and_template_rules(
    db: tuple[str, str], tmp_path: Path, echo_server: str
) -> None:
    async with started(
        db, tmp_path / "root", workers=1, secret_key=generate_key(), allow_hosts=["127.0.0.1"]
    ) as api:
        c = api.client
        r = await c.post(
            "/v1/credentials",
            json={
                "name": "TOKEN",
                "value": TOKEN,
                "allowedConnectors": ["http.*"],
                "allowedWorkflows": ["billing"],
            },
        )
        assert r.status_code == 201, r.text
        assert r.json()["allowedConnectors"] == ["http.*"]
        assert r.json()["allowedWorkflows"] == ["billing"]
        sign = {"id": "sign", "type": "data.hmac", "params": {"data": "x", "credential": "TOKEN"}}
        billing = {"name": "billing", "nodes": [_header_call(echo_server), sign]}

        run = await _run_stored(c, billing)
        nodes = _nodes(run)
        assert nodes["call"]["state"] == "finished", nodes["call"]
        assert nodes["sign"]["state"] == "failed"
        assert nodes["sign"]["error"]["rule"] == "allowedConnectors"
        assert "data.hmac" in nodes["sign"]["error"]["message"]
        assert nodes["sign"]["attempt"] == 1  # never retried

        run = await _run_stored(c, {"name": "other", "nodes": [_header_call(echo_server)]})
        error = _nodes(run)["call"]["error"]
        assert error["code"] == "credential_use_denied" and error["rule"] == "allowedWorkflows"

        # A workflow file named "billing" is not the stored workflow "billing".
        (api.root / "billing.yaml").write_text(
            yaml.safe_dump({"name": "billing", "nodes": [_header_call(echo_server)]})
        )
        dispatched = await c.post("/v1/runs", json={"workflowPath": "billing.yaml"})
        assert dispatched.status_code == 200, dispatched.text
        run = await _wait_terminal(c, dispatched.json()["runId"])
        assert _nodes(run)["call"]["error"]["rule"] == "allowedWorkflows"

        # templateUse none: only credential params.
        credential_id = r.json()["id"]
        r = await c.put(
            f"/v1/credentials/{credential_id}",
            json={"templateUse": "none", "allowedConnectors": None, "allowedWorkflows": None},
        )
        assert r.status_code == 200, r.text
        assert r.json()["templateUse"] == "none" and r.json()["allowedConnectors"] is None
        run = await _run_stored(
            c, {"name": "billing-2", "nodes": [_header_call(echo_server), sign]}
        )
        nodes = _nodes(run)
        assert nodes["call"]["error"]["rule"] == "templateUse"
        assert nodes["sign"]["state"] == "finished"

        # templateUse any: the admin's opt-in to today's behaviour (redaction only).
        r = await c.put(f"/v1/credentials/{credential_id}", json={"templateUse": "any"})
        assert r.status_code == 200 and r.json()["templateUse"] == "any"
        run = await _run_stored(
            c,
            {
                "name": "anything",
                "nodes": [{"id": "log", "type": "util.log", "params": {"message": "${TOKEN}"}}],
            },
        )
        assert run["status"] == "finished", run
        logs = (await c.get(f"/v1/runs/{run['runId']}/logs")).text
        assert "[REDACTED]" in logs and leaks(logs) == []


async def test_only_admins_set_a_policy(db: tuple[str, str], tmp_path: Path) -> None:
    async with started(db, tmp_path / "root", secret_key=generate_key()) as api:
        c = api.client
        r = await c.post(
            "/v1/credentials",
            json={"name": "TOKEN", "value": TOKEN, "allowedConnectors": ["slack.send"]},
        )
        assert r.status_code == 201, r.text
        credential_id = r.json()["id"]
        for role in ("viewer", "executor", "editor"):
            headers = api.auth(await api.key(role))
            r = await c.put(
                f"/v1/credentials/{credential_id}",
                json={"templateUse": "any", "allowedConnectors": None},
                headers=headers,
            )
            assert r.status_code == 403, (role, r.text)
            r = await c.post(
                "/v1/credentials",
                json={"name": "MINE", "value": TOKEN, "templateUse": "any"},
                headers=headers,
            )
            assert r.status_code == 403, (role, r.text)
            r = await c.get(f"/v1/credentials/{credential_id}", headers=headers)
            assert r.status_code == 403, (role, r.text)
        body = (await c.get(f"/v1/credentials/{credential_id}")).json()
        assert body["allowedConnectors"] == ["slack.send"] and body["templateUse"] == "exact"
        assert body["version"] == 1 and "value" not in body

        # Left-out fields are kept; bad values are 400 problems naming the field.
        r = await c.put(f"/v1/credentials/{credential_id}", json={"description": "d"})
        assert r.json()["allowedConnectors"] == ["slack.send"]
        for bad in (
            {"templateUse": "sometimes"},
            {"allowedConnectors": ["http request"]},
            {"allowedConnectors": "http.*"},
            {"allowedWorkflows": [""]},
        ):
            r = await c.put(f"/v1/credentials/{credential_id}", json=bad)
            assert r.status_code in (400, 422), (bad, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
        audit = (await c.get("/v1/audit")).text
        assert "credential.create" in audit and "slack.send" in audit
        assert TOKEN not in audit


async def test_upgrade_gives_existing_credentials_the_default_policy(
    db: tuple[str, str], tmp_path: Path, echo_server: str
) -> None:
    url, schema = db
    key = generate_key()
    ring = KeyRing.from_env({}, key=key)
    assert ring is not None
    store = await Store.open(url, schema=schema, migrate=False)
    try:
        if store.dialect == "postgresql":
            # What ``Store.migrate`` does first: without its schema, the search path would
            # put the tables in ``public`` of the shared test database.
            with store.engine.connect() as conn:
                conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
                conn.commit()
        upgrade(store, "0004")  # the schema before use policies
        assert current_revision(store) == "0004"

        def insert(tx: Any) -> None:
            credential_queries.insert(
                tx,
                {
                    "id": "cred_old",
                    "namespace": "default",
                    "name": "TOKEN",
                    "type": "generic",
                    "envelope": ring.encrypt(
                        TOKEN, context=credential_context("default", "cred_old")
                    ),
                    "key_id": ring.current.kid,
                    "version": 1,
                    "created_at_ms": 1,
                    "updated_at_ms": 1,
                },
            )

        await store.transact(insert)
    finally:
        await store.close()

    # Starting the server upgrades the database.
    async with started(
        db, tmp_path / "root", workers=1, secret_key=key, allow_hosts=["127.0.0.1"]
    ) as api:
        assert current_revision(api.services.store) == head_revision()
        body = (await api.client.get("/v1/credentials/cred_old")).json()
        assert body["templateUse"] == "exact"
        assert body["allowedWorkflows"] is None and body["allowedConnectors"] is None
        leak = {
            "id": "leak",
            "type": "util.set",
            "params": {"value": "{{ secrets.TOKEN | upper }}"},
            "on_error": "continue",
        }
        run = await _run_stored(
            api.client, {"name": "old", "nodes": [_header_call(echo_server), leak]}
        )
        nodes = _nodes(run)
        assert nodes["call"]["state"] == "finished"
        assert nodes["call"]["output"]["body"]["authorization"] == "Bearer [REDACTED]"
        assert nodes["leak"]["error"]["code"] == "credential_use_denied"
        assert leaks(json.dumps(run)) == []


def test_cli_sets_a_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWPLANE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("FLOWPLANE_SECRET_KEY", generate_key())
    monkeypatch.delenv("FLOWPLANE_URL", raising=False)
    runner = CliRunner()
    set_token = ["secrets", "set", "TOKEN", "--value-stdin"]

    r = runner.invoke(
        cli,
        [*set_token, "--create", "--allow-connector", "http.*", "--allow-connector", "slack.send"],
        input=TOKEN,
    )
    assert r.exit_code == 0, r.output

    def listed() -> dict[str, Any]:
        r = runner.invoke(cli, ["secrets", "list", "--json"])
        assert r.exit_code == 0, r.output
        assert TOKEN not in r.output
        (row,) = json.loads(r.stdout)
        return dict(row)

    row = listed()
    assert row["allowedConnectors"] == ["http.*", "slack.send"]
    assert row["allowedWorkflows"] is None and row["templateUse"] == "exact"

    # Replacing the value keeps the policy; options change only what they name.
    r = runner.invoke(cli, [*set_token, "--allow-workflow", "billing"], input=TOKEN + "2")
    assert r.exit_code == 0 and "updated" in r.output
    row = listed()
    assert row["allowedConnectors"] == ["http.*", "slack.send"]
    assert row["allowedWorkflows"] == ["billing"]
    r = runner.invoke(cli, [*set_token, "--any-connector", "--template-use", "none"], input="v3v3")
    assert r.exit_code == 0, r.output
    row = listed()
    assert row["allowedConnectors"] is None and row["templateUse"] == "none"

    r = runner.invoke(cli, [*set_token, "--template-use", "sometimes"], input="v4v4")
    assert r.exit_code != 0 and "templateUse" in r.output
    r = runner.invoke(cli, ["secrets", "list"])
    assert r.exit_code == 0 and "billing" in r.output and "none" in r.output


async def test_a_child_documents_secrets_are_checked_in_the_child(
    db: tuple[str, str], tmp_path: Path, echo_server: str
) -> None:
    async with started(
        db, tmp_path / "root", workers=1, secret_key=generate_key(), allow_hosts=["127.0.0.1"]
    ) as api:
        c = api.client
        r = await c.post(
            "/v1/credentials",
            json={"name": "TOKEN", "value": TOKEN, "allowedConnectors": ["http.request"]},
        )
        assert r.status_code == 201, r.text

        def parent(name: str, child_nodes: list[dict[str, Any]]) -> dict[str, Any]:
            return {
                "name": name,
                "nodes": [
                    {
                        "id": "child",
                        "type": "flow.run",
                        "params": {"document": {"name": "child", "nodes": child_nodes}},
                    }
                ],
            }

        # The parent's flow.subflow node is no use of the credential: the child's is.
        run = await _run_stored(c, parent("parent-1", [_header_call(echo_server)]))
        assert run["status"] == "finished", run
        assert "[REDACTED]" in json.dumps(run["output"]) and leaks(json.dumps(run)) == []

        leak = _node("leak", "util.set", value="{{ secrets.TOKEN | upper }}")
        run = await _run_stored(c, parent("parent-2", [leak]))
        assert run["status"] == "failed"
        assert leaks(json.dumps(run)) == []
        children = (await c.get("/v1/runs", params={"workflow": "child"})).json()
        items = children["items"] if isinstance(children, dict) else children
        errors = json.dumps([await _wait_terminal(c, i["runId"]) for i in items])
        assert "credential_use_denied" in errors and "allowedConnectors" in errors
        assert leaks(errors) == []
