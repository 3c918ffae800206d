"""Utility connectors: ``util.log``, ``util.noop``, ``util.set`` and ``util.fail``."""

from __future__ import annotations

import json
from typing import Any

from flowplane.connectors.base import NodeContext, connector
from flowplane.errors import ConnectorError

LOG_LEVELS = ("debug", "info", "warning", "error")


@connector(
    "util.log",
    name="Log",
    category="util",
    description="Write a message to the node's log (shown in /logs and NodeLog events).",
    kind="action",
    input_schema={
        "type": "object",
        "required": ["message"],
        "additionalProperties": False,
        "properties": {
            "message": {
                "description": "What to log; a value that is not a string is logged as JSON.",
            },
            "level": {
                "type": "string",
                "enum": list(LOG_LEVELS),
                "default": "info",
                "description": "Log level.",
            },
        },
    },
    output_schema={
        "type": "object",
        "properties": {"message": {"type": "string", "description": "The logged message."}},
    },
    examples=[
        {"message": "order {{ input.order_id }} fetched"},
        {"message": "disk almost full", "level": "warning"},
    ],
)
async def log(params: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    """Log ``message`` at ``level`` and return it."""
    raw = params.get("message", "")
    message = raw if isinstance(raw, str) else json.dumps(raw, default=str, ensure_ascii=False)
    level = params.get("level") or "info"
    if level not in LOG_LEVELS:
        raise ConnectorError(f"unknown log level {level!r}", retryable=False)
    ctx.logger.log(level, message)
    return {"message": message}


@connector(
    "util.noop",
    name="No-op",
    category="util",
    description="Do nothing and return an empty object; any params are accepted and ignored.",
    kind="action",
    input_schema={
        "type": "object",
        "additionalProperties": True,
        "properties": {},
        "description": "Any params; they are ignored.",
    },
    output_schema={"type": "object", "properties": {}, "description": "Always {}."},
    examples=[{}, {"note": "placeholder while the real step is designed"}],
)
async def noop(params: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    """Return ``{}``."""
    return {}


@connector(
    "util.set",
    name="Set value",
    category="util",
    description="Output the given value unchanged (handy to shape data for later nodes).",
    kind="transform",
    input_schema={
        "type": "object",
        "required": ["value"],
        "additionalProperties": False,
        "properties": {
            "value": {"description": "Any JSON value; it becomes the node's output."},
        },
    },
    output_schema={"description": "The value, unchanged."},
    examples=[
        {"value": {"total": "{{ nodes.fetch.output.body.total }}", "currency": "EUR"}},
        {"value": [1, 2, 3]},
    ],
)
async def set_value(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Return ``value``."""
    return params.get("value")


@connector(
    "util.fail",
    name="Fail",
    category="util",
    description=(
        "Fail the node with a message; with fail_times=N only the first N attempts fail, "
        "which makes retry behaviour easy to test."
    ),
    kind="action",
    input_schema={
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "message": {
                "type": "string",
                "default": "util.fail: failing as asked",
                "description": "The error message.",
            },
            "retryable": {
                "type": "boolean",
                "default": True,
                "description": "Whether the engine may retry the node.",
            },
            "fail_times": {
                "type": "integer",
                "minimum": 0,
                "description": (
                    "Fail only the first N attempts, then succeed with {attempt}. "
                    "Omit to fail every attempt."
                ),
            },
        },
    },
    output_schema={
        "type": "object",
        "properties": {
            "attempt": {"type": "integer", "description": "The attempt that succeeded."}
        },
    },
    examples=[
        {"message": "simulated outage"},
        {"message": "flaky", "fail_times": 2},
        {"message": "bad request", "retryable": False},
    ],
)
async def fail(params: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    """Raise :class:`ConnectorError`, or succeed once ``fail_times`` attempts have failed."""
    fail_times = params.get("fail_times")
    if fail_times is not None and ctx.attempt > int(fail_times):
        return {"attempt": ctx.attempt}
    raise ConnectorError(
        str(params.get("message") or "util.fail: failing as asked"),
        retryable=bool(params.get("retryable", True)),
        attempt=ctx.attempt,
    )
