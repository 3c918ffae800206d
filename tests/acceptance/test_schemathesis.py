"""Schemathesis, every check, against a real ``flowplane serve``: as an admin and as a viewer.

The schemathesis CLI (``--checks all``: no 5xx, documented status codes, content types,
headers and bodies, schema-valid requests accepted, schema-invalid ones refused, deleted
things gone, auth not ignored) runs its coverage, fuzzing and stateful phases against the
exact ``/openapi.json`` of a ``flowplane serve`` subprocess on SQLite. Path parameters are
pinned to objects seeded first (a workflow, a run waiting for approval, a KV entry, a
credential, a schedule, a trigger, a user and a throwaway API key), so requests reach the
routes' logic instead of their 404s.

What a schema cannot say is listed in :data:`SEMANTIC_400`: there a schema-valid request may
still be a 400 (an unknown connector type in a workflow, a cron expression, a cursor the
server did not issue, ...). Everywhere else a schema-valid request refused with 400 is a
mismatch between the document and the server. A viewer's 403s are documented responses.

Examples are few (two shared cores); ``FLOWPLANE_SCHEMATHESIS_EXAMPLES`` runs deeper.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_support import Serve, serving

PHASES = {"admin": "coverage,fuzzing,stateful", "viewer": "fuzzing,stateful"}
"""The coverage phase (boundary values of every parameter, ~2 minutes) runs as the admin, who
reaches every route's logic; a viewer mostly meets documented 403s, which fuzzing checks."""
EXAMPLES = int(os.environ.get("FLOWPLANE_SCHEMATHESIS_EXAMPLES", "3"))
SEED_WORKFLOW = (
    "name: st-seed\nnodes:\n"
    "  - {id: a, type: util.log, params: {message: hi}}\n"
    "  - {id: gate, type: control.approval, needs: [a], params: {title: ok}}\n"
)
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "412", "428", "429"]
"""A schema-valid request may meet state: a conflict, a stale or missing If-Match, a quota."""
SEMANTIC_400 = {
    # Workflow documents: connector types and their params, the graph, templates, durations.
    ("POST", "/v1/workflows"),
    ("POST", "/v1/workflows/import"),
    ("PUT", "/v1/workflows/{workflow_id}"),
    ("POST", "/v1/workflows/{workflow_id}/operations"),
    # A run's input is checked against the workflow's declared inputs; paths under --root.
    ("POST", "/v1/runs"),
    ("POST", "/v1/workflows/{workflow_id}/runs"),
    ("POST", "/v1/runs/{run_id}/retry"),
    ("POST", "/v1/runs/{run_id}/resume"),
    # frameNo must be one of the run's frames; fromNode one of its nodes.
    ("POST", "/v1/runs/{run_id}/rewind"),
    ("POST", "/v1/runs/{run_id}/fork"),
    # Cron expressions, IANA zones, instants, catch-up against the schedule's own fields.
    ("POST", "/v1/schedules"),
    ("PATCH", "/v1/schedules/{schedule_id}"),
    # A trigger's fields depend on its kind and scheme; correlation is an expression.
    ("POST", "/v1/triggers"),
    ("PUT", "/v1/triggers/{trigger_id}"),
    # An API key has no password to change (the caller here is an API key).
    ("POST", "/v1/auth/me/password"),
    # Cursors are opaque, issued by the server; ISO-8601 instants.
    ("GET", "/v1/runs"),
    ("GET", "/v1/runs/{run_id}/logs"),
    ("GET", "/v1/credentials"),
    ("GET", "/v1/kv/{namespace}"),
    ("GET", "/v1/audit"),
    ("GET", "/v1/workflows"),
    ("GET", "/v1/schedules"),
    ("GET", "/v1/triggers"),
    ("GET", "/v1/auth/tokens"),
    # Each RPC method has its own parameters (docs/events.md, docs/surfaces/gateway.md).
    ("POST", "/v1/rpc/{method}"),
    ("POST", "/rpc"),
    # A webhook's body is whatever its sender posts; its trigger decides.
    ("POST", "/v1/webhooks/{key}"),
    # workflowdev's surface: yamlContent is a flow (tasks, their types and properties), an
    # execution's input meets the flow's inputs, a cron trigger's expression, opaque
    # cursors, a KV value is any JSON but null, a password meets the policy, webhooks.
    ("POST", "/api/v1/flows"),
    ("PUT", "/api/v1/flows/{workflow_id}"),
    ("POST", "/api/v1/flows/import"),
    ("POST", "/api/v1/flows/{workflow_id}/execute"),
    ("POST", "/api/v1/executions/{run_id}/retry"),
    ("POST", "/api/v1/triggers"),
    ("PUT", "/api/v1/triggers/{trigger_id}"),
    ("GET", "/api/v1/flows"),
    ("GET", "/api/v1/executions"),
    ("GET", "/api/v1/credentials"),
    ("GET", "/api/v1/kv/{namespace}"),
    ("GET", "/api/v1/audit"),
    ("PUT", "/api/v1/kv/{namespace}/{key}"),
    ("POST", "/auth/register"),
    ("POST", "/api/v1/webhook/{key}"),
    ("POST", "/webhooks/{key}"),
    # The thodare surface (docs/surfaces/thodare.md): the same reasons, in its routes.
    ("DELETE", "/api/workflows/{workflow_id}"),
    ("POST", "/api/workflows/{workflow_id}/operations"),
    ("POST", "/api/workflows/{workflow_id}/run"),
    ("GET", "/api/runs/{run_id}/logs"),
    ("POST", "/api/schedules"),
    ("GET", "/api/schedules"),
    ("POST", "/api/webhooks/{key}"),
}


