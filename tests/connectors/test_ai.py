"""ai: a fake OpenAI-compatible server (Starlette under uvicorn in a thread)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from connector_kit import Logs, assert_manifests, make_ctx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from flowplane.connectors.builtin import ai as m
from flowplane.errors import ConnectorError

API_KEY = "sk-test-very-secret"


class FakeAI:
    """Behaviour is chosen by the model name."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.flaky_left = 0

    def completion(self, content: str, model: str) -> JSONResponse:
        return JSONResponse(
            {
                "id": "c1",
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
            }
        )

    async def chat(self, request: Request) -> Response:
        body = await request.json()
        self.calls.append({"body": body, "auth": request.headers.get("authorization")})
        model = body["model"]
        if request.headers.get("authorization") not in (None, f"Bearer {API_KEY}"):
            return JSONResponse({"error": {"message": "bad key"}}, status_code=401)
        if model == "flaky" and self.flaky_left > 0:
            self.flaky_left -= 1
            return JSONResponse(
                {"error": "slow down"}, status_code=429, headers={"Retry-After": "0"}
            )
        if model == "down":
            return JSONResponse({"error": f"boom {API_KEY}"}, status_code=500)
        if model == "slow":
            await asyncio.sleep(1.0)
        if model == "garbage":
            return PlainTextResponse("<html>gateway</html>", status_code=200)
        if model == "badjson":
            return self.completion("sure! {not json", model)
        if model == "classify":
            return self.completion('{"label": "BILLING", "confidence": 0.9}', model)
        if model == "classify-wrong":
            return self.completion('{"label": "sports"}', model)
        if model == "extract":
            return self.completion('```json\n{"order_id": "A1", "amount": 12.5}\n```', model)
        if model == "extract-wrong":
            return self.completion('{"amount": "twelve"}', model)
        if body.get("response_format"):
            return self.completion(json.dumps({"colours": ["red"]}), model)
        return self.completion("echo: " + body["messages"][-1]["content"], model)

    async def embeddings(self, request: Request) -> Response:
        body = await request.json()
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {"index": i, "embedding": [float(len(t)), 1.0, 0.0]}
            for i, t in reversed(list(enumerate(inputs)))
        ]
        return JSONResponse(
            {"data": data, "model": body["model"], "usage": {"prompt_tokens": 3, "total_tokens": 3}}
        )


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[FakeAI, str]]:
    state = FakeAI()
    app = Starlette(
        routes=[
            Route("/v1/chat/completions", state.chat, methods=["POST"]),
            Route("/v1/embeddings", state.embeddings, methods=["POST"]),
        ]
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", lifespan="off", ws="none")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield state, f"http://127.0.0.1:{port}/v1"
    server.should_exit = True
    thread.join(timeout=5)


@pytest.fixture
def ctx(tmp_path: Path) -> Any:
    return make_ctx(tmp_path, credentials={"KEY": API_KEY}, logs=Logs())


def test_manifests() -> None:
    assert_manifests(m, minimum=4)


async def test_chat(ctx: Any, fake: tuple[FakeAI, str]) -> None:
    state, url = fake
    out = await m.ai_chat(
        {
            "base_url": url,
            "credential": "KEY",
            "model": "m1",
            "system": "be terse",
            "prompt": "hi",
            "temperature": 0.2,
            "max_tokens": 20,
        },
        ctx,
    )
    assert out == {
        "content": "echo: hi",
        "model": "m1",
        "finish_reason": "stop",
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }
    body = state.calls[-1]["body"]
    assert body["messages"][0] == {"role": "system", "content": "be terse"}
    assert body["temperature"] == 0.2 and body["max_tokens"] == 20
    assert state.calls[-1]["auth"] == f"Bearer {API_KEY}"
    assert API_KEY not in json.dumps(out)
    js = await m.ai_chat(
        {
            "base_url": url,
            "model": "m1",
            "response_format": "json",
            "messages": [{"role": "user", "content": "colours"}],
        },
        ctx,
    )
    assert js["json"] == {"colours": ["red"]}
    assert state.calls[-1]["body"]["response_format"] == {"type": "json_object"}
    assert state.calls[-1]["auth"] is None  # keyless local server
    schema = {"type": "object", "properties": {"colours": {"type": "array"}}}
    await m.ai_chat(
        {
            "base_url": url,
            "model": "m1",
            "prompt": "x",
            "response_format": "json_schema",
            "json_schema": schema,
        },
        ctx,
    )
    assert state.calls[-1]["body"]["response_format"]["json_schema"]["schema"] == schema


async def test_chat_retries_429_then_succeeds(ctx: Any, fake: tuple[FakeAI, str]) -> None:
    state, url = fake
    state.flaky_left = 2
    out = await m.ai_chat({"base_url": url, "model": "flaky", "prompt": "x"}, ctx)
    assert out["content"] == "echo: x" and state.flaky_left == 0
    state.flaky_left = 5
    with pytest.raises(ConnectorError, match="HTTP 429") as err:
        await m.ai_chat({"base_url": url, "model": "flaky", "prompt": "x", "max_retries": 1}, ctx)
    assert err.value.retryable


async def test_chat_error_paths(ctx: Any, fake: tuple[FakeAI, str]) -> None:
    _, url = fake
    base = {"base_url": url, "credential": "KEY", "prompt": "x", "max_retries": 0}
    with pytest.raises(ConnectorError, match="HTTP 500") as err:
        await m.ai_chat({**base, "model": "down"}, ctx)
    assert err.value.retryable and API_KEY not in json.dumps(err.value.to_dict())
    with pytest.raises(ConnectorError, match="not a JSON object") as err:
        await m.ai_chat({**base, "model": "garbage"}, ctx)
    assert err.value.retryable
    with pytest.raises(ConnectorError, match="valid JSON"):
        await m.ai_chat({**base, "model": "badjson", "response_format": "json"}, ctx)
    with pytest.raises(ConnectorError, match="timed out") as err:
        await m.ai_chat({**base, "model": "slow", "timeout": 0.3}, ctx)
    assert err.value.retryable
    bad_key = make_ctx(ctx.settings.data_dir, credentials={"KEY": "sk-wrong-key"})
    with pytest.raises(ConnectorError, match="HTTP 401") as err:
        await m.ai_chat({**base, "model": "m1"}, bad_key)
    assert not err.value.retryable
    with pytest.raises(ConnectorError, match="messages"):
        await m.ai_chat({"base_url": url, "model": "m1"}, ctx)
    with pytest.raises(ConnectorError, match="json_schema"):
        await m.ai_chat({**base, "model": "m1", "response_format": "json_schema"}, ctx)
    blocked = make_ctx(ctx.settings.data_dir, allow_hosts=[])
    with pytest.raises(ConnectorError, match="refused"):
        await m.ai_chat({"base_url": url, "model": "m1", "prompt": "x"}, blocked)


async def test_embed(ctx: Any, fake: tuple[FakeAI, str]) -> None:
    _, url = fake
    out = await m.ai_embed({"base_url": url, "model": "e", "input": ["a", "bcd"]}, ctx)
    assert out["embeddings"] == [[1.0, 1.0, 0.0], [3.0, 1.0, 0.0]] and out["dimensions"] == 3


async def test_classify_and_extract(ctx: Any, fake: tuple[FakeAI, str]) -> None:
    _, url = fake
    base = {"base_url": url, "max_retries": 0}
    out = await m.ai_classify(
        {**base, "model": "classify", "text": "refund me", "labels": ["billing", "bug"]}, ctx
    )
    assert out["label"] == "billing" and out["confidence"] == 0.9
    with pytest.raises(ConnectorError, match="outside"):
        await m.ai_classify(
            {**base, "model": "classify-wrong", "text": "x", "labels": ["billing", "bug"]}, ctx
        )
    schema = {
        "type": "object",
        "required": ["order_id"],
        "properties": {"order_id": {"type": "string"}, "amount": {"type": "number"}},
    }
    got = await m.ai_extract(
        {**base, "model": "extract", "text": "order A1", "schema": schema}, ctx
    )
    assert got["data"] == {"order_id": "A1", "amount": 12.5} and got["valid"]
    with pytest.raises(ConnectorError, match="does not match"):
        await m.ai_extract({**base, "model": "extract-wrong", "text": "x", "schema": schema}, ctx)
    loose = await m.ai_extract(
        {**base, "model": "extract-wrong", "text": "x", "schema": schema, "strict": False}, ctx
    )
    assert not loose["valid"] and len(loose["errors"]) == 2
    with pytest.raises(ConnectorError, match="invalid schema"):
        await m.ai_extract(
            {**base, "model": "extract", "text": "x", "schema": {"type": "nope"}}, ctx
        )
