"""Date and time connectors: now, parse, format, add, diff, convert and truncate (zoneinfo)."""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flowplane.connectors.base import NodeContext, connector
from flowplane.connectors.builtin._numbers import finite
from flowplane.connectors.builtin._schemas import obj, out, prop
from flowplane.errors import ConnectorError

TIME = prop(
    ["string", "number"],
    "An ISO-8601 time ('2024-05-01T10:00:00Z'), a date, or a Unix timestamp in seconds.",
)
TZ = prop("string", "IANA time zone, e.g. 'Europe/Paris' (default UTC).", maxLength=64)
UNITS = ("years", "months", "weeks", "days", "hours", "minutes", "seconds", "milliseconds")

TIME_OUT = out(
    {
        "iso": prop("string", "ISO-8601 with offset."),
        "timestamp": prop("number", "Unix time in seconds."),
        "timestamp_ms": prop("integer", "Unix time in milliseconds."),
        "date": prop("string", "YYYY-MM-DD in the zone."),
        "time": prop("string", "HH:MM:SS in the zone."),
        "timezone": prop("string", "Zone name."),
        "weekday": prop("string", "Day name (Monday...)."),
        "year": prop("integer", "Year."),
        "month": prop("integer", "Month (1-12)."),
        "day": prop("integer", "Day of month."),
        "hour": prop("integer", "Hour."),
        "minute": prop("integer", "Minute."),
        "second": prop("integer", "Second."),
    }
)


def _bad(message: str) -> ConnectorError:
    return ConnectorError(message, retryable=False)


def zone(name: str | None) -> dt.tzinfo:
    """Return the time zone called ``name`` (UTC when None).

    Raises:
        ConnectorError: (not retryable) unknown zone.
    """
    if not name or name.upper() == "UTC":
        return dt.UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise _bad(f"unknown time zone {name!r}") from exc