@dataclass
class Seeded:
    """A served app with objects to aim at and a key per role."""

    server: Serve
    keys: dict[str, str]
    parameters: dict[str, str]


def _seed(server: Serve) -> Seeded:
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as c:

        def made(response: httpx.Response, status: int = 201) -> dict[str, object]:
            assert response.status_code == status, response.text
            body: dict[str, object] = response.json()
            return body

        yaml = {"Content-Type": "application/yaml"}
        workflow = made(c.post("/v1/workflows", content=SEED_WORKFLOW, headers=yaml))
        run = made(c.post("/v1/runs", json={"workflowId": workflow["id"]}), 200)
        made(c.put("/v1/kv/default/seed", json={"value": 1}))
        credential = made(c.post("/v1/credentials", json={"name": "SEED", "value": "x"}))
        cron = {"name": "seed", "workflowId": workflow["id"], "cron": "0 0 * * *"}
        schedule = made(c.post("/v1/schedules", json=cron))
        trigger = made(c.post("/v1/triggers", json={"workflowId": workflow["id"]}))
        user = {"username": "seed", "password": "a-long-password", "role": "viewer"}
        made_user = made(c.post("/v1/auth/users", json=user))
        # The stateful phase revokes the key it is given: a throwaway one, never the caller's.
        throwaway = made(c.post("/v1/auth/tokens", json={"name": "st-throwaway", "role": "viewer"}))
        viewer = made(c.post("/v1/auth/tokens", json={"name": "st-viewer", "role": "viewer"}))
        approvals = c.get("/v1/approvals").json()["approvals"]
    token = throwaway["token"]
    assert isinstance(token, dict)
    parameters = {
        "path.workflow_id": workflow["id"],
        "path.run_id": run["runId"],
        "path.other_run_id": run["runId"],
        "path.node_id": "gate",
        "path.namespace": "default",
        "path.key": "seed",
        "path.credential_id": credential["id"],
        "path.schedule_id": schedule["id"],
        "path.trigger_id": trigger["id"],
        "path.user_id": made_user["id"],
        "path.token_id": token["id"],
        "path.type": "util.log",
        "path.approval_id": approvals[0]["id"] if approvals else "none",
        "path.connector_type": "util.log",
    }
    keys = {"admin": server.key, "viewer": str(viewer["secret"])}
    return Seeded(server, keys, {k: str(v) for k, v in parameters.items()})


