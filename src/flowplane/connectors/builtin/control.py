"""``control.*`` connectors that steer a run: condition, switch, router, assert, stop, batches.

Branching in Flowplane is data: these connectors return which branch matched and the
downstream nodes say ``when: "{{ nodes.route.output.branch == 'refund' }}"``.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import jsonschema

from flowplane.connectors.base import (
    NodeContext,
    StartChildRun,
    StopRun,
    WaitForApproval,
    WaitForSignal,
    WaitForTimer,
    connector,
)
from flowplane.connectors.builtin._conditions import CONDITION_SCHEMA, check_all
from flowplane.connectors.builtin._paths import set_path
from flowplane.connectors.builtin._schemas import obj, out, prop
from flowplane.errors import ConnectorError, DurationInvalid
from flowplane.model.durations import parse_duration
from flowplane.timeouts import wait_for

MAX_BATCH_ITEMS = 100_000
MAX_BATCH_DELAY_SECONDS = 300.0
DURATION = {"type": ["string", "number"], "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)?\s*$"}

SUBJECT = prop(None, "The value the conditions test (e.g. '{{ nodes.fetch.output.body }}').")
CONDITIONS = prop(
    "array",
    "Tests {field, op, value} on the subject.",
    items=CONDITION_SCHEMA,
    minItems=1,
    maxItems=100,
)
MODE = prop(
    "string", "Combine tests with all (AND) or any (OR).", enum=["all", "any"], default="all"
)
BRANCH = prop("string", "Branch name.", minLength=1, maxLength=64)


@connector(
    "control.condition",
    name="If",
    category="control",
    kind="control",
    description="Evaluate conditions on a value; output result (bool) and branch ('true'/'false').",
    input_schema=obj({"subject": SUBJECT, "conditions": CONDITIONS, "mode": MODE}, ["conditions"]),
    output_schema=out(
        {
            "result": prop("boolean", "Whether the conditions hold."),
            "branch": prop("string", "'true' or 'false'."),
        }
    ),
    examples=[
        {
            "subject": {"total": 120, "country": "FR"},
            "conditions": [
                {"field": "total", "op": "gt", "value": 100},
                {"field": "country", "op": "in", "value": ["FR", "DE"]},
            ],
        }
    ],
)
async def condition(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Evaluate ``conditions`` against ``subject``."""
    result = check_all(params["conditions"], params.get("subject"), params.get("mode", "all"))
    return {"result": result, "branch": "true" if result else "false"}


