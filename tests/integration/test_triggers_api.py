"""Webhook triggers through HTTP, on SQLite and PostgreSQL.

Each signature scheme is exercised end to end: valid, missing, wrong, truncated, stale
timestamp, replayed delivery id, and a signature computed over re-serialised JSON.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import ApiHarness, api_fixture, started  # noqa: F401  (``api`` fixture)

from flowplane.security.webhooks import sign
from flowplane.services.caller import Caller

SECRETS = {
    "standard": "whsec_" + base64.b64encode(b"k" * 32).decode(),
    "github": "github-secret",
    "stripe": "whsec_stripe",
}
SIGNATURE_HEADER = {
    "standard": "webhook-signature",
    "github": "X-Hub-Signature-256",
    "stripe": "Stripe-Signature",
}


def workflow_doc(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "nodes": [{"id": "log", "type": "util.log", "params": {"message": "{{ input.body.x }}"}}],
        **extra,
    }


async def make_workflow(api: ApiHarness, doc: dict[str, Any]) -> dict[str, Any]:
    response = await api.client.post("/v1/workflows", json=doc)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def make_trigger(api: ApiHarness, **fields: Any) -> dict[str, Any]:
    response = await api.client.post("/v1/triggers", json=fields)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def deliver(
    api: ApiHarness, key: str, body: bytes, headers: dict[str, str] | None = None, **kw: Any
) -> httpx.Response:
    """POST a delivery with no API key at all."""
    async with api.client_for(None) as anonymous:
        return await anonymous.post(
            f"/v1/webhooks/{key}",
            content=body,
            headers={"Content-Type": "application/json", **(headers or {})},
            **kw,
        )


async def count_runs(api: ApiHarness) -> int:
    return len((await api.services.runs.list_runs(Caller.system(), limit=500)).items)


async def test_unsigned_trigger_starts_a_run_with_body_headers_and_query(api: ApiHarness) -> None:
    wf = await make_workflow(api, workflow_doc("hooked"))
    trigger = await make_trigger(api, workflowId=wf["id"], key="new-order")
    assert trigger["url"] == "/v1/webhooks/new-order" and trigger["hasSecret"] is False
    response = await deliver(
        api,
        "new-order",
        b'{"x": "{{ 7 * 7 }}", "n": 1}',
        {"X-Custom": "yes", "Authorization": "Bearer secret", "Cookie": "s=1"},
        params=[("a", "1"), ("a", "2"), ("b", "3")],
    )
    assert response.status_code == 202, response.text
    run = await api.services.runs.get(Caller.system(), response.json()["runId"])
    assert run.trigger == "webhook" and run.triggered_by == "webhook:new-order"
    data = run.input
    # The body is data: the template-looking string stays as it is.
    assert data["body"] == {"x": "{{ 7 * 7 }}", "n": 1}
    assert data["query"] == {"a": ["1", "2"], "b": "3"}
    assert data["headers"]["x-custom"] == "yes"
    assert "authorization" not in data["headers"] and "cookie" not in data["headers"]

    form = await deliver(
        api, "new-order", b"x=1&y=2", {"Content-Type": "application/x-www-form-urlencoded"}
    )
    form_run = await api.services.runs.get(Caller.system(), form.json()["runId"])
    assert form_run.input["body"] == {"x": "1", "y": "2"}

    unknown = await deliver(api, "no-such-key", b"{}")
    assert unknown.status_code == 404 and unknown.json()["code"] == "trigger_not_found"
    disabled = await api.client.put(
        f"/v1/triggers/{trigger['id']}",
        json={"workflowId": wf["id"], "key": "new-order", "enabled": False},
    )
    assert disabled.status_code == 200, disabled.text
    assert (await deliver(api, "new-order", b"{}")).status_code == 404
    # Other methods on the open path still need a token.
    async with api.client_for(None) as anonymous:
        assert (await anonymous.get("/v1/webhooks/new-order")).status_code == 401


@pytest.mark.parametrize("scheme", ["standard", "github", "stripe"])
async def test_signature_schemes(api: ApiHarness, scheme: str) -> None:
    wf = await make_workflow(api, workflow_doc(f"signed-{scheme}"))
    key = f"hook-{scheme}"
    trigger = await make_trigger(
        api, workflowId=wf["id"], key=key, scheme=scheme, secret=SECRETS[scheme]
    )
    assert trigger["hasSecret"] is True and "secret" not in trigger
    body = b'{"id": "evt_42", "x": "hello",  "nested": {"a": [1, 2]}}'
    now = int(time.time())

    def signed(payload: bytes = body, *, ts: int = now, delivery: str = "d-1") -> dict[str, str]:
        return sign(scheme, SECRETS[scheme], payload, timestamp=ts, delivery_id=delivery)

    valid = await deliver(api, key, body, signed())
    assert valid.status_code == 202, valid.text
    run_id = valid.json()["runId"]

    # Replaying the same delivery id starts nothing new.
    replay = await deliver(api, key, body, signed(ts=now + 1))
    assert replay.status_code == 200
    assert replay.json() == {"duplicate": True, "runId": run_id}
    assert await count_runs(api) == 1

    good = signed(delivery="d-2")
    header = SIGNATURE_HEADER[scheme]
    refused = {
        "missing": {k: v for k, v in good.items() if k != header},
        "wrong": sign(scheme, "not-the-secret", body, timestamp=now, delivery_id="d-2"),
        "truncated": {**good, header: good[header][:-8]},
        # The sender signed its own bytes; a proxy that re-serialises the JSON breaks it.
        "reserialised": signed(json.dumps(json.loads(body)).encode(), delivery="d-2"),
    }
    if scheme != "github":
        refused["stale"] = signed(ts=now - 301, delivery="d-2")
    for label, headers in refused.items():
        response = await deliver(api, key, body, headers)
        assert response.status_code == 401, (label, response.text)
        assert response.json()["code"] == "signature_invalid", label
    assert await count_runs(api) == 1

    metrics = (await api.client.get("/metrics")).text
    assert f'flowplane_webhook_signature_failures_total{{reason="mismatch",scheme="{scheme}"}}' in (
        metrics
    )

    if scheme == "stripe":
        # Stripe's event id is the delivery id: a retry with a fresh signature is a replay.
        retry = await deliver(api, key, body, signed(ts=now + 5, delivery="other"))
        assert retry.status_code == 200 and retry.json()["duplicate"] is True
    else:
        second = await deliver(api, key, body, good)
        assert second.status_code == 202
        assert await count_runs(api) == 2


async def test_trigger_crud_roles_and_namespaces(api: ApiHarness) -> None:
    wf = await make_workflow(api, workflow_doc("crud", namespace="team-a"))
    trigger = await make_trigger(api, workflowId=wf["id"])
    assert len(trigger["key"]) >= 20 and trigger["namespace"] == "team-a"
    assert (await api.client.get(f"/v1/triggers/{trigger['id']}")).json() == trigger
    taken = await api.client.post(
        "/v1/triggers", json={"workflowId": wf["id"], "key": trigger["key"]}
    )
    assert taken.status_code == 409 and taken.json()["code"] == "trigger_key_exists"
    no_secret = await api.client.post(
        "/v1/triggers", json={"workflowId": wf["id"], "scheme": "github"}
    )
    assert no_secret.status_code == 400
    bad_key = await api.client.post("/v1/triggers", json={"workflowId": wf["id"], "key": "a/b"})
    assert bad_key.status_code == 400

    replaced = await api.client.put(
        f"/v1/triggers/{trigger['id']}",
        json={"workflowId": wf["id"], "key": "renamed", "scheme": "github", "secret": "s3cret"},
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["key"] == "renamed" and replaced.json()["hasSecret"] is True
    # Omitting the secret on PUT keeps it.
    kept = await api.client.put(
        f"/v1/triggers/{trigger['id']}",
        json={"workflowId": wf["id"], "key": "renamed", "scheme": "github"},
    )
    assert kept.status_code == 200 and kept.json()["hasSecret"] is True

    viewer = await api.key("executor")
    other = await api.key("editor", namespaces=["team-b"])
    async with api.client_for(viewer) as as_executor:
        assert (await as_executor.get("/v1/triggers")).status_code == 403
    async with api.client_for(other) as as_other:
        assert (await as_other.get(f"/v1/triggers/{trigger['id']}")).status_code == 404
        assert (await as_other.delete(f"/v1/triggers/{trigger['id']}")).status_code == 404
        assert (await as_other.get("/v1/triggers")).json()["items"] == []
    listed = (await api.client.get("/v1/triggers", params={"limit": 1})).json()
    assert [t["id"] for t in listed["items"]] == [trigger["id"]]
    assert (await api.client.delete(f"/v1/triggers/{trigger['id']}")).status_code == 204
    assert (await api.client.get(f"/v1/triggers/{trigger['id']}")).status_code == 404


async def test_workflow_declared_webhook(api: ApiHarness) -> None:
    doc = workflow_doc("declared-hook", triggers=[{"type": "webhook", "key": "declared"}])
    wf = await make_workflow(api, doc)
    listed = (await api.client.get("/v1/triggers", params={"workflowId": wf["id"]})).json()
    (trigger,) = listed["items"]
    assert trigger["owner"] == "workflow" and trigger["key"] == "declared"
    assert (await deliver(api, "declared", b'{"x": 1}')).status_code == 202
    refused = await api.client.put(f"/v1/triggers/{trigger['id']}", json={"key": "other"})
    assert refused.status_code == 409
    assert (await api.client.delete(f"/v1/triggers/{trigger['id']}")).status_code == 409

    # The document asks for GitHub signatures; the secret is set here and survives updates.
    signed_doc = workflow_doc(
        "declared-hook", triggers=[{"type": "webhook", "key": "declared", "scheme": "github"}]
    )
    response = await api.client.put(
        f"/v1/workflows/{wf['id']}", json=signed_doc, headers={"If-Match": '"1"'}
    )
    assert response.status_code == 200, response.text
    unsigned = await deliver(api, "declared", b"{}")
    assert unsigned.status_code == 401 and unsigned.json()["reason"] == "no_secret"
    secret = await api.client.put(f"/v1/triggers/{trigger['id']}", json={"secret": "abc"})
    assert secret.status_code == 200 and secret.json()["hasSecret"] is True
    body = b'{"x": 2}'
    ok = await deliver(api, "declared", body, sign("github", "abc", body, delivery_id="g1"))
    assert ok.status_code == 202, ok.text

    taken = await api.client.post(
        "/v1/workflows",
        json=workflow_doc("thief", triggers=[{"type": "webhook", "key": "declared"}]),
    )
    assert taken.status_code == 409
    assert (await api.client.delete(f"/v1/workflows/{wf['id']}")).status_code == 204
    assert (await deliver(api, "declared", b"{}")).status_code == 404


SIGNAL_WORKFLOW = {
    "name": "await-payment",
    "inputs": {"type": "object", "properties": {"order": {"type": "integer"}}},
    "nodes": [
        {
            "id": "paid",
            "type": "wait.signal",
            "params": {"name": "payment", "correlation_id": "order-{{ input.order }}"},
        },
        {"id": "log", "type": "util.log", "params": {"message": "{{ nodes.paid.output }}"}},
    ],
}


async def wait_status(api: ApiHarness, run_id: str, status: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while (await api.services.runs.get(Caller.system(), run_id)).status != status:
        if time.monotonic() > deadline:
            run = await api.services.runs.get(Caller.system(), run_id)
            nodes = [
                (n.node_id, n.status, n.error)
                for n in await api.services.runs.nodes(Caller.system(), run_id)
            ]
            raise AssertionError(
                f"run never became {status}: {run['status']} {run['error']} {nodes}"
            )
        await asyncio.sleep(0.1)


async def test_signal_trigger_wakes_the_correlated_run(db: tuple[str, str], tmp_path: Path) -> None:
    async with started(db, tmp_path / "root", workers=1) as api:
        wf = await make_workflow(api, SIGNAL_WORKFLOW)
        runs = [
            (
                await api.services.runs.start(
                    Caller.system(), SIGNAL_WORKFLOW, {"order": n}, workflow_id=wf["id"]
                )
            ).run.id
            for n in (1, 2)
        ]
        for run_id in runs:
            await wait_status(api, run_id, "waiting-event")
        await make_trigger(
            api,
            key="payments",
            kind="signal",
            namespace="default",
            signalName="payment",
            correlation='"order-" ~ body.order.id',
            scheme="standard",
            secret=SECRETS["standard"],
        )
        body = b'{"order": {"id": 1}, "amount": "{{ 6 * 7 }}"}'
        headers = sign("standard", SECRETS["standard"], body, delivery_id="pay-1")
        response = await deliver(api, "payments", body, headers)
        assert response.status_code == 202, response.text
        assert response.json() == {"delivered": 1, "runIds": [runs[0]], "correlationId": "order-1"}
        await wait_status(api, runs[0], "finished")
        assert (await api.services.runs.get(Caller.system(), runs[1])).status == "waiting-event"
        nodes = {n.node_id: n for n in await api.services.runs.nodes(Caller.system(), runs[0])}
        payload = nodes["paid"].output["payload"]
        assert payload["body"]["amount"] == "{{ 6 * 7 }}"  # data, never rendered
        replay = await deliver(api, "payments", body, headers)
        assert replay.status_code == 200 and replay.json()["duplicate"] is True
        nobody = sign("standard", SECRETS["standard"], b'{"order": {"id": 9}}', delivery_id="p9")
        none = await deliver(api, "payments", b'{"order": {"id": 9}}', nobody)
        assert none.status_code == 202 and none.json()["delivered"] == 0
