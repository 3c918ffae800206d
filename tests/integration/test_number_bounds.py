"""Every number a request carries to the database is bounded at the edge (issue 17, item 6).

Integers past 2^63 used to be 500s on SQLite (``OverflowError`` binding the parameter) and
503s on PostgreSQL (``bigint out of range`` taken for a storage failure), and a schedule
``startAt`` of 10^15 ms (year 33658) overflowed ``datetime``. Each face now refuses them
with a 400 problem: REST query, path and body, RPC over HTTP, the WebSocket gateway, the
``Last-Event-ID`` header, ISO-8601/millisecond times, documents' declared schedules and the
serve mode of ``flowplane run``; the store turns a driver overflow that slips past into a
400 as well. The largest accepted values must work on both databases.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml
from api_support import BASE_URL, ApiHarness, api_fixture, harness_settings
from runs_support import APPROVAL_WORKFLOW, free_port
from websockets.asyncio.client import connect

from flowplane.api import rpc
from flowplane.api.app import create_app
from flowplane.api.single_run import create_single_run_app
from flowplane.errors import InvalidInput
from flowplane.model.bounds import INT32_MAX, INT64_MAX, INT64_MIN, MAX_EPOCH_MS
from flowplane.store import reads
from flowplane.store.base import Store

api = api_fixture  # the ``api`` fixture, on SQLite and PostgreSQL

TOO_BIG = 2**63  # one past the largest SQLite INTEGER / PostgreSQL bigint
TOO_SMALL = -(2**63) - 1
TOO_LATE_MS = 10**15  # year 33658: fits a bigint, not a datetime
PROBLEM = "application/problem+json"


def assert_400(r: httpx.Response, code: str, what: object = "") -> None:
    """A 400 problem document with ``code`` (never a 5xx); ``/v1/rpc`` answers Smithers'
    response frame instead, with Flowplane's code as ``error.flowplaneCode``, and the seed
    surfaces under ``/api/`` their own JSON error body carrying ``code``."""
    assert r.status_code == 400, (what, r.status_code, r.text[:300])
    if r.request.url.path.startswith("/v1/rpc/"):
        frame = r.json()
        assert frame["ok"] is False and frame["error"]["code"] == "INVALID_REQUEST", (what, frame)
        assert frame["error"]["flowplaneCode"] == code, (what, frame)
        return
    if r.request.url.path.startswith("/api/"):
        # A seed surface answers in its own error shape, with Flowplane's stable code.
        assert r.headers["content-type"].startswith("application/json"), (what, r.headers)
        assert r.json()["code"] == code, (what, r.json())
        return
    assert r.headers["content-type"].startswith(PROBLEM), (what, r.headers)
    assert r.json()["code"] == code, (what, r.json())


@contextlib.asynccontextmanager
async def raw_client(api: ApiHarness) -> AsyncIterator[httpx.AsyncClient]:
    """An admin client that answers a crash with its 500 instead of raising it."""
    transport = httpx.ASGITransport(app=api.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(
        transport=transport, base_url=BASE_URL, headers=api.auth(api.admin_key)
    ) as client:
        yield client


async def waiting_run(c: httpx.AsyncClient) -> tuple[str, str]:
    """A stored approval workflow and a run of it: ``(workflow id, run id)``."""
    created = await c.post(
        "/v1/workflows", content=APPROVAL_WORKFLOW, headers={"Content-Type": "application/yaml"}
    )
    assert created.status_code == 201, created.text
    workflow_id: str = created.json()["id"]
    started = await c.post("/v1/runs", json={"workflowId": workflow_id})
    assert started.status_code == 200, started.text
    run_id: str = started.json()["runId"]
    return workflow_id, run_id


# --- the issue's examples ---------------------------------------------------------------------

# (method, path, JSON body, expected code); {wf} and {run} are filled in.
EXAMPLES: list[tuple[str, str, Any, str]] = [
    ("GET", f"/v1/runs?createdAfter={TOO_BIG}", None, "invalid_input"),
    ("GET", f"/v1/runs?createdBefore={TOO_BIG}", None, "invalid_input"),
    ("GET", f"/v1/runs?createdAfter={TOO_SMALL}", None, "invalid_input"),
    ("GET", f"/v1/runs?createdBefore={TOO_LATE_MS}", None, "invalid_input"),
    ("GET", "/v1/runs?createdAfter=-1", None, "invalid_input"),
    ("POST", "/v1/rpc/listRuns", {"createdAfter": TOO_BIG}, "validation_error"),
    ("POST", "/v1/rpc/listRuns", {"createdBefore": str(TOO_BIG)}, "invalid_input"),
    ("POST", "/v1/rpc/listRuns", {"createdBefore": TOO_LATE_MS}, "validation_error"),
    (
        "POST",
        "/v1/rpc/streamRunEvents",
        {"runId": "{run}", "afterSeq": TOO_BIG},
        "validation_error",
    ),
    ("POST", "/v1/rpc/subscribe", {"runId": "{run}", "afterSeq": TOO_BIG}, "validation_error"),
    ("POST", "/v1/rpc/subscribe", {"namespace": "*", "afterSeq": TOO_BIG}, "validation_error"),
    ("GET", f"/v1/runs/{{run}}/events?afterSeq={TOO_BIG}", None, "validation_error"),
    ("GET", f"/v1/events?namespace=*&afterSeq={TOO_BIG}", None, "validation_error"),
    ("GET", f"/v1/workflows/{{wf}}/revisions/{TOO_BIG}", None, "validation_error"),
    ("POST", f"/v1/workflows/{{wf}}/revisions/{TOO_BIG}/restore", None, "validation_error"),
    ("POST", "/v1/runs/{run}/nodes/ask/approve", {"iteration": TOO_BIG}, "validation_error"),
    ("POST", "/v1/runs/{run}/nodes/ask/deny", {"iteration": TOO_BIG}, "validation_error"),
    (
        "POST",
        "/v1/rpc/submitApproval",
        {"runId": "{run}", "nodeId": "ask", "approved": True, "iteration": TOO_BIG},
        "validation_error",
    ),
    ("GET", f"/v1/audit?sinceMs={TOO_BIG}", None, "validation_error"),
    ("GET", f"/v1/audit?untilMs={TOO_BIG}", None, "validation_error"),
    ("GET", f"/v1/audit?sinceMs={TOO_LATE_MS}", None, "validation_error"),
    ("GET", f"/v1/audit?cursor={TOO_BIG}", None, "validation_error"),
    ("POST", "/v1/schedules", {"workflowId": "{wf}", "startAt": TOO_BIG}, "validation_error"),
    ("POST", "/v1/schedules", {"workflowId": "{wf}", "startAt": TOO_LATE_MS}, "validation_error"),
    ("POST", "/v1/schedules", {"workflowId": "{wf}", "endAt": TOO_LATE_MS}, "validation_error"),
    (
        "POST",
        "/v1/rpc/cronCreate",
        {"workflowId": "{wf}", "startAt": TOO_LATE_MS},
        "validation_error",
    ),
    # The neighbours: frames, time travel, logs cursors, token expiry.
    ("GET", f"/v1/runs/{{run}}/frames?afterFrameNo={TOO_BIG}", None, "validation_error"),
    ("POST", "/v1/runs/{run}/rewind", {"frameNo": TOO_BIG}, "validation_error"),
    ("POST", "/v1/runs/{run}/fork", {"frameNo": TOO_BIG}, "validation_error"),
    # A field that narrows a bounded type keeps its own bound too (frames start at 1).
    ("POST", "/v1/runs/{run}/rewind", {"frameNo": 0}, "validation_error"),
    ("POST", "/v1/runs/{run}/fork", {"frameNo": 0}, "validation_error"),
    ("POST", "/v1/rpc/rewindRun", {"runId": "{run}", "frameNo": TOO_BIG}, "validation_error"),
    ("GET", f"/v1/runs/{{run}}/logs?after={TOO_BIG}", None, "invalid_input"),
    ("GET", f"/v1/runs/{{run}}/logs?after=1.{TOO_BIG}", None, "invalid_input"),
    (
        "POST",
        "/v1/auth/tokens",
        {"name": "far", "role": "viewer", "expiresAtMs": TOO_LATE_MS},
        "validation_error",
    ),
]


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


@pytest.mark.parametrize(("method", "path", "body", "code"), EXAMPLES, ids=lambda v: str(v)[:40])
async def test_issue_examples_are_400(
    api: ApiHarness, method: str, path: str, body: Any, code: str
) -> None:
    async with raw_client(api) as c:
        wf, run = await waiting_run(c)
        ids = {"wf": wf, "run": run}
        if path == "/v1/schedules" or path.endswith("cronCreate"):
            body = {"cron": "@hourly", **body}
        kwargs = {"json": _fill(body, ids)} if body is not None else {}
        r = await c.request(method, _fill(path, ids), **kwargs)
        assert_400(r, code, (method, path, body))


# --- every integer of the OpenAPI document ----------------------------------------------------


def _integer_schemas(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The integer alternatives of a parameter schema."""
    options = schema.get("anyOf", [schema])
    return [s for s in options if s.get("type") == "integer"]


