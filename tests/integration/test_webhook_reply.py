"""A webhook caller answered by the run's ``http.webhook_response`` node, on both backends."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx
from api_support import ApiHarness, started

from flowplane.services.caller import Caller

REPLY_WORKFLOW: dict[str, Any] = {
    "name": "quote",
    "nodes": [
        {
            "id": "total",
            "type": "util.set",
            "params": {"value": "{{ input.body.a + input.body.b }}"},
        },
        {
            "id": "reply",
            "type": "http.webhook_response",
            "needs": ["total"],
            "params": {
                "status": 201,
                "body": {"total": "{{ nodes.total.output }}"},
                "headers": {"X-Quote": "q-{{ input.body.a }}", "X-Request-Id": "forged"},
            },
        },
        # Slow work after the reply: the caller does not wait for it.
        {"id": "later", "type": "wait.duration", "needs": ["reply"], "params": {"duration": "3s"}},
    ],
}


async def setup(api: ApiHarness, workflow: dict[str, Any], key: str) -> None:
    created = await api.client.post("/v1/workflows", json=workflow)
    assert created.status_code == 201, created.text
    trigger = await api.client.post(
        "/v1/triggers", json={"workflowId": created.json()["id"], "key": key}
    )
    assert trigger.status_code == 201, trigger.text


async def deliver(api: ApiHarness, key: str, body: dict[str, Any]) -> httpx.Response:
    async with api.client_for(None) as anonymous:
        return await anonymous.post(f"/v1/webhooks/{key}", json=body)


async def wait_finished(api: ApiHarness, run_id: str) -> None:
    deadline = time.monotonic() + 15
    while (await api.services.runs.get(Caller.system(), run_id)).status != "finished":
        assert time.monotonic() < deadline, "the run did not finish"
        await asyncio.sleep(0.1)


async def test_the_reply_node_answers_the_caller(db: tuple[str, str], tmp_path: Path) -> None:
    async with started(db, tmp_path / "root", workers=1) as api:
        await setup(api, REPLY_WORKFLOW, "quote")
        response = await deliver(api, "quote", {"a": 2, "b": 3})
        assert response.status_code == 201, response.text
        assert response.json() == {"total": 5}
        assert response.headers["content-type"] == "application/json"
        assert response.headers["x-quote"] == "q-2"
        assert response.headers["x-request-id"] != "forged"  # ours, not the workflow's
        # Served from the API's origin: nothing in it may run as script there.
        assert response.headers["content-security-policy"].startswith("sandbox")
        assert response.headers["x-content-type-options"] == "nosniff"
        assert int(response.headers["content-length"]) == len(response.content)
        runs = (await api.services.runs.list_runs(Caller.system(), limit=10)).items
        assert len(runs) == 1
        # The caller had its answer before the run's slow last node; the run still finishes.
        assert runs[0].status != "finished"
        await wait_finished(api, runs[0].id)


async def test_text_body(db: tuple[str, str], tmp_path: Path) -> None:
    workflow = {
        "name": "text-reply",
        "nodes": [
            {
                "id": "reply",
                "type": "http.webhook_response",
                "params": {"status": 200, "body": "hello {{ input.body.who }}"},
            }
        ],
    }
    async with started(db, tmp_path / "root", workers=1) as api:
        await setup(api, workflow, "hello")
        response = await deliver(api, "hello", {"who": "ada"})
        assert response.status_code == 200
        assert response.text == "hello ada"
        assert response.headers["content-type"].startswith("text/plain")


async def test_a_run_that_never_replies_gets_the_usual_202(
    db: tuple[str, str], tmp_path: Path
) -> None:
    workflow = {
        "name": "skipped-reply",
        "nodes": [
            {"id": "reply", "type": "http.webhook_response", "when": "{{ false }}", "params": {}}
        ],
    }
    async with started(db, tmp_path / "root", workers=1) as api:
        await setup(api, workflow, "skipped")
        response = await deliver(api, "skipped", {})
        assert response.status_code == 202
        run_id = response.json()["runId"]
        await wait_finished(api, run_id)


async def test_the_wait_is_bounded(db: tuple[str, str], tmp_path: Path) -> None:
    workflow = {
        "name": "slow-reply",
        "nodes": [
            {"id": "slow", "type": "wait.duration", "params": {"duration": "30s"}},
            {"id": "reply", "type": "http.webhook_response", "needs": ["slow"], "params": {}},
        ],
    }
    async with started(db, tmp_path / "root", workers=1, webhook_reply_timeout_seconds=0.5) as api:
        await setup(api, workflow, "slow")
        began = time.monotonic()
        response = await deliver(api, "slow", {})
        assert response.status_code == 202
        assert json.loads(response.content)["runId"]
        assert time.monotonic() - began < 10
