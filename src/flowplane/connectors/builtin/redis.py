"""Redis connectors: get, set, delete, increment, list push and publish (``redis.asyncio``)."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from flowplane.connectors.base import NodeContext, connector
from flowplane.connectors.builtin._credentials import credential
from flowplane.connectors.builtin._network import check_host
from flowplane.connectors.builtin._schemas import CREDENTIAL_PROP, obj, out, prop
from flowplane.errors import ConnectorError
from flowplane.security.redaction import mask_values

if TYPE_CHECKING:  # redis is imported on first use: ~0.2 s of every process's start-up
    import redis.asyncio as aioredis

T = TypeVar("T")
MAX_VALUE_BYTES = 16 * 1024 * 1024

TARGET = {
    "credential": {
        **CREDENTIAL_PROP,
        "description": "Credential holding the Redis URL (redis://:password@host:6379/0).",
    },
    "url": prop(
        "string",
        "Or the Redis URL itself when it holds no password.",
        maxLength=2048,
        pattern="^rediss?://",
    ),
    "timeout": prop(
        "number", "Socket timeout in seconds.", exclusiveMinimum=0, maximum=300, default=10
    ),
}
KEY = prop("string", "The Redis key.", minLength=1, maxLength=1024)


def _bad(message: str) -> ConnectorError:
    return ConnectorError(message, retryable=False)


def encode(value: Any) -> str:
    """Strings are stored as they are; other JSON values as JSON text."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def decode(raw: bytes | str | None, as_json: bool) -> Any:
    """Return ``raw`` as text (or parsed JSON when ``as_json`` and it parses)."""
    if raw is None:
        return None
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
    if as_json:
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


async def _with_redis(
    params: dict[str, Any],
    ctx: NodeContext,
    action: Callable[[aioredis.Redis[bytes]], Awaitable[T]],
) -> T:
    if params.get("credential"):
        url = credential(ctx, params["credential"])
    elif params.get("url"):
        url = params["url"]
    else:
        raise _bad("give 'credential' (preferred) or 'url'")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise _bad("the Redis URL must look like redis://host:6379/0")
    try:
        port = parts.port or 6379
    except ValueError as exc:
        raise _bad("the Redis URL has an invalid port") from exc
    addresses = await check_host(ctx, parts.hostname, port)
    if parts.scheme == "redis":  # pin the checked address (TLS keeps the name for its check)
        host = f"[{addresses[0]}]" if ":" in addresses[0] else addresses[0]
        auth = parts.netloc.rpartition("@")[0]
        url = parts._replace(netloc=f"{auth}@{host}:{port}" if auth else f"{host}:{port}").geturl()
    timeout = float(params.get("timeout", 10))
    import redis.asyncio as aioredis
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import RedisError, ResponseError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    client = aioredis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    secrets = [url, parts.password, params.get("url")]
    try:
        ctx.check_cancelled()
        return await action(client)
    except (RedisConnectionError, RedisTimeoutError) as exc:
        raise ConnectorError(
            mask_values(f"Redis unreachable: {exc}", secrets), retryable=True
        ) from None
    except ResponseError as exc:
        raise _bad(mask_values(f"Redis error: {exc}", secrets)) from None
    except RedisError as exc:
        raise ConnectorError(mask_values(f"Redis error: {exc}", secrets), retryable=True) from None
    finally:
        await client.aclose()  # type: ignore[attr-defined,unused-ignore]


@connector(
    "redis.get",
    name="Redis get",
    category="redis",
    description="Read a string key from Redis (optionally parsed as JSON).",
    input_schema=obj(
        {
            "key": KEY,
            **TARGET,
            "json": prop("boolean", "Parse the value as JSON when it is JSON.", default=False),
        },
        ["key"],
    ),
    output_schema=out(
        {
            "value": prop(None, "The value (null when missing)."),
            "found": prop("boolean", "Whether the key exists."),
        }
    ),
    secrets=["credential"],
    examples=[{"credential": "REDIS_URL", "key": "session:42", "json": True}],
)
async def redis_get(params: dict[str, Any], ctx: NodeContext) -> Any:
    """GET ``key``."""
    raw = await _with_redis(params, ctx, lambda r: r.get(params["key"]))
    return {"value": decode(raw, bool(params.get("json"))), "found": raw is not None}