def _int_params(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """``(method, path, parameter)`` of every integer query and path parameter."""
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for param in operation.get("parameters", []):
                if param["in"] in ("query", "path") and _integer_schemas(param["schema"]):
                    found.append((method.upper(), path, param))
    return found


async def test_every_integer_parameter_is_bounded(api: ApiHarness) -> None:
    """Each integer query/path parameter of every route refuses 2^63 and -2^63 - 1 (and
    10^15 for a time in ms) with a 400, and documents its range."""
    async with raw_client(api) as c:
        wf, run = await waiting_run(c)
        document = (await c.get("/openapi.json")).json()
        params = _int_params(document)
        # The routes the issue names are among them (a sanity check of the discovery).
        names = {(path, param["name"]) for _, path, param in params}
        assert {
            ("/v1/audit", "sinceMs"),
            ("/v1/audit", "untilMs"),
            ("/v1/runs/{run_id}/events", "afterSeq"),
            ("/v1/workflows/{workflow_id}/revisions/{version}", "version"),
        } <= names
        fill = {"run_id": run, "workflow_id": wf, "namespace": "default", "node_id": "ask"}
        for method, path, param in params:
            for schema in _integer_schemas(param["schema"]):
                assert INT64_MIN <= schema.get("minimum", INT64_MIN - 1), (path, param)
                assert schema.get("maximum", INT64_MAX + 1) <= INT64_MAX, (path, param)
            values = [TOO_BIG, TOO_SMALL]
            if param["name"].endswith("Ms"):
                values.append(TOO_LATE_MS)
            for value in values:
                url = path
                for name, filler in fill.items():
                    url = url.replace("{" + name + "}", filler)
                query: dict[str, Any] = {}
                if param["in"] == "path":
                    url = url.replace("{" + param["name"] + "}", str(value))
                else:
                    query[param["name"]] = value
                if path == "/v1/events":
                    query["namespace"] = "*"
                url = url.replace("{", "").replace("}", "")  # any other path parameter
                r = await c.request(method, url, params=query)
                assert_400(r, "validation_error", (method, path, param["name"], value))


def _body_integers(schema: Any, defs: dict[str, Any], seen: set[str], where: str) -> list[Any]:
    """``(where, schema)`` of every integer inside a request body schema."""
    out: list[Any] = []
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str):
            name = ref.rsplit("/", 1)[-1]
            if name not in seen:
                out += _body_integers(defs[name], defs, seen | {name}, f"{where}>{name}")
        if schema.get("type") == "integer":
            out.append((where, schema))
        for key, value in schema.items():
            # Object-level ``oneOf``/``not`` beside ``properties`` only say which fields are
            # given together (fork: frameNo or fromNode); the properties carry the ranges.
            if key in COMBINATIONS and "properties" in schema:
                continue
            if key != "$ref":
                out += _body_integers(value, defs, seen, f"{where}.{key}")
    elif isinstance(schema, list):
        for i, value in enumerate(schema):
            out += _body_integers(value, defs, seen, f"{where}[{i}]")
    return out