@pytest.fixture
def seeded(db: tuple[str, str], tmp_path: Path) -> Iterator[Seeded]:
    """A seeded ``flowplane serve`` on each backend (the ``db`` fixture: SQLite, PostgreSQL)."""
    secret_key = base64.b64encode(os.urandom(32)).decode()  # credentials need a master key
    env = {"FLOWPLANE_SECRET_KEY": secret_key}
    database, schema = db
    with serving(tmp_path / "serve", database, "--database-schema", schema, env=env) as server:
        yield _seed(server)


def _config(seeded: Seeded) -> str:
    """The schemathesis.toml of a run: pinned parameters, the statuses state may cause."""
    lines = ["[parameters]"]
    lines += [f"{json.dumps(k)} = {json.dumps(v)}" for k, v in seeded.parameters.items()]
    lines += [
        "",
        "[checks.positive_data_acceptance]",
        f"expected-statuses = {json.dumps(ACCEPTED)}",
    ]
    # Writes answer within 10 s: a rewind or a fork waits for its run's lock, which under a
    # loaded CI machine took longer than the 1 s streams are read for. ``POST /v1/runs``
    # may answer with its run's stream (Accept: text/event-stream): 1 s, as streams.
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        lines += [
            "",
            "[[operations]]",
            f"include-method = {json.dumps(method)}",
            'exclude-path = "/v1/runs"',
            "request-timeout = 10",
        ]
    for method, path in sorted(SEMANTIC_400):
        lines += [
            "",
            "[[operations]]",
            f"include-path = {json.dumps(path)}",
            f"include-method = {json.dumps(method)}",
            "checks.positive_data_acceptance.expected-statuses = " + json.dumps([*ACCEPTED, "400"]),
        ]
    return "\n".join(lines) + "\n"


@pytest.mark.slow
@pytest.mark.parametrize("role", ["admin", "viewer"])
@pytest.mark.timeout(600)
def test_openapi_conformance(seeded: Seeded, role: str, tmp_path: Path) -> None:
    url = seeded.server.url
    document = httpx.get(f"{url}/openapi.json", headers=seeded.server.headers).json()
    (tmp_path / "openapi.json").write_text(json.dumps(document))
    (tmp_path / "schemathesis.toml").write_text(_config(seeded))
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(tmp_path / "schemathesis.toml"),
        "run",
        str(tmp_path / "openapi.json"),
        "--url",
        url,
        "--header",
        f"Authorization: Bearer {seeded.keys[role]}",
        "--checks",
        "all",
        "--phases",
        PHASES[role],
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        "1",
        "--workers",
        "1",
        "--request-timeout",
        "1",  # SSE streams of live runs stay open: read what came, then move on
        "--continue-on-failure",
        "--suppress-health-check",
        "all",
        "--no-color",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=540, cwd=tmp_path)
    (tmp_path / "schemathesis.out").write_text(done.stdout + done.stderr)
    summary = done.stdout[done.stdout.rfind("SUMMARY") - 40 :]
    print(summary)  # the numbers (operations, test cases, failures) in -rA / on failure
    if done.returncode != 0:
        log = seeded.server.log.read_text()
        errors = "\n".join(line for line in log.splitlines() if "Error" in line)[-5000:]
        pytest.fail(f"{done.stdout[-30000:]}{done.stderr[-2000:]}\nserver errors:\n{errors}")
    tested = re.search(r"Tested: (\d+)", summary)
    assert tested and int(tested.group(1)) == len(operations(document)), summary


def operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    """Every (method, path) of the document."""
    methods = {"get", "put", "post", "patch", "delete"}
    return [(m, p) for p, item in document["paths"].items() for m in item if m in methods]