@connector(
    "redis.set",
    name="Redis set",
    category="redis",
    description="Set a Redis key (non-strings stored as JSON), with optional expiry and NX/XX.",
    input_schema=obj(
        {
            "key": KEY,
            **TARGET,
            "value": prop(None, "The value (strings as-is, else JSON)."),
            "ttl_seconds": prop("integer", "Expire after this many seconds.", minimum=1),
            "only_if": prop("string", "absent (NX) or present (XX).", enum=["absent", "present"]),
        },
        ["key", "value"],
    ),
    output_schema=out(
        {"ok": prop("boolean", "Whether the value was written (false when only_if was not met).")}
    ),
    secrets=["credential"],
    examples=[
        {
            "credential": "REDIS_URL",
            "key": "lock:job",
            "value": "{{ run.id }}",
            "ttl_seconds": 60,
            "only_if": "absent",
        }
    ],
)
async def redis_set(params: dict[str, Any], ctx: NodeContext) -> Any:
    """SET ``key``."""
    value = encode(params["value"])
    if len(value.encode()) > MAX_VALUE_BYTES:
        raise _bad(f"value is larger than {MAX_VALUE_BYTES} bytes")
    only_if = params.get("only_if")
    result = await _with_redis(
        params,
        ctx,
        lambda r: r.set(
            params["key"],
            value,
            ex=params.get("ttl_seconds"),
            nx=only_if == "absent",
            xx=only_if == "present",
        ),
    )
    return {"ok": bool(result)}


@connector(
    "redis.delete",
    name="Redis delete",
    category="redis",
    description="Delete one or more Redis keys.",
    input_schema=obj(
        {**TARGET, "keys": prop("array", "Keys to delete.", items=KEY, minItems=1, maxItems=1000)},
        ["keys"],
    ),
    output_schema=out({"deleted": prop("integer", "Number of keys that existed.")}),
    secrets=["credential"],
    examples=[{"credential": "REDIS_URL", "keys": ["lock:job"]}],
)
async def redis_delete(params: dict[str, Any], ctx: NodeContext) -> Any:
    """DEL ``keys``."""
    return {"deleted": int(await _with_redis(params, ctx, lambda r: r.delete(*params["keys"])))}


@connector(
    "redis.increment",
    name="Redis increment",
    category="redis",
    description="Atomically increment a Redis counter by an integer or float amount.",
    input_schema=obj(
        {"key": KEY, **TARGET, "amount": prop("number", "Amount to add.", default=1)}, ["key"]
    ),
    output_schema=out({"value": prop("number", "The new value.")}),
    secrets=["credential"],
    examples=[{"credential": "REDIS_URL", "key": "hits:today"}],
)
async def redis_increment(params: dict[str, Any], ctx: NodeContext) -> Any:
    """INCRBY / INCRBYFLOAT ``key``."""
    amount = params.get("amount", 1)
    if isinstance(amount, int) or float(amount).is_integer():
        value: Any = await _with_redis(params, ctx, lambda r: r.incrby(params["key"], int(amount)))
    else:
        value = float(
            await _with_redis(params, ctx, lambda r: r.incrbyfloat(params["key"], amount))
        )
    return {"value": value}


@connector(
    "redis.list_push",
    name="Redis list push",
    category="redis",
    description="Append (or prepend) values to a Redis list, e.g. to feed a work queue.",
    input_schema=obj(
        {
            "key": KEY,
            **TARGET,
            "values": prop("array", "Values (non-strings as JSON).", minItems=1, maxItems=10_000),
            "side": prop(
                "string", "right (RPUSH) or left (LPUSH).", enum=["right", "left"], default="right"
            ),
        },
        ["key", "values"],
    ),
    output_schema=out({"length": prop("integer", "List length after the push.")}),
    secrets=["credential"],
    examples=[{"credential": "REDIS_URL", "key": "queue:emails", "values": [{"to": "a@x.io"}]}],
)
async def redis_list_push(params: dict[str, Any], ctx: NodeContext) -> Any:
    """RPUSH / LPUSH ``values``."""
    values = [encode(v) for v in params["values"]]
    if params.get("side", "right") == "left":
        length = await _with_redis(params, ctx, lambda r: r.lpush(params["key"], *values))
    else:
        length = await _with_redis(params, ctx, lambda r: r.rpush(params["key"], *values))
    return {"length": int(length)}


@connector(
    "redis.publish",
    name="Redis publish",
    category="redis",
    description="Publish a message on a Redis pub/sub channel.",
    input_schema=obj(
        {
            **TARGET,
            "channel": prop("string", "The channel.", minLength=1, maxLength=1024),
            "message": prop(None, "The message (non-strings as JSON)."),
        },
        ["channel", "message"],
    ),
    output_schema=out({"receivers": prop("integer", "Subscribers that received it.")}),
    secrets=["credential"],
    examples=[{"credential": "REDIS_URL", "channel": "orders", "message": {"id": 7}}],
)
async def redis_publish(params: dict[str, Any], ctx: NodeContext) -> Any:
    """PUBLISH ``message`` on ``channel``."""
    message = encode(params["message"])
    receivers = await _with_redis(params, ctx, lambda r: r.publish(params["channel"], message))
    return {"receivers": int(receivers)}