COMBINATIONS = frozenset({"oneOf", "anyOf", "allOf", "not"})


async def test_every_integer_of_a_request_body_declares_its_range(api: ApiHarness) -> None:
    """Bodies of REST routes and params of RPC methods: no integer without a 64-bit range."""
    document = (await api.client.get("/openapi.json")).json()
    defs = document["components"]["schemas"]
    integers = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            body = operation.get("requestBody", {}).get("content", {})
            for media, content in body.items():
                where = f"{method.upper()} {path} {media}"
                integers += _body_integers(content.get("schema", {}), defs, set(), where)
    for name, found in rpc.METHODS.items():
        schema = found.params.model_json_schema(by_alias=True)
        integers += _body_integers(schema, schema.get("$defs", {}), set(), f"rpc {name}")
    assert any("iteration" in where for where, _ in integers)
    unbounded = [
        where
        for where, schema in integers
        if not INT64_MIN <= schema.get("minimum", INT64_MIN - 1)
        or not schema.get("maximum", INT64_MAX + 1) <= INT64_MAX
    ]
    # A workflow document's numbers never reach a column as such: durations are checked
    # by their own rule (0 to 366 days) and ``version`` is informational, replaced by the
    # server (see the next test).
    document_numbers = {"version", "timeout", "initial", "max"}
    assert [where for where in unbounded if where.split(".")[-2] not in document_numbers] == []


