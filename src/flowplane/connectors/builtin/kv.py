"""Key-value connectors: get, set (with TTL), delete and atomic increment in the namespace store."""

from __future__ import annotations

from typing import Any

from flowplane.connectors.base import KVAccess, NodeContext, connector
from flowplane.connectors.builtin._schemas import obj, out, prop
from flowplane.errors import ConnectorError

KEY = prop("string", "The key (scoped to the run's namespace).", minLength=1, maxLength=512)


def _kv(ctx: NodeContext) -> KVAccess:
    if ctx.kv is None:
        raise ConnectorError("no key-value store is attached to this run", retryable=False)
    return ctx.kv


@connector(
    "kv.get",
    name="KV get",
    category="kv",
    description="Read a value from the namespace key-value store (default when missing).",
    input_schema=obj(
        {"key": KEY, "default": prop(None, "Value returned when the key is missing or expired.")},
        ["key"],
    ),
    output_schema=out(
        {
            "value": prop(None, "The stored value, or the default."),
            "found": prop("boolean", "Whether the key exists."),
        }
    ),
    examples=[{"key": "last_sync", "default": "1970-01-01T00:00:00Z"}],
)
async def kv_get(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Read ``key``."""
    value = await _kv(ctx).get(params["key"])
    if value is None:
        return {"value": params.get("default"), "found": False}
    return {"value": value, "found": True}


@connector(
    "kv.set",
    name="KV set",
    category="kv",
    description="Store a JSON value under a key in the namespace store, optionally expiring.",
    input_schema=obj(
        {
            "key": KEY,
            "value": prop(None, "Any JSON value (null is not stored; use kv.delete)."),
            "ttl_seconds": prop(
                "number",
                "Expire after this many seconds.",
                exclusiveMinimum=0,
                maximum=10 * 365 * 86400,
            ),
        },
        ["key", "value"],
    ),
    output_schema=out({"key": prop("string", "The key."), "ok": prop("boolean", "True.")}),
    examples=[
        {"key": "last_sync", "value": "{{ run.startedAt }}"},
        {"key": "lock:orders", "value": True, "ttl_seconds": 300},
    ],
)
async def kv_set(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Write ``key``."""
    if params["value"] is None:
        raise ConnectorError("null cannot be stored; use kv.delete", retryable=False)
    await _kv(ctx).set(params["key"], params["value"], params.get("ttl_seconds"))
    return {"key": params["key"], "ok": True}


@connector(
    "kv.delete",
    name="KV delete",
    category="kv",
    description="Delete a key from the namespace key-value store.",
    input_schema=obj({"key": KEY}, ["key"]),
    output_schema=out({"deleted": prop("boolean", "Whether the key existed.")}),
    examples=[{"key": "lock:orders"}],
)
async def kv_delete(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Delete ``key``."""
    return {"deleted": bool(await _kv(ctx).delete(params["key"]))}


@connector(
    "kv.increment",
    name="KV increment",
    category="kv",
    description="Atomically add to a numeric key (created at 0) and return the new value.",
    input_schema=obj(
        {"key": KEY, "amount": prop("number", "Amount to add (negative to subtract).", default=1)},
        ["key"],
    ),
    output_schema=out({"value": prop("number", "The value after the increment.")}),
    examples=[{"key": "counter:emails_sent"}, {"key": "stock:A-1", "amount": -2}],
)
async def kv_increment(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Increment ``key`` by ``amount``."""
    value = await _kv(ctx).increment(params["key"], params.get("amount", 1))
    if isinstance(value, float) and value.is_integer():
        return {"value": int(value)}
    return {"value": value}
