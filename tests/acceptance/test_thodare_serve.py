"""The thodare seed's examples, verbatim, against a real ``flowplane serve``.

One server per backend (SQLite and PostgreSQL) for the module, started with the seed's user
connector ``greet`` (``thodare_greet.py``, the seed's "your connectors here"). The curl
quickstart runs as printed under bash, with curl and jq; only the values of its two
settings change (``TOKEN`` becomes the server's key: Flowplane keys are ``fp_...``; ``URL``
the server's address). Then every other row of the seed's route table is sent over HTTP.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_support import Serve, serving

from conftest import POSTGRES_URL, drop_schema, require_postgres

HERE = Path(__file__).parent

# Seed 000 (@thodare/api), section "Curl quickstart", copied as printed.
QUICKSTART = """\
TOKEN=demo-token
URL=http://localhost:3000
H="Authorization: Bearer $TOKEN"

# 1. Create empty workflow.
WF=$(curl -sX POST "$URL/api/workflows" -H "$H" -H 'content-type: application/json' -d '{}')
WFID=$(echo "$WF" | jq -r .id)
VER=$(echo "$WF" | jq -r .version)
echo "wf=$WFID v=$VER"

# 2. Discover the catalog (this is what your LLM gets in its system prompt).
curl -s "$URL/api/connectors?detail=summary" -H "$H" | jq

# 3. First patch — the LLM proposes ops. The response is feedable back to the LLM.
curl -s -X POST "$URL/api/workflows/$WFID/operations" \\
  -H "$H" -H "If-Match: $VER" -H 'content-type: application/json' \\
  -d '{"ops":[
    {"operation_type":"add","block_id":"trg","type":"trigger_webhook","params":{}},
    {"operation_type":"add","block_id":"g","type":"greet","params":{"name":"Ada"}},
    {"operation_type":"connect","block_id":"trg","target_block_id":"g"}
  ]}' | jq '{ok, version, summary, skipped_items}'

# 4. Run.
RUN=$(curl -sX POST "$URL/api/workflows/$WFID/run" -H "$H" -H 'content-type: application/json' \\
  -d '{"input":{"hello":"world"}}')
RUNID=$(echo "$RUN" | jq -r .runId)

# 5. Poll until done.
curl -s "$URL/api/runs/$RUNID" -H "$H" | jq '{state, output}'
"""

# Step 5 says "poll until done": the same printed command, repeated until the run ended.
POLL = """
for i in $(seq 1 600); do
  STATE=$(curl -s "$URL/api/runs/$RUNID" -H "$H" | jq -r .state)
  if [ "$STATE" = completed ] || [ "$STATE" = failed ]; then break; fi
  sleep 0.1