@connector(
    "control.switch",
    name="Switch",
    category="control",
    kind="control",
    description="Match a value against cases and output the name of the first matching branch.",
    input_schema=obj(
        {
            "value": prop(None, "The value to switch on."),
            "cases": prop(
                "array",
                "Cases in order; 'equals' is one value, 'in' a list.",
                minItems=1,
                maxItems=200,
                items=obj(
                    {
                        "branch": BRANCH,
                        "equals": prop(None, "Match when value equals this."),
                        "in": prop("array", "Match when value is one of these."),
                    },
                    ["branch"],
                ),
            ),
            "default": prop("string", "Branch when no case matches (omit: fail).", maxLength=64),
            "case_insensitive": prop("boolean", "Compare strings ignoring case.", default=False),
        },
        ["value", "cases"],
    ),
    output_schema=out(
        {
            "branch": prop("string", "The matching branch (or the default)."),
            "matched": prop("boolean", "Whether a case (not the default) matched."),
            "index": prop(["integer", "null"], "Index of the matching case."),
        }
    ),
    examples=[
        {
            "value": "refund",
            "cases": [
                {"branch": "money", "in": ["refund", "chargeback"]},
                {"branch": "ship", "equals": "resend"},
            ],
            "default": "other",
        }
    ],
)
async def switch(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Pick the first case matching ``value``."""
    fold = bool(params.get("case_insensitive"))

    def norm(v: Any) -> Any:
        return v.casefold() if fold and isinstance(v, str) else v

    value = norm(params["value"])
    for index, case in enumerate(params["cases"]):
        candidates = [case["equals"]] if "equals" in case else []
        candidates += case.get("in") or []
        if any(norm(c) == value for c in candidates):
            return {"branch": case["branch"], "matched": True, "index": index}
    if params.get("default") is None:
        raise ConnectorError(
            f"no case matches {str(params['value'])[:100]!r} and there is no default",
            retryable=False,
        )
    return {"branch": params["default"], "matched": False, "index": None}


@connector(
    "control.router",
    name="Router",
    category="control",
    kind="control",
    description="Test routes of conditions in order; output the first (or every) matching branch.",
    input_schema=obj(
        {
            "subject": SUBJECT,
            "routes": prop(
                "array",
                "Routes in priority order.",
                minItems=1,
                maxItems=100,
                items=obj(
                    {"branch": BRANCH, "conditions": CONDITIONS, "mode": MODE},
                    ["branch", "conditions"],
                ),
            ),
            "all_matches": prop(
                "boolean", "Return every matching branch, not only the first.", default=False
            ),
            "default": prop(
                "string", "Branch when no route matches (omit: 'default').", maxLength=64
            ),
        },
        ["subject", "routes"],
    ),
    output_schema=out(
        {
            "branch": prop("string", "The first matching branch (or the default)."),
            "branches": prop("array", "Every matching branch (with all_matches)."),
            "matched": prop("boolean", "Whether any route matched."),
        }
    ),
    examples=[
        {
            "subject": {"priority": "high", "amount": 5000},
            "routes": [
                {
                    "branch": "urgent",
                    "conditions": [{"field": "priority", "op": "eq", "value": "high"}],
                },
                {"branch": "big", "conditions": [{"field": "amount", "op": "gte", "value": 1000}]},
            ],
            "all_matches": True,
        }
    ],
)
async def router(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Route ``subject``."""
    matched: list[str] = []
    for route in params["routes"]:
        if check_all(route["conditions"], params.get("subject"), route.get("mode", "all")):
            matched.append(route["branch"])
            if not params.get("all_matches"):
                break
    default = params.get("default", "default")
    return {
        "branch": matched[0] if matched else default,
        "branches": matched,
        "matched": bool(matched),
    }


@connector(
    "control.assert",
    name="Assert",
    category="control",
    kind="control",
    description="Fail the node with a message unless the conditions hold on a value.",
    input_schema=obj(
        {
            "subject": SUBJECT,
            "conditions": CONDITIONS,
            "mode": MODE,
            "message": prop("string", "Error message when the assertion fails.", maxLength=1000),
        },
        ["conditions"],
    ),
    output_schema=out({"ok": prop("boolean", "Always true (the node fails otherwise).")}),
    examples=[
        {
            "subject": {"status": 200},
            "conditions": [{"field": "status", "op": "eq", "value": 200}],
            "message": "API did not answer 200",
        }
    ],
)
async def assert_(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Fail unless ``conditions`` hold."""
    if not check_all(params["conditions"], params.get("subject"), params.get("mode", "all")):
        raise ConnectorError(params.get("message") or "assertion failed", retryable=False)
    return {"ok": True}


STOP_SCHEMA = obj(
    {
        "message": prop("string", "Why the run stops (shown on the run).", maxLength=2000),
        "output": prop(None, "The output of this node (and summary of the run)."),
    }
)
STOP_OUT = out({"message": prop("string", "The message."), "output": prop(None, "The output.")})


@connector(
    "control.stop_succeed",
    name="Stop and succeed",
    category="control",
    kind="control",
    description="End the whole run now as finished; nodes not yet started are skipped.",
    input_schema=STOP_SCHEMA,
    output_schema=STOP_OUT,
    examples=[{"message": "Nothing to do today"}],
)
async def stop_succeed(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Return a :class:`StopRun` directive with status ``finished``."""
    message = params.get("message", "")
    return StopRun(
        status="finished",
        message=message,
        output={"message": message, "output": params.get("output")},
    )


@connector(
    "control.stop_fail",
    name="Stop and fail",
    category="control",
    kind="control",
    description="End the whole run now as failed with a message; pending nodes are cancelled.",
    input_schema=obj(
        {
            **STOP_SCHEMA["properties"],
            "message": prop("string", "The failure message.", minLength=1, maxLength=2000),
        },
        ["message"],
    ),
    output_schema=STOP_OUT,
    examples=[{"message": "Order {{ input.order_id }} is blocked", "output": {"code": "BLOCKED"}}],
)
async def stop_fail(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Return a :class:`StopRun` directive with status ``failed``."""
    return StopRun(
        status="failed",
        message=params["message"],
        output={"message": params["message"], "output": params.get("output")},
    )


def _delay_seconds(raw: Any) -> float:
    try:
        seconds = parse_duration(raw)
    except DurationInvalid as exc:
        raise ConnectorError(f"invalid delay: {exc.detail}", retryable=False) from exc
    if seconds > MAX_BATCH_DELAY_SECONDS:
        raise ConnectorError(
            f"delay is over {MAX_BATCH_DELAY_SECONDS:g}s; use wait.duration "
            "and foreach for long pauses",
            retryable=False,
        )
    return seconds


_DIRECTIVES = (WaitForApproval, WaitForSignal, WaitForTimer, StartChildRun, StopRun)


async def _sleep(ctx: NodeContext, seconds: float) -> None:
    """Sleep, waking to heartbeat and to notice cancellation."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        ctx.check_cancelled()
        try:
            await wait_for(ctx.cancel_event.wait(), timeout=min(left, 5.0))
        except TimeoutError:
            await ctx.heartbeat()
    ctx.check_cancelled()


@connector(
    "control.batch",
    name="Batch",
    category="control",
    kind="control",
    description="Call a connector once per chunk of items, pausing between chunks (rate limiting).",
    input_schema=obj(
        {
            "items": prop("array", "The items to process.", maxItems=MAX_BATCH_ITEMS),
            "batch_size": prop("integer", "Items per call.", minimum=1, maximum=10_000, default=10),
            "delay": {
                **DURATION,
                "description": "Pause between calls (e.g. 500ms, 2s).",
                "default": "0s",
            },
            "connector": prop(
                "string",
                "Connector type called per chunk, e.g. 'http.request'.",
                minLength=1,
                maxLength=128,
            ),
            "params": prop("object", "Params of each call; the chunk is put under batch_param."),
            "batch_param": prop(
                "string",
                "Param name (dotted path) that receives the chunk.",
                default="items",
                minLength=1,
                maxLength=128,
            ),
            "single": prop(
                "boolean", "Pass one item (not a list) per call; batch_size is 1.", default=False
            ),
            "continue_on_error": prop("boolean", "Record failed chunks and go on.", default=False),
        },
        ["items", "connector"],
    ),
    output_schema=out(
        {
            "results": prop("array", "Output of each call, in order (null for failed ones)."),
            "errors": prop("array", "[{batch, message}] of failed calls."),
            "batches": prop("integer", "Calls made."),
            "items": prop("integer", "Items processed."),
        }
    ),
    examples=[
        {
            "items": [{"email": "a@example.com"}, {"email": "b@example.com"}],
            "batch_size": 50,
            "delay": "1s",
            "connector": "http.request",
            "params": {"url": "https://api.example.com/bulk", "method": "POST"},
            "batch_param": "json",
        }
    ],
)
async def batch(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Process ``items`` in chunks through another connector."""
    from flowplane.connectors.registry import default_registry

    target_type = params["connector"]
    if target_type == "control.batch":
        raise ConnectorError("control.batch cannot call itself", retryable=False)
    target = default_registry().get(target_type)
    if target.manifest.kind in ("wait", "trigger"):
        raise ConnectorError(
            f"{target_type} waits durably; it cannot run inside a batch", retryable=False
        )
    delay = _delay_seconds(params.get("delay", "0s"))
    single = bool(params.get("single"))
    size = 1 if single else params.get("batch_size", 10)
    items: list[Any] = params["items"]
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    validator = jsonschema.Draft202012Validator(target.manifest.input_schema)
    results: list[Any] = []
    errors: list[dict[str, Any]] = []
    for index, chunk in enumerate(chunks):
        if index and delay:
            await _sleep(ctx, delay)
        ctx.check_cancelled()
        call_params = set_path(
            dict(params.get("params") or {}),
            params.get("batch_param", "items"),
            chunk[0] if single else chunk,
        )
        problems = sorted(validator.iter_errors(call_params), key=lambda e: list(e.path))
        if problems:
            raise ConnectorError(
                f"params of {target_type} are invalid: {problems[0].message}"[:500], retryable=False
            )
        # A distinct node id per chunk gives each call its own idempotency key.
        sub_ctx = dataclasses.replace(ctx, node_id=f"{ctx.node_id}.batch{index}")
        try:
            output = await target(call_params, sub_ctx)
        except ConnectorError as exc:
            if not params.get("continue_on_error"):
                raise ConnectorError(
                    f"batch {index} failed: {exc.detail}",
                    retryable=exc.retryable,
                    batch=index,
                    completed=index,
                ) from exc
            errors.append({"batch": index, "message": exc.detail})
            results.append(None)
            continue
        if isinstance(output, _DIRECTIVES):
            raise ConnectorError(
                f"{target_type} returned a wait directive; it cannot run inside a batch",
                retryable=False,
            )
        results.append(output)
        await ctx.heartbeat()
        ctx.logger.info(f"batch {index + 1}/{len(chunks)} done ({len(chunk)} items)")
    return {"results": results, "errors": errors, "batches": len(chunks), "items": len(items)}
