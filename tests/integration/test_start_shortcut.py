"""Starts answered by :mod:`flowplane.api.start_shortcut` are the routes' answers.

The same requests go to the app as it is and to the same app without the shortcut (the
routes answer every start), on one database: statuses, headers, bodies (run ids and
times aside) and the metrics' route labels must be the same, for new runs, idempotent
replays, refusals the endpoints raise (404, 409, 422, 400) and the cases the shortcut
leaves to the route (a viewer's 403, a body the model refuses). Both backends.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
from api_support import BASE_URL, ApiHarness, api_fixture  # noqa: F401  (the api fixture)

from flowplane.api.app import create_app
from flowplane.api.start_shortcut import StartShortcut

WORKFLOW = "name: shortcut-wf\nnodes:\n  - {id: a, type: util.noop}\n"
VOLATILE = re.compile(
    r'"(runId|createdAtMs|startedAtMs|finishedAtMs|createdAt|finishedAt|durationMs)":'
    r'("[^"]*"|-?\d+|null)'
)
RATE_LEFT = re.compile(r"\br=\d+")
SKIPPED_HEADERS = {"x-request-id", "content-length"}
EXPECTED_STATUSES = [200, 200, 200, 422, 200, 409, 404, 201, 201, 200, 400, 404, 404, 403, 400, 400]
EXPECTED_STATUSES += [200, 201]  # the oddly named executor's starts
ODD_NAME = 'exécuteur "☃" \\ \t \u007f </x>'
"""A key name (a run's ``triggeredBy``) that JSON must escape or keep as UTF-8."""
START_SAMPLES = (
    'flowplane_http_requests_total{method="POST",route="/v1/runs"',
    'flowplane_http_requests_total{method="POST",route="/v1/workflows/{workflow_id}/runs"',
)


def _shape(response: httpx.Response, tag: str) -> tuple[int, list[tuple[str, str]], str]:
    headers = [(k, v) for k, v in response.headers.items() if k not in SKIPPED_HEADERS]
    # What is left of the rate limit moves with the clock (the bucket refills): not compared.
    headers = [(k, RATE_LEFT.sub("r=~", v) if k == "ratelimit" else v) for k, v in headers]
    body = VOLATILE.sub(r'"\1":"~"', response.text).replace(tag, "<tag>")
    return response.status_code, headers, body


def _scenario(wid: str, tag: str) -> list[tuple[str, str, dict[str, str], Any]]:
    """(role, path, headers, JSON body) of each request; ``tag`` keeps keys and ids apart."""
    runs = f"/v1/workflows/{wid}/runs"
    key = {"Idempotency-Key": f"{tag}-k1"}
    return [
        ("executor", "/v1/runs", {}, {"workflowId": wid, "input": {"x": 1}}),
        ("executor", "/v1/runs", key, {"workflowId": wid, "input": {"x": 2}}),
        ("executor", "/v1/runs", key, {"workflowId": wid, "input": {"x": 2}}),  # replay
        ("executor", "/v1/runs", key, {"workflowId": wid, "input": {"x": 3}}),  # 422
        ("executor", "/v1/runs", {}, {"workflow": "shortcut-wf", "runId": f"{tag}-r1"}),
        ("executor", "/v1/runs", {}, {"workflow": "shortcut-wf", "runId": f"{tag}-r1"}),  # 409
        ("executor", "/v1/runs", {}, {"workflowId": "no-such-workflow"}),  # 404
        ("executor", runs, {}, {"input": {"y": 1}}),  # 201
        ("executor", runs, {"Idempotency-Key": f"{tag}-k2"}, {"input": {}}),
        ("executor", runs, {"Idempotency-Key": f"{tag}-k2"}, {"input": {}}),  # 200 replay
        ("executor", runs, {"Idempotency-Key": f"{tag}-k3"}, {"idempotencyKey": "other"}),  # 400
        ("executor", "/v1/workflows/no-such-workflow/runs", {}, {}),  # 404
        ("outsider", runs, {}, {}),  # another namespace's executor: 404
        ("viewer", runs, {}, {}),  # 403 (the route's)
        ("executor", runs, {}, {"unknownField": 1}),  # 400 (the route's)
        ("executor", "/v1/runs", {}, []),  # 400 (the route's)
        ("odd", "/v1/runs", {}, {"workflowId": wid, "input": {"z": "é"}}),
        ("odd", runs, {}, {"input": {"z": "☃"}}),
    ]


async def _play(
    app: Any, keys: dict[str, str], wid: str, tag: str
) -> list[tuple[int, list[tuple[str, str]], str]]:
    shapes = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        for role, path, headers, body in _scenario(wid, tag):
            response = await client.post(
                path,
                content=json.dumps(body),
                headers={
                    "Authorization": f"Bearer {keys[role]}",
                    "Content-Type": "application/json",
                    **headers,
                },
            )
            shapes.append(_shape(response, tag))
        metrics = await client.get("/metrics", headers={"Authorization": f"Bearer {keys['admin']}"})
    samples = sorted(line for line in metrics.text.splitlines() if line.startswith(START_SAMPLES))
    shapes.append((0, [], "\n".join(samples)))
    return shapes


def _shortcut_of(app: Any) -> StartShortcut:
    layer = app.middleware_stack
    while not isinstance(layer, StartShortcut):
        layer = layer.app
    return layer


async def test_shortcut_answers_as_the_routes(api: ApiHarness, tmp_path: Path) -> None:
    created = await api.client.post(
        "/v1/workflows", content=WORKFLOW, headers={"Content-Type": "text/yaml"}
    )
    wid = created.raise_for_status().json()["id"]
    keys = {
        "admin": api.admin_key,
        "executor": await api.key("executor"),
        "viewer": await api.key("viewer"),
        "outsider": await api.key("executor", namespaces=["elsewhere"]),
        "odd": await api.key("executor", name=ODD_NAME, fresh=True),
    }
    with_shortcut = await _play(api.app, keys, wid, "tagA")
    assert _shortcut_of(api.app)._routes is not None, "the shortcut answered nothing"

    plain = create_app(api.settings)
    shortcut: Any = StartShortcut
    plain.user_middleware = [m for m in plain.user_middleware if m.cls is not shortcut]
    async with plain.router.lifespan_context(plain):
        without = await _play(plain, keys, wid, "tagB")

    statuses = [status for status, _, _ in with_shortcut[:-1]]
    assert statuses == EXPECTED_STATUSES
    for index, (mine, theirs) in enumerate(zip(with_shortcut, without, strict=True)):
        assert mine == theirs, f"request {index}: {mine} != {theirs}"


async def test_shortcut_start_is_audited_with_request_and_actor(api: ApiHarness) -> None:
    created = await api.client.post(
        "/v1/workflows", content=WORKFLOW, headers={"Content-Type": "text/yaml"}
    )
    wid = created.raise_for_status().json()["id"]
    executor = await api.key("executor")
    for path, body, rid in [
        ("/v1/runs", {"workflowId": wid}, "start-1"),
        (f"/v1/workflows/{wid}/runs", {"input": {}}, "start-2"),
    ]:
        started = await api.client.post(
            path, json=body, headers={**api.auth(executor), "X-Request-Id": rid}
        )
        assert started.status_code in (200, 201) and started.headers["x-request-id"] == rid
        run_id = started.json()["runId"]
        found = (await api.client.get("/v1/audit", params={"requestId": rid})).json()["items"]
        assert [i["targetId"] for i in found] == [run_id]
        assert found[0]["actorKind"] == "api_key" and found[0]["actor"] == "test-executor-all"
    assert _shortcut_of(api.app)._routes is not None, "the shortcut answered nothing"
