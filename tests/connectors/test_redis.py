"""redis.*: against the real Redis on 127.0.0.1:6379."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from connector_kit import assert_manifests, make_ctx

from flowplane.connectors.builtin import redis as m
from flowplane.errors import ConnectorError, NetworkPolicyViolation

URL = os.environ.get("FLOWPLANE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    client = aioredis.Redis.from_url(URL)
    try:
        await client.ping()
    except Exception:
        await client.aclose()
        if os.environ.get("CI"):
            pytest.fail("Redis is required in CI")
        pytest.skip("Redis not available")
    name = f"fptest:{uuid.uuid4().hex[:8]}:"
    yield name
    keys = [k async for k in client.scan_iter(f"{name}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
def ctx(tmp_path: Path) -> Any:
    return make_ctx(tmp_path, credentials={"REDIS": URL})


def test_manifests() -> None:
    assert_manifests(m, minimum=6)


async def test_set_get_delete(ctx: Any, prefix: str) -> None:
    key = prefix + "a"
    assert (await m.redis_get({"credential": "REDIS", "key": key}, ctx)) == {
        "value": None,
        "found": False,
    }
    assert (
        await m.redis_set(
            {"credential": "REDIS", "key": key, "value": {"x": 1}, "ttl_seconds": 60}, ctx
        )
    ) == {"ok": True}
    got = await m.redis_get({"credential": "REDIS", "key": key, "json": True}, ctx)
    assert got == {"value": {"x": 1}, "found": True}
    raw = await m.redis_get({"url": URL, "key": key}, ctx)
    assert raw["value"] == '{"x": 1}'
    nx = await m.redis_set(
        {"credential": "REDIS", "key": key, "value": "v", "only_if": "absent"}, ctx
    )
    assert nx == {"ok": False}
    assert (await m.redis_delete({"credential": "REDIS", "keys": [key, prefix + "zz"]}, ctx)) == {
        "deleted": 1
    }


async def test_increment_push_publish(ctx: Any, prefix: str) -> None:
    key = prefix + "n"
    assert (await m.redis_increment({"credential": "REDIS", "key": key}, ctx)) == {"value": 1}
    assert (await m.redis_increment({"credential": "REDIS", "key": key, "amount": 1.5}, ctx)) == {
        "value": 2.5
    }
    q = prefix + "q"
    out = await m.redis_list_push({"credential": "REDIS", "key": q, "values": ["a", {"b": 1}]}, ctx)
    assert out == {"length": 2}
    await m.redis_list_push({"credential": "REDIS", "key": q, "values": ["z"], "side": "left"}, ctx)
    client = aioredis.Redis.from_url(URL)
    try:
        assert await client.lrange(q, 0, -1) == [b"z", b"a", b'{"b": 1}']
        pubsub = client.pubsub()
        await pubsub.subscribe(prefix + "chan")
        await pubsub.get_message(timeout=1)
        sent = await m.redis_publish(
            {"credential": "REDIS", "channel": prefix + "chan", "message": {"id": 7}}, ctx
        )
        assert sent == {"receivers": 1}
        message = None
        for _ in range(20):
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if message:
                break
        assert message is not None and message["data"] == b'{"id": 7}'
        await pubsub.aclose()
    finally:
        await client.aclose()


async def test_errors(tmp_path: Path, prefix: str) -> None:
    ctx = make_ctx(tmp_path, credentials={"REDIS": URL, "DOWN": "redis://:pa55word@127.0.0.1:1/0"})
    await m.redis_set({"credential": "REDIS", "key": prefix + "s", "value": "text"}, ctx)
    with pytest.raises(ConnectorError) as err:  # INCR on a string
        await m.redis_increment({"credential": "REDIS", "key": prefix + "s"}, ctx)
    assert not err.value.retryable
    with pytest.raises(ConnectorError) as err:
        await asyncio.wait_for(
            m.redis_get({"credential": "DOWN", "key": "x", "timeout": 1}, ctx), 10
        )
    assert err.value.retryable and "pa55word" not in err.value.detail
    with pytest.raises(ConnectorError, match="give 'credential'"):
        await m.redis_get({"key": "x"}, ctx)
    with pytest.raises(ConnectorError, match="redis://"):
        await m.redis_get({"url": "http://127.0.0.1", "key": "x"}, ctx)
    with pytest.raises(NetworkPolicyViolation):
        await m.redis_get({"url": URL, "key": "x"}, make_ctx(tmp_path, allow_hosts=[]))
