"""Durable waits: ``wait.duration``, ``wait.until`` and ``wait.signal``.

These connectors return a directive; the engine parks the node in ``waiting-timer`` or
``waiting-event`` (no coroutine sleeps) and completes it when the timer fires or the signal
arrives, even across restarts.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flowplane.connectors.base import NodeContext, WaitForSignal, WaitForTimer, connector
from flowplane.errors import ConnectorError, DurationInvalid
from flowplane.model.durations import parse_duration

_DURATION_SCHEMA: dict[str, Any] = {
    "oneOf": [
        {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)?\s*$"},
        {"type": "number", "minimum": 0},
    ],
}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def parse_datetime(value: Any) -> dt.datetime:
    """Parse an ISO-8601 date or datetime; a value without a zone is taken as UTC.

    Raises:
        ConnectorError: the value is not an ISO-8601 date/datetime (``retryable=False``).
    """
    if not isinstance(value, str):
        raise ConnectorError(f"expected an ISO-8601 datetime, got {value!r}", retryable=False)
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise ConnectorError(
            f"invalid ISO-8601 datetime {value!r} (e.g. 2030-01-31T08:00:00+01:00)",
            retryable=False,
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


@connector(
    "wait.duration",
    name="Wait for a duration",
    category="wait",
    description="Pause the node (durably, in waiting-timer) for a duration such as 30s or 2h.",
    kind="wait",
    input_schema={
        "type": "object",
        "required": ["duration"],
        "additionalProperties": False,
        "properties": {
            "duration": {
                **_DURATION_SCHEMA,
                "description": "How long to wait: 500ms, 30s, 5m, 2h, 1d, or seconds.",
            },
        },
    },
    output_schema={
        "type": "object",
        "properties": {
            "seconds": {"type": "number", "description": "The duration waited, in seconds."},
            "fires_at": {
                "type": "string",
                "format": "date-time",
                "description": "When the timer was due (UTC).",
            },
        },
    },
    examples=[{"duration": "5m"}, {"duration": 90}],
)
async def duration(params: dict[str, Any], ctx: NodeContext) -> WaitForTimer:
    """Return a timer due ``duration`` from now."""
    try:
        seconds = parse_duration(params["duration"])
    except (DurationInvalid, KeyError) as exc:
        raise ConnectorError(f"invalid duration: {exc}", retryable=False) from exc
    fires_at = _now() + dt.timedelta(seconds=seconds)
    return WaitForTimer(fires_at=fires_at, output={"seconds": seconds, "fires_at": _iso(fires_at)})


@connector(
    "wait.until",
    name="Wait until",
    category="wait",
    description="Pause the node (durably) until a date and time; a past time fires at once.",
    kind="wait",
    input_schema={
        "type": "object",
        "required": ["at"],
        "additionalProperties": False,
        "properties": {
            "at": {
                "type": "string",
                "description": (
                    "ISO-8601 datetime, e.g. 2030-01-31T08:00:00+01:00; without a zone it is UTC."
                ),
            },
        },
    },
    output_schema={
        "type": "object",
        "properties": {
            "at": {"type": "string", "format": "date-time", "description": "Target (UTC)."},
            "fires_at": {
                "type": "string",
                "format": "date-time",
                "description": "When the timer was due (UTC): `at`, or now if `at` was past.",
            },
        },
    },
    examples=[{"at": "2030-01-31T08:00:00+01:00"}, {"at": "2030-06-01T00:00:00Z"}],
)
async def until(params: dict[str, Any], ctx: NodeContext) -> WaitForTimer:
    """Return a timer due at ``at`` (or now, when ``at`` is past)."""
    target = parse_datetime(params.get("at"))
    fires_at = max(target, _now())
    return WaitForTimer(fires_at=fires_at, output={"at": _iso(target), "fires_at": _iso(fires_at)})


@connector(
    "wait.signal",
    name="Wait for a signal",
    category="wait",
    description=(
        "Pause the node (durably, in waiting-event) until a signal with this name is sent "
        "to the run (POST /v1/runs/{id}/signals/{name}); its payload becomes the output."
    ),
    kind="wait",
    input_schema={
        "type": "object",
        "required": ["name"],
        "additionalProperties": False,
        "properties": {
            "name": {
                "type": "string",
                "minLength": 1,
                "maxLength": 200,
                "description": "The signal name to wait for.",
            },
            "correlation_id": {
                "type": "string",
                "maxLength": 500,
                "description": "Only a signal carrying this correlation id completes the wait.",
            },
        },
    },
    output_schema={"description": "The signal's payload."},
    examples=[{"name": "payment-received"}, {"name": "shipped", "correlation_id": "order-42"}],
)
async def signal(params: dict[str, Any], ctx: NodeContext) -> WaitForSignal:
    """Return a signal wait."""
    name = params.get("name")
    if not isinstance(name, str) or not name:
        raise ConnectorError("name must be a non-empty string", retryable=False)
    correlation_id = params.get("correlation_id")
    return WaitForSignal(
        name=name, correlation_id=None if correlation_id is None else str(correlation_id)
    )