done
curl -s "$URL/api/runs/$RUNID" -H "$H" | jq '{state, output}'
"""

pytestmark = pytest.mark.skipif(
    shutil.which("curl") is None or shutil.which("jq") is None, reason="needs curl and jq"
)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Serve]:
    """``flowplane serve --plugin thodare_greet`` on one backend, for the whole module."""
    base = tmp_path_factory.mktemp(f"thodare-{request.param}")
    env = {
        "PYTHONPATH": os.pathsep.join([str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])])
    }
    args = ["--plugin", "thodare_greet", "--workers", "1"]
    if request.param == "sqlite":
        with serving(base, f"sqlite:///{base / 'fp.db'}", *args, env=env) as running:
            yield running
        return
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        with serving(base, POSTGRES_URL, "--database-schema", schema, *args, env=env) as running:
            yield running
    finally:
        drop_schema(schema)


def json_documents(text: str) -> list[Any]:
    """The JSON values jq printed one after the other."""
    decoder = json.JSONDecoder()
    out: list[Any] = []
    index = 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index >= len(text):
            return out
        value, index = decoder.raw_decode(text, index)
        out.append(value)


def test_curl_quickstart_as_printed(server: Serve) -> None:
    script = QUICKSTART.replace("TOKEN=demo-token", f"TOKEN={server.key}", 1)
    script = script.replace("URL=http://localhost:3000", f"URL={server.url}", 1)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script + POLL],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    first, _, rest = result.stdout.partition("\n")
    assert first.startswith("wf=") and first.endswith(" v=1"), first
    catalog, patched, polled, final = json_documents(rest)

    greet = [c for c in catalog["data"] if c["type"] == "greet"]
    assert greet == [
        {
            "type": "greet",
            "name": "Greet",
            "category": "demo",
            "description": "Say hello to someone by name.",
        }
    ]
    assert set(catalog["data"][0]) == {"type", "name", "category", "description"}

    assert patched["ok"] is True and patched["version"] == 2, patched
    assert patched["skipped_items"] == [] and patched["summary"]

    assert polled["state"] in ("pending", "running", "completed"), polled
    assert final["state"] == "completed", final
    assert final["output"]["outputs"] == {
        "trg": {"hello": "world"},
        "g": {"greeting": "Hello, Ada!"},
    }


def test_route_table(server: Serve) -> None:
    """Every other row of the seed's route table, in the seed's shapes."""
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as http:
        assert http.get("/health").status_code == 200
        anonymous = httpx.post(f"{server.url}/api/workflows", json={})
        assert anonymous.status_code == 401 and anonymous.json()["error"] == "unauthorized"

        created = http.post("/api/workflows", json={"metadata": {"name": "route-table"}})
        assert created.status_code == 201
        wf_id = created.json()["id"]
        got = http.get(f"/api/workflows/{wf_id}").json()
        assert got["id"] == wf_id and got["version"] == 1 and got["workflow"]["blocks"] == []

        ops = {
            "ops": [
                {"operation_type": "add", "block_id": "trg", "type": "trigger_webhook"},
                {
                    "operation_type": "add",
                    "block_id": "w",
                    "type": "wait.signal",
                    "params": {"name": "never"},
                },
                {"operation_type": "connect", "block_id": "trg", "target_block_id": "w"},
            ]
        }
        patched = http.post(
            f"/api/workflows/{wf_id}/operations", json=ops, headers={"If-Match": "1"}
        )
        assert patched.json()["ok"] is True, patched.text
        stale = http.post(f"/api/workflows/{wf_id}/operations", json=ops, headers={"If-Match": "1"})
        assert stale.status_code == 412
        assert stale.json()["error"] == "version_mismatch" and stale.json()["current"] == 2

        run = http.post(f"/api/workflows/{wf_id}/run", json={"input": {"a": 1}})
        assert run.status_code == 202
        run_id = run.json()["runId"]
        state = wait_state(http, run_id, "sleeping")
        assert state["status"] == "waiting-event"
        assert http.post(f"/api/runs/{run_id}/cancel").status_code == 204
        assert wait_state(http, run_id, "canceled")["state"] == "canceled"
        logs = http.get(f"/api/runs/{run_id}/logs", params={"limit": 10}).json()
        assert [item["name"] for item in logs["data"] if item["kind"] == "attempt"] == ["trg"]
        assert "next" in logs["pagination"]

        full = http.get("/api/connectors").json()["data"]
        assert {"type", "inputSchema", "outputSchema"} <= set(full[0])

        schedule = http.post(
            "/api/schedules",
            json={"workflowId": wf_id, "cron": "*/5 * * * *", "payload": {"a": 2}},
        )
        assert schedule.status_code == 201, schedule.text
        schedule_id = schedule.json()["id"]
        assert [s["id"] for s in http.get("/api/schedules").json()["data"]] == [schedule_id]
        tick = http.post("/api/admin/tick").json()
        assert {"fired", "failed", "skippedAlreadyFired", "skippedNotMatching"} <= set(tick)
        assert isinstance(tick["fired"], list) and tick["failed"] == []
        assert http.delete(f"/api/schedules/{schedule_id}").status_code == 204

        hook_wf = http.post("/api/workflows", json={}).json()["id"]
        hook_ops = {
            "ops": [
                {"operation_type": "add", "block_id": "trg", "type": "trigger_webhook"},
                {
                    "operation_type": "add",
                    "block_id": "g",
                    "type": "greet",
                    "params": {"name": "{{trigger.who}}"},
                },
                {"operation_type": "connect", "block_id": "trg", "target_block_id": "g"},
            ]
        }
        assert http.post(f"/api/workflows/{hook_wf}/operations", json=hook_ops).json()["ok"]
        key = f"hook-{uuid.uuid4().hex[:8]}"
        assert (
            http.post("/v1/triggers", json={"key": key, "workflowId": hook_wf}).status_code == 201
        )
        delivered = http.post(f"/api/webhooks/{key}", json={"who": "Grace"})
        assert delivered.status_code == 202, delivered.text
        done = wait_state(http, delivered.json()["runId"], "completed", "failed")
        assert done["output"]["outputs"]["g"] == {"greeting": "Hello, Grace!"}

        assert http.delete(f"/api/workflows/{wf_id}").status_code == 204
        gone = http.get(f"/api/workflows/{wf_id}")
        assert gone.status_code == 404 and gone.json()["error"] == "not_found"


def wait_state(http: httpx.Client, run_id: str, *states: str) -> dict[str, Any]:
    """Poll ``GET /api/runs/:id`` until its ``state`` is one of ``states``."""
    deadline = time.monotonic() + 30
    while True:
        body: dict[str, Any] = http.get(f"/api/runs/{run_id}").json()
        if body.get("state") in states:
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.1)