async def test_numbers_in_a_workflow_document_are_not_5xx(api: ApiHarness) -> None:
    base = yaml.safe_load(APPROVAL_WORKFLOW)
    async with raw_client(api) as c:
        for i, (field, value) in enumerate(
            [("version", TOO_BIG), ("timeout", TOO_BIG), ("timeout", TOO_SMALL)]
        ):
            document = {**base, "name": f"numbers-{i}", field: value}
            r = await c.post("/v1/workflows", json=document)
            assert r.status_code < 500, (field, value, r.text[:300])
            if field == "version":
                assert r.status_code == 201 and r.json()["version"] == 1
            else:
                assert_400(r, "workflow_invalid", (field, value))
        retry = {"max_attempts": 2, "initial": TOO_BIG}
        nodes = [{**base["nodes"][0], "retry": retry}, *base["nodes"][1:]]
        r = await c.post("/v1/workflows", json={**base, "name": "numbers-retry", "nodes": nodes})
        assert_400(r, "workflow_invalid", "retry.initial")


# --- the largest accepted values work on both databases ---------------------------------------


async def test_the_bounds_themselves_are_accepted(api: ApiHarness) -> None:
    async with raw_client(api) as c:
        wf, run = await waiting_run(c)
        ok = [
            await c.get("/v1/runs", params={"createdAfter": MAX_EPOCH_MS}),
            await c.get("/v1/runs", params={"createdBefore": "9999-12-31T23:59:59.999Z"}),
            await c.get("/v1/runs", params={"createdAfter": "1970-01-01T00:00:00Z"}),
            await c.get("/v1/audit", params={"sinceMs": MAX_EPOCH_MS, "untilMs": MAX_EPOCH_MS}),
            await c.get("/v1/audit", params={"cursor": INT64_MAX}),
            await c.get(f"/v1/runs/{run}/frames", params={"afterFrameNo": INT32_MAX}),
            await c.post("/v1/rpc/listRuns", json={"createdBefore": MAX_EPOCH_MS}),
            await c.post("/v1/rpc/streamRunEvents", json={"runId": run, "afterSeq": INT64_MAX}),
        ]
        for r in ok:
            assert r.status_code == 200, (r.request.url, r.text[:300])
        page = ok[-1].json()["payload"]
        assert page["events"] == [] and page["lastSeq"] == INT64_MAX
        missing = await c.get(f"/v1/workflows/{wf}/revisions/{INT32_MAX}")
        assert missing.status_code == 404, missing.text
        decision = await c.post(f"/v1/runs/{run}/nodes/ask/approve", json={"iteration": INT32_MAX})
        assert 400 <= decision.status_code < 500 and decision.status_code != 400, decision.text
        # A time past the end of year 9999 once the time zone is applied.
        late = await c.post(
            "/v1/schedules",
            json={
                "workflowId": wf,
                "cron": "@hourly",
                "timezone": "Etc/GMT+12",
                "startAt": "9999-12-31T23:00:00",
            },
        )
        assert_400(late, "invalid_input", "startAt after 9999 in UTC")
        # The last hours of the calendar: accepted, with no slot left after them.
        for cron in ("@hourly", "@yearly", "0 0 29 2 *"):
            created = await c.post(
                "/v1/schedules",
                json={"workflowId": wf, "cron": cron, "startAt": MAX_EPOCH_MS},
            )
            assert created.status_code == 201, (cron, created.text)
            assert created.json()["nextFireAtMs"] is None


async def test_a_declared_schedule_out_of_range_is_refused(api: ApiHarness) -> None:
    document = yaml.safe_load(APPROVAL_WORKFLOW)
    document["name"] = "far-future"
    for start in (TOO_LATE_MS, TOO_BIG, "+10000-01-01T00:00:00Z"):
        document["triggers"] = [{"type": "schedule", "cron": "@daily", "start_at": start}]
        async with raw_client(api) as c:
            r = await c.post("/v1/workflows", json=document)
        assert r.status_code == 400, (start, r.status_code, r.text[:300])
        assert r.headers["content-type"].startswith(PROBLEM)


# --- SSE headers, serve mode ------------------------------------------------------------------


