"""control.*: condition, switch, router, assert, stop directives and batches."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from connector_kit import assert_manifests, json_reply, local_server, make_ctx

from flowplane.connectors.base import StopRun
from flowplane.connectors.builtin import control as m
from flowplane.errors import ConnectorError


@pytest.fixture
def ctx(tmp_path: Path) -> Any:
    return make_ctx(tmp_path)


def test_manifests() -> None:
    assert_manifests(m, minimum=7)


async def test_condition(ctx: Any) -> None:
    conditions = [
        {"field": "total", "op": "gt", "value": 100},
        {"field": "country", "op": "in", "value": ["FR", "DE"]},
    ]
    yes = await m.condition(
        {"subject": {"total": 120, "country": "FR"}, "conditions": conditions}, ctx
    )
    assert yes == {"result": True, "branch": "true"}
    no = await m.condition(
        {"subject": {"total": 120, "country": "US"}, "conditions": conditions}, ctx
    )
    assert no == {"result": False, "branch": "false"}
    anyof = await m.condition(
        {"subject": {"total": 120, "country": "US"}, "conditions": conditions, "mode": "any"}, ctx
    )
    assert anyof["result"] is True


async def test_switch(ctx: Any) -> None:
    cases = [
        {"branch": "money", "in": ["refund", "chargeback"]},
        {"branch": "ship", "equals": "resend"},
    ]
    assert (await m.switch({"value": "resend", "cases": cases}, ctx)) == {
        "branch": "ship",
        "matched": True,
        "index": 1,
    }
    assert (await m.switch({"value": "x", "cases": cases, "default": "other"}, ctx)) == {
        "branch": "other",
        "matched": False,
        "index": None,
    }
    assert (await m.switch({"value": "REFUND", "cases": cases, "case_insensitive": True}, ctx))[
        "branch"
    ] == "money"
    with pytest.raises(ConnectorError, match="no case"):
        await m.switch({"value": "x", "cases": cases}, ctx)


async def test_router(ctx: Any) -> None:
    routes = [
        {"branch": "urgent", "conditions": [{"field": "priority", "op": "eq", "value": "high"}]},
        {"branch": "big", "conditions": [{"field": "amount", "op": "gte", "value": 1000}]},
    ]
    subject = {"priority": "high", "amount": 5000}
    first = await m.router({"subject": subject, "routes": routes}, ctx)
    assert first == {"branch": "urgent", "branches": ["urgent"], "matched": True}
    every = await m.router({"subject": subject, "routes": routes, "all_matches": True}, ctx)
    assert every["branches"] == ["urgent", "big"]
    none = await m.router({"subject": {}, "routes": routes, "default": "normal"}, ctx)
    assert none == {"branch": "normal", "branches": [], "matched": False}


async def test_assert(ctx: Any) -> None:
    conditions = [{"field": "status", "op": "eq", "value": 200}]
    assert (await m.assert_({"subject": {"status": 200}, "conditions": conditions}, ctx)) == {
        "ok": True
    }
    with pytest.raises(ConnectorError, match="API down") as err:
        await m.assert_(
            {"subject": {"status": 500}, "conditions": conditions, "message": "API down"}, ctx
        )
    assert not err.value.retryable


async def test_stop_directives(ctx: Any) -> None:
    ok = await m.stop_succeed({"message": "nothing to do", "output": {"n": 0}}, ctx)
    assert ok == StopRun(
        status="finished",
        message="nothing to do",
        output={"message": "nothing to do", "output": {"n": 0}},
    )
    fail = await m.stop_fail({"message": "blocked"}, ctx)
    assert isinstance(fail, StopRun) and fail.status == "failed" and fail.message == "blocked"


async def test_batch_calls_connector_per_chunk(ctx: Any) -> None:
    with local_server(lambda r: json_reply(200, {"got": len(r.json())})) as server:
        started = time.monotonic()
        out = await m.batch(
            {
                "items": list(range(5)),
                "batch_size": 2,
                "delay": "100ms",
                "connector": "http.request",
                "batch_param": "json",
                "params": {"url": f"{server.url}/bulk", "method": "POST"},
            },
            ctx,
        )
        elapsed = time.monotonic() - started
    assert out["batches"] == 3 and out["items"] == 5 and out["errors"] == []
    assert [r["body"] for r in out["results"]] == [{"got": 2}, {"got": 2}, {"got": 1}]
    assert [r.json() for r in server.requests] == [[0, 1], [2, 3], [4]]
    keys = {r.headers["idempotency-key"] for r in server.requests}
    assert len(keys) == 3  # each chunk has its own idempotency key
    assert elapsed >= 0.2  # two pauses between three calls


async def test_batch_single_items_and_errors(ctx: Any, tmp_path: Path) -> None:
    def handler(request: Any) -> Any:
        return json_reply(500 if request.json() == 2 else 200, {})

    with local_server(handler) as server:
        params = {
            "items": [1, 2, 3],
            "single": True,
            "connector": "http.request",
            "batch_param": "json",
            "params": {"url": server.url, "method": "POST"},
        }
        out = await m.batch({**params, "continue_on_error": True}, ctx)
        assert out["results"][1] is None and out["errors"][0]["batch"] == 1
        with pytest.raises(ConnectorError, match="batch 1 failed") as err:
            await m.batch(params, ctx)
        assert err.value.retryable


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"connector": "control.batch"}, "itself"),
        ({"connector": "wait.duration"}, "waits durably"),
        (
            {
                "connector": "control.approval",
                "params": {"title": "t"},
                "batch_param": "description",
                "single": True,
                "items": ["d"],
            },
            "wait directive",
        ),
        ({"connector": "nope.nothing"}, "unknown connector"),
        ({"connector": "util.log", "batch_param": "message", "delay": "1h"}, "delay"),
        ({"connector": "util.log", "batch_param": "colour"}, "invalid"),
    ],
)
async def test_batch_refusals(ctx: Any, params: dict[str, Any], message: str) -> None:
    with pytest.raises(Exception, match=message):
        await m.batch({"items": [1], "params": {"message": "m"}, **params}, ctx)


async def test_batch_cancellation(ctx: Any) -> None:
    ctx.cancel_event.set()
    with pytest.raises(BaseException, match="cancelled"):
        await m.batch(
            {
                "items": [1, 2],
                "single": True,
                "connector": "util.noop",
                "batch_param": "x",
                "delay": "5s",
            },
            ctx,
        )
