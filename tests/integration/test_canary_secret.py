"""The canary secret: a credential a workflow uses never leaves the worker.

A credential is created through the API, then a run uses it every way a workflow can leak
it: as a node output (plain, base64 and URL-encoded by templates), in an HTTP request to a
local server that echoes it back (headers, query, its own base64 and URL encodings), in a
log line, in a template error and in a node failure that fails the run. Then every API
response (each GET route of the OpenAPI document, events over SSE included), every log
record of the process and every row of every table is searched for the value in plain,
base64 (standard, unpadded, URL-safe) and URL-encoded forms.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from api_support import ApiHarness, started
from http_peer import http_server

from flowplane.security.crypto import generate_key
from flowplane.store.schema import metadata

CANARY = "cAnArY-7Hq/+x=Zk 93!~q8"
TERMINAL = {"finished", "failed", "cancelled", "timed-out"}


def forms(value: str) -> dict[str, str]:
    """Every encoding of ``value`` that must never appear."""
    raw = value.encode()
    b64 = base64.b64encode(raw).decode()
    return {
        "plain": value,
        "base64": b64,
        "base64-unpadded": b64.rstrip("="),
        "base64-urlsafe": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "url": urllib.parse.quote(value, safe=""),
        "url-path": urllib.parse.quote(value),
        "url-plus": urllib.parse.quote_plus(value),
    }


FORMS = forms(CANARY)


def leaks(text: str) -> list[str]:
    """The names of the canary forms found in ``text``."""
    return [name for name, form in FORMS.items() if form in text]


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        body = json.dumps(
            {
                "path": self.path,
                "authorization": self.headers.get("Authorization"),
                "b64": base64.b64encode(token.encode()).decode(),
                "url": urllib.parse.quote(token, safe=""),
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Echo", token)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def echo_server() -> Iterator[str]:
    """A local HTTP server echoing the Authorization header back, in several encodings."""
    with http_server(_Echo) as port:
        yield f"http://127.0.0.1:{port}"


def workflow(echo_url: str) -> dict[str, Any]:
    """A workflow that tries every way to leak ``CANARY``."""
    return {
        "name": "canary",
        "namespace": "default",
        "nodes": [
            {
                "id": "echo_value",
                "type": "util.set",
                "params": {
                    "value": {
                        "plain": "${CANARY}",
                        "sentence": "the token is ${CANARY}.",
                        "b64": "{{ secrets.CANARY | b64encode }}",
                        "url": "{{ secrets.CANARY | urlencode }}",
                    }
                },
            },
            {
                "id": "call",
                "type": "http.request",
                "params": {
                    "url": echo_url + "/echo?token={{ secrets.CANARY | urlencode }}",
                    "headers": {"Authorization": "Bearer ${CANARY}"},
                },
            },
            {"id": "log", "type": "util.log", "params": {"message": "using ${CANARY} now"}},
            {
                "id": "bad_template",
                "type": "util.set",
                "params": {"value": "{{ secrets.CANARY | fromjson }}"},
                "on_error": "continue",
            },
            {
                "id": "boom",
                "type": "util.fail",
                "params": {"message": "upstream refused ${CANARY}", "retryable": False},
            },
        ],
    }


async def _wait_terminal(api: ApiHarness, run_id: str) -> dict[str, Any]:
    for _ in range(300):
        body: dict[str, Any] = (await api.client.get(f"/v1/runs/{run_id}")).json()
        if body.get("status") in TERMINAL:
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} did not finish")


async def _sweep_get_routes(api: ApiHarness, params: dict[str, str]) -> dict[str, str]:
    """GET every route of the OpenAPI document whose path parameters are known."""
    spec = (await api.client.get("/openapi.json")).json()
    bodies: dict[str, str] = {}
    for path, operations in spec["paths"].items():
        if "get" not in operations or path.startswith("/v1/ws"):
            continue
        names = re.findall(r"\{(\w+)(?::\w+)?\}", path)
        if any(n not in params for n in names):
            continue
        url = re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: params[m.group(1)], path)
        try:
            r = await asyncio.wait_for(api.client.get(url), 20)
        except TimeoutError:
            continue
        bodies[url] = r.text + json.dumps(dict(r.headers))
    return bodies


async def _all_rows(api: ApiHarness) -> str:
    def dump(tx: Any) -> str:
        out = []
        for table in metadata.sorted_tables:
            rows = tx.conn.execute(sa.select(table)).all()
            out.append(f"{table.name}: {[tuple(r) for r in rows]!r}")
        return "\n".join(out)

    return await api.services.store.read(dump)


async def test_canary_never_leaves_the_worker(
    db: tuple[str, str], tmp_path: Path, echo_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with started(
        db, tmp_path / "root", workers=1, secret_key=generate_key(), allow_hosts=["127.0.0.1"]
    ) as api:
        c = api.client
        # templateUse "any" (an admin's opt-in) lets templates transform the value: what
        # redaction alone still has to catch. The default policy refuses most of these uses
        # (tests/integration/test_credential_policy.py).
        created = await c.post(
            "/v1/credentials", json={"name": "CANARY", "value": CANARY, "templateUse": "any"}
        )
        assert created.status_code == 201, created.text
        credential_id = created.json()["id"]
        wf = await c.post("/v1/workflows", json=workflow(echo_server))
        assert wf.status_code == 201, wf.text
        workflow_id = wf.json()["id"]
        dispatched = await c.post(f"/v1/workflows/{workflow_id}/runs", json={})
        assert dispatched.status_code == 201, dispatched.text
        run_id = dispatched.json()["runId"]
        run = await _wait_terminal(api, run_id)
        assert run["status"] == "failed"

        # The secret was really used: redaction markers replace it where it flowed.
        nodes = {n["nodeId"]: n for n in run["nodes"]}
        assert {n["state"] for n in nodes.values()} == {"finished", "failed"}
        assert nodes["echo_value"]["output"]["plain"] == "[REDACTED]"
        assert nodes["echo_value"]["output"]["b64"] == "[REDACTED]"
        assert nodes["call"]["state"] == "finished"
        assert nodes["call"]["output"]["body"]["authorization"] == "Bearer [REDACTED]"
        assert nodes["call"]["output"]["body"]["b64"] == "[REDACTED]"
        assert nodes["bad_template"]["state"] == "failed"
        assert "[REDACTED]" in json.dumps(nodes["boom"]["error"])

        responses = {
            "create": created.text,
            "run": json.dumps(run),
            "events": (await c.get(f"/v1/runs/{run_id}/events")).text,
            "logs": (await c.get(f"/v1/runs/{run_id}/logs")).text,
            "export-yaml": (await c.get(f"/v1/workflows/{workflow_id}/export?format=yaml")).text,
            "export-json": (await c.get(f"/v1/workflows/{workflow_id}/export?format=json")).text,
            "audit": (await c.get("/v1/audit")).text,
            "credentials": (await c.get("/v1/credentials")).text,
            "credential": (await c.get(f"/v1/credentials/{credential_id}")).text,
        }
        assert "NodeFailed" in responses["events"] and "RunFailed" in responses["events"]
        assert "${CANARY}" in responses["export-yaml"]
        assert "using [REDACTED] now" in responses["logs"]
        responses.update(
            await _sweep_get_routes(
                api,
                {
                    "run_id": run_id,
                    "workflow_id": workflow_id,
                    "credential_id": credential_id,
                    "namespace": "default",
                    "version": "1",
                    "node_id": "boom",
                },
            )
        )
        assert len(responses) > 15
        found = {name: leaks(text) for name, text in responses.items() if leaks(text)}
        assert found == {}, f"the canary leaked through: {found}"

        stored = await _all_rows(api)
        assert "[REDACTED]" in stored
        assert leaks(stored) == [], "the canary is stored somewhere in the database"

    records = "\n".join(f"{r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records)
    assert leaks(records) == [], "the canary reached a log record"