async def test_last_event_id_past_the_largest_seq_is_400(api: ApiHarness) -> None:
    async with raw_client(api) as c:
        _, run = await waiting_run(c)
        for url in (f"/v1/runs/{run}/events", "/v1/events?namespace=*"):
            r = await c.get(url, headers={"Last-Event-ID": str(TOO_BIG)})
            assert_400(r, "invalid_input", url)


async def test_serve_mode_bounds_its_numbers(api: ApiHarness) -> None:
    """The app of ``flowplane run FILE --serve`` uses the same types."""
    async with raw_client(api) as c:
        _, run = await waiting_run(c)
    app = create_single_run_app(api.services.runs, run, key="k", settings=api.settings)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    headers = {"Authorization": "Bearer k"}
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers=headers) as c:
        for method, url, body in (
            ("GET", f"/events?afterSeq={TOO_BIG}", None),
            ("GET", f"/frames?afterFrameNo={TOO_BIG}", None),
            ("POST", "/approve/ask", {"iteration": TOO_BIG}),
            ("POST", "/deny/ask", {"iteration": TOO_BIG}),
        ):
            r = await c.request(method, url, **({"json": body} if body is not None else {}))
            assert_400(r, "validation_error", url)
        r = await c.get("/events", headers={"Last-Event-ID": str(TOO_BIG)})
        assert_400(r, "invalid_input", "Last-Event-ID")


# --- the WebSocket gateway --------------------------------------------------------------------


@contextlib.contextmanager
def serving(db: tuple[str, str], root: Path) -> Iterator[tuple[str, str]]:
    """The app on ``db`` served by uvicorn in a thread: ``(ws url, admin key)``."""
    root.mkdir(parents=True, exist_ok=True)
    settings = harness_settings(db, root)
    app = create_app(settings)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="bounds-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not (server.started and hasattr(app.state, "services")):
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    assert settings.admin_key is not None
    try:
        yield f"ws://127.0.0.1:{port}/v1/ws", settings.admin_key
    finally:
        server.should_exit = True
        thread.join(20)
    # A subscription its client left as it started once kept the server from stopping.
    assert not thread.is_alive(), "the server did not stop"


async def test_ws_subscribe_with_a_huge_after_seq_is_refused(
    db: tuple[str, str], tmp_path: Path
) -> None:
    with serving(db, tmp_path / "root") as (url, admin):
        async with connect(url) as ws:

            async def request(frame_id: int, method: str, params: Any) -> dict[str, Any]:
                frame = {"type": "req", "id": frame_id, "method": method, "params": params}
                await ws.send(json.dumps(frame))
                while True:
                    message = json.loads(await asyncio.wait_for(ws.recv(), 15))
                    if message.get("type") == "res" and message.get("id") == frame_id:
                        return dict(message)

            assert (await request(1, "connect", {"token": admin}))["ok"]
            for i, params in enumerate(
                (
                    {"namespace": "*", "afterSeq": TOO_BIG},
                    {"runId": "r-1", "afterSeq": TOO_BIG},
                    {"namespace": "default", "afterSeq": TOO_SMALL},
                ),
                start=2,
            ):
                for method in ("subscribe", "streamRunEvents"):
                    if method == "streamRunEvents" and "runId" not in params:
                        continue
                    answer = await request(i * 10 + len(method), method, params)
                    assert answer["ok"] is False, answer
                    assert answer["error"]["status"] == 400, answer
                    assert answer["error"]["code"] == "validation_error", answer
            # The connection is still good: the bound is a refused request, not a crash.
            fine = await request(99, "subscribe", {"namespace": "*", "afterSeq": INT64_MAX})
            assert fine["ok"], fine


# --- the store's safety net -------------------------------------------------------------------


async def test_the_store_turns_a_driver_overflow_into_invalid_input(store: Store) -> None:
    """Behind the edge: a number no column can hold is bad input (400), not a 500 from
    sqlite3's ``OverflowError`` nor a 503 from PostgreSQL's ``bigint out of range``."""
    with pytest.raises(InvalidInput, match="out of range"):
        await store.read(lambda tx: reads.events_after(tx, after_seq=TOO_BIG, limit=10))
    with pytest.raises(InvalidInput, match="out of range"):
        await store.read(lambda tx: reads.events_after(tx, after_seq=TOO_SMALL, limit=10))
    # The store still works afterwards (the failed transaction left nothing behind).
    assert await store.read(lambda tx: reads.events_after(tx, after_seq=0, limit=10)) == []