def parse_time(value: Any, tz: dt.tzinfo = dt.UTC, fmt: str | None = None) -> dt.datetime:
    """Parse ``value`` into an aware datetime; naive values are taken in ``tz``.

    Args:
        value: ISO-8601 text, a date, a Unix timestamp (seconds), or text in ``fmt``.
        tz: the zone of naive inputs.
        fmt: an optional ``strptime`` format.

    Raises:
        ConnectorError: (not retryable) the value is not a time.
    """
    try:
        if isinstance(value, bool):
            raise ValueError("boolean")
        if isinstance(value, int | float):
            return dt.datetime.fromtimestamp(value, dt.UTC).astimezone(tz)
        text = str(value).strip()
        if fmt:
            parsed = dt.datetime.strptime(text, fmt)
        else:
            if text.endswith(("z", "Z")):
                text = text[:-1] + "+00:00"
            parsed = dt.datetime.fromisoformat(text)
    except (ValueError, OverflowError, OSError) as exc:
        raise _bad(f"cannot parse time {str(value)[:100]!r}: {exc}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)


def describe(moment: dt.datetime) -> dict[str, Any]:
    """Return the JSON description of an aware datetime (the common output shape)."""
    stamp = moment.timestamp()
    return {
        "iso": moment.isoformat(),
        "timestamp": finite(stamp),
        "timestamp_ms": round(stamp * 1000),
        "date": moment.date().isoformat(),
        "time": moment.strftime("%H:%M:%S"),
        "timezone": str(moment.tzinfo),
        "weekday": moment.strftime("%A"),
        "year": moment.year,
        "month": moment.month,
        "day": moment.day,
        "hour": moment.hour,
        "minute": moment.minute,
        "second": moment.second,
    }


def add_months(moment: dt.datetime, months: int) -> dt.datetime:
    """Add calendar months, clamping the day to the month's length (Jan 31 + 1 -> Feb 28/29)."""
    total = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(total, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


@connector(
    "data.time_now",
    name="Current time",
    category="data",
    kind="transform",
    description="Return the current time in a time zone, with its parts.",
    input_schema=obj({"timezone": TZ}),
    output_schema=TIME_OUT,
    examples=[{"timezone": "Europe/Paris"}, {}],
)
async def time_now(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Return now in ``timezone``."""
    return describe(dt.datetime.now(zone(params.get("timezone"))))


@connector(
    "data.time_parse",
    name="Parse time",
    category="data",
    kind="transform",
    description="Parse an ISO-8601, Unix or custom-format time into its parts.",
    input_schema=obj(
        {
            "value": TIME,
            "format": prop("string", "strptime format, e.g. '%d/%m/%Y %H:%M'.", maxLength=100),
            "timezone": prop("string", "Zone of naive inputs and of the output.", maxLength=64),
        },
        ["value"],
    ),
    output_schema=TIME_OUT,
    examples=[
        {"value": "2024-05-01T10:00:00Z"},
        {"value": "01/05/2024 09:30", "format": "%d/%m/%Y %H:%M", "timezone": "Europe/Paris"},
    ],
)
async def time_parse(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Parse ``value``."""
    tz = zone(params.get("timezone"))
    return describe(parse_time(params["value"], tz, params.get("format")).astimezone(tz))


@connector(
    "data.time_format",
    name="Format time",
    category="data",
    kind="transform",
    description="Format a time with a strftime pattern in a time zone.",
    input_schema=obj(
        {
            "value": TIME,
            "format": prop("string", "strftime format, e.g. '%Y-%m-%d %H:%M'.", maxLength=200),
            "timezone": TZ,
        },
        ["value", "format"],
    ),
    output_schema=out({"text": prop("string", "The formatted time.")}),
    examples=[
        {
            "value": "2024-05-01T10:00:00Z",
            "format": "%A %d %B %Y, %H:%M",
            "timezone": "America/New_York",
        }
    ],
)
async def time_format(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Format ``value``."""
    tz = zone(params.get("timezone"))
    moment = parse_time(params["value"], tz).astimezone(tz)
    try:
        return {"text": moment.strftime(params["format"])}
    except ValueError as exc:
        raise _bad(f"invalid format: {exc}") from exc


def _shift(moment: dt.datetime, amounts: dict[str, Any], sign: int) -> dt.datetime:
    months = sign * (int(amounts.get("years", 0)) * 12 + int(amounts.get("months", 0)))
    if months:
        moment = add_months(moment, months)
    delta = dt.timedelta(
        weeks=amounts.get("weeks", 0),
        days=amounts.get("days", 0),
        hours=amounts.get("hours", 0),
        minutes=amounts.get("minutes", 0),
        seconds=amounts.get("seconds", 0),
        milliseconds=amounts.get("milliseconds", 0),
    )
    # Wall-clock arithmetic in the zone, so "+1 day" keeps the local hour across DST.
    tz = moment.tzinfo
    naive = moment.replace(tzinfo=None) + sign * delta
    return naive.replace(tzinfo=tz)


@connector(
    "data.time_add",
    name="Add to time",
    category="data",
    kind="transform",
    description="Add or subtract years, months, days, hours... to a time (local wall clock).",
    input_schema=obj(
        {
            "value": TIME,
            "timezone": TZ,
            "subtract": prop("boolean", "Subtract instead of add.", default=False),
            **{unit: prop("number", f"{unit.capitalize()} to add.") for unit in UNITS},
        },
        ["value"],
    ),
    output_schema=TIME_OUT,
    examples=[
        {"value": "2024-01-31T12:00:00Z", "months": 1},
        {"value": "2024-05-01", "days": 7, "subtract": True},
    ],
)
async def time_add(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Shift ``value`` by the given amounts."""
    for unit in ("years", "months"):
        if unit in params and not float(params[unit]).is_integer():
            raise _bad(f"{unit} must be a whole number")
    tz = zone(params.get("timezone"))
    moment = parse_time(params["value"], tz).astimezone(tz)
    try:
        shifted = _shift(moment, params, -1 if params.get("subtract") else 1)
    except (OverflowError, ValueError) as exc:
        raise _bad(f"time out of range: {exc}") from exc
    return describe(shifted)


@connector(
    "data.time_diff",
    name="Time difference",
    category="data",
    kind="transform",
    description="Compute the difference end - start in seconds, minutes, hours, days and months.",
    input_schema=obj({"start": TIME, "end": TIME, "timezone": TZ}, ["start", "end"]),
    output_schema=out(
        {
            "seconds": prop("number", "Total seconds."),
            "minutes": prop("number", "Total minutes."),
            "hours": prop("number", "Total hours."),
            "days": prop("number", "Total days."),
            "weeks": prop("number", "Total weeks."),
            "months": prop("integer", "Whole calendar months."),
            "years": prop("integer", "Whole calendar years."),
            "human": prop("string", "Short form like '2d 3h 4m'."),
        }
    ),
    examples=[{"start": "2024-01-01T00:00:00Z", "end": "2024-03-15T06:30:00Z"}],
)
async def time_diff(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Compute ``end - start``."""
    tz = zone(params.get("timezone"))
    start = parse_time(params["start"], tz)
    end = parse_time(params["end"], tz)
    seconds = (end - start).total_seconds()
    earlier, later = (start, end) if seconds >= 0 else (end, start)
    months = (later.year - earlier.year) * 12 + later.month - earlier.month
    if months and add_months(earlier, months) > later:
        months -= 1
    sign = 1 if seconds >= 0 else -1
    remaining = int(abs(seconds))
    days, remaining = divmod(remaining, 86400)
    hours, remaining = divmod(remaining, 3600)
    minutes, secs = divmod(remaining, 60)
    parts = [f"{v}{u}" for v, u in ((days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")) if v]
    return {
        "seconds": finite(seconds),
        "minutes": finite(seconds / 60),
        "hours": finite(seconds / 3600),
        "days": finite(seconds / 86400),
        "weeks": finite(seconds / 604800),
        "months": sign * months,
        "years": sign * (months // 12),
        "human": ("-" if sign < 0 else "") + (" ".join(parts) or "0s"),
    }


@connector(
    "data.time_convert",
    name="Convert time zone",
    category="data",
    kind="transform",
    description="Express a time in another IANA time zone.",
    input_schema=obj(
        {
            "value": TIME,
            "to": prop("string", "Target IANA zone, e.g. 'Asia/Tokyo'.", maxLength=64),
            "from": prop("string", "Zone of a naive input (default UTC).", maxLength=64),
        },
        ["value", "to"],
    ),
    output_schema=TIME_OUT,
    examples=[{"value": "2024-05-01T10:00:00Z", "to": "Asia/Tokyo"}],
)
async def time_convert(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Convert ``value`` to zone ``to``."""
    moment = parse_time(params["value"], zone(params.get("from")))
    return describe(moment.astimezone(zone(params["to"])))


@connector(
    "data.time_truncate",
    name="Start of period",
    category="data",
    kind="transform",
    description="Round a time to the start (or end) of its minute, hour, day, week, month or year.",
    input_schema=obj(
        {
            "value": TIME,
            "timezone": TZ,
            "unit": prop(
                "string", "Period.", enum=["minute", "hour", "day", "week", "month", "year"]
            ),
            "end": prop(
                "boolean", "Return the last microsecond of the period instead.", default=False
            ),
        },
        ["value", "unit"],
    ),
    output_schema=TIME_OUT,
    examples=[
        {"value": "2024-05-15T10:42:00Z", "unit": "month"},
        {"value": "2024-05-15T10:42:00Z", "unit": "day", "timezone": "Europe/Paris", "end": True},
    ],
)
async def time_truncate(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Truncate ``value`` to ``unit``."""
    tz = zone(params.get("timezone"))
    moment = parse_time(params["value"], tz).astimezone(tz).replace(tzinfo=None)
    unit = params["unit"]
    start = moment.replace(second=0, microsecond=0)
    if unit != "minute":
        start = start.replace(minute=0)
    if unit in ("day", "week", "month", "year"):
        start = start.replace(hour=0)
    if unit == "week":
        start -= dt.timedelta(days=start.weekday())
    if unit in ("month", "year"):
        start = start.replace(day=1)
    if unit == "year":
        start = start.replace(month=1)
    if params.get("end"):
        if unit in ("month", "year"):
            nxt = add_months(start, 12 if unit == "year" else 1)
        else:
            sizes = {"minute": 60, "hour": 3600, "day": 86400, "week": 604800}
            nxt = start + dt.timedelta(seconds=sizes[unit])
        start = nxt - dt.timedelta(microseconds=1)
    return describe(start.replace(tzinfo=tz))
