"""Math connectors: arithmetic, statistics, rounding and number parsing/formatting."""

from __future__ import annotations

import decimal
import math
import re
import statistics
from typing import Any

from flowplane.connectors.base import NodeContext, connector
from flowplane.connectors.builtin._numbers import finite, to_number
from flowplane.connectors.builtin._schemas import obj, out, prop
from flowplane.errors import ConnectorError

NUMBER = prop("number", "A number.")
NUMBERS = prop(
    "array",
    "Numbers (numeric strings accepted).",
    items={"type": ["number", "string"]},
    maxItems=1_000_000,
)

BINARY_OPS = (
    "add",
    "subtract",
    "multiply",
    "divide",
    "floor_divide",
    "mod",
    "power",
    "min",
    "max",
    "hypot",
    "log",
)
UNARY_OPS = ("abs", "negate", "sqrt", "floor", "ceil", "exp", "ln", "log10", "sign")


def _bad(message: str) -> ConnectorError:
    return ConnectorError(message, retryable=False)


def _binary(op: str, a: float, b: float) -> float:
    if op == "add":
        return a + b
    if op == "subtract":
        return a - b
    if op == "multiply":
        return a * b
    if op in ("divide", "floor_divide", "mod") and b == 0:
        raise _bad("division by zero")
    if op == "divide":
        return a / b
    if op == "floor_divide":
        return float(a // b)
    if op == "mod":
        return a % b
    if op == "power":
        if abs(b) > 1024:
            raise _bad("exponent too large")
        return float(a**b)
    if op == "min":
        return min(a, b)
    if op == "max":
        return max(a, b)
    if op == "hypot":
        return math.hypot(a, b)
    if a <= 0 or b <= 0 or b == 1:  # log of a in base b
        raise _bad("log needs a > 0 and a base b > 0, b != 1")
    return math.log(a, b)


def _unary(op: str, a: float) -> float:
    if op == "abs":
        return abs(a)
    if op == "negate":
        return -a
    if op == "floor":
        return float(math.floor(a))
    if op == "ceil":
        return float(math.ceil(a))
    if op == "sign":
        return float((a > 0) - (a < 0))
    if op == "exp":
        if a > 700:
            raise _bad("exp overflow")
        return math.exp(a)
    if a < 0 or (a == 0 and op != "sqrt"):
        raise _bad(f"{op} needs a positive number")
    return {"sqrt": math.sqrt, "ln": math.log, "log10": math.log10}[op](a)


@connector(
    "data.math",
    name="Math operation",
    category="data",
    kind="transform",
    description="Apply an arithmetic operation to one number (abs, sqrt) or two (add, divide).",
    input_schema=obj(
        {
            "op": prop("string", "Operation.", enum=[*BINARY_OPS, *UNARY_OPS]),
            "a": prop(["number", "string"], "First operand."),
            "b": prop(["number", "string"], "Second operand (binary operations)."),
        },
        ["op", "a"],
    ),
    output_schema=out({"result": prop(["number", "null"], "The result.")}),
    examples=[{"op": "divide", "a": 10, "b": 4}, {"op": "sqrt", "a": 16}],
)
async def math_op(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Compute ``a <op> b``."""
    op, a = params["op"], to_number(params["a"])
    if op in BINARY_OPS:
        if "b" not in params:
            raise _bad(f"operation {op!r} needs 'b'")
        try:
            return {"result": finite(_binary(op, a, to_number(params["b"])))}
        except OverflowError as exc:
            raise _bad("numeric overflow") from exc
    return {"result": finite(_unary(op, a))}


@connector(
    "data.stats",
    name="Statistics",
    category="data",
    kind="transform",
    description="Count, sum, mean, median, min, max, standard deviation and percentiles of a list.",
    input_schema=obj(
        {
            "values": NUMBERS,
            "percentiles": prop(
                "array",
                "Percentiles to compute (0-100).",
                items={"type": "number", "minimum": 0, "maximum": 100},
            ),
            "sample": prop(
                "boolean", "Sample (n-1) rather than population deviation.", default=True
            ),
        },
        ["values"],
    ),
    output_schema=out(
        {
            k: prop(["number", "null"], f"The {k}.")
            for k in ("count", "sum", "mean", "median", "min", "max", "stdev", "variance", "range")
        }
        | {"percentiles": prop("object", "{'p90': value, ...}.")}
    ),
    examples=[{"values": [3, 1, 4, 1, 5, 9], "percentiles": [50, 90]}],
)
async def stats(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Describe ``values``."""
    values = [to_number(v) for v in params["values"]]
    result: dict[str, Any] = {"count": len(values), "sum": finite(math.fsum(values))}
    if not values:
        return {
            **result,
            **dict.fromkeys(("mean", "median", "min", "max", "stdev", "variance", "range")),
            "percentiles": {},
        }
    ordered = sorted(values)
    sample = params.get("sample", True) and len(values) > 1
    variance = statistics.variance(values) if sample else statistics.pvariance(values)
    result |= {
        "mean": finite(statistics.fmean(values)),
        "median": finite(statistics.median(ordered)),
        "min": finite(ordered[0]),
        "max": finite(ordered[-1]),
        "variance": finite(variance),
        "stdev": finite(math.sqrt(variance)),
        "range": finite(ordered[-1] - ordered[0]),
    }
    percentiles = {}
    for p in params.get("percentiles") or []:
        rank = (len(ordered) - 1) * p / 100
        low, high = math.floor(rank), math.ceil(rank)
        value = ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
        percentiles[f"p{p:g}"] = finite(value)
    result["percentiles"] = percentiles
    return result


ROUNDING = {
    "half_up": decimal.ROUND_HALF_UP,
    "half_even": decimal.ROUND_HALF_EVEN,
    "half_down": decimal.ROUND_HALF_DOWN,
    "up": decimal.ROUND_UP,
    "down": decimal.ROUND_DOWN,
    "ceiling": decimal.ROUND_CEILING,
    "floor": decimal.ROUND_FLOOR,
}


def _round(value: float | str, digits: int, mode: str) -> float:
    quantum = decimal.Decimal(1).scaleb(-digits)
    rounded = decimal.Decimal(str(value)).quantize(quantum, rounding=ROUNDING[mode])
    return float(rounded)


@connector(
    "data.round",
    name="Round number",
    category="data",
    kind="transform",
    description="Round a number (or list) to N decimals with a chosen mode (half_up, floor...).",
    input_schema=obj(
        {
            "value": prop(["number", "string", "array"], "A number or a list of numbers."),
            "decimals": prop(
                "integer",
                "Decimal places (negative: tens, hundreds...).",
                minimum=-15,
                maximum=15,
                default=0,
            ),
            "mode": prop("string", "Rounding mode.", enum=list(ROUNDING), default="half_up"),
        },
        ["value"],
    ),
    output_schema=out({"result": prop(["number", "array"], "The rounded value(s).")}),
    examples=[{"value": 2.345, "decimals": 2}, {"value": [1.5, 2.5], "mode": "half_even"}],
)
async def round_number(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Round ``value``."""
    digits, mode = params.get("decimals", 0), params.get("mode", "half_up")

    def one(v: Any) -> Any:
        number = to_number(v)
        if not math.isfinite(number):
            raise _bad("cannot round a non-finite number")
        return finite(_round(v if isinstance(v, str) else number, digits, mode))

    value = params["value"]
    return {"result": [one(v) for v in value] if isinstance(value, list) else one(value)}


@connector(
    "data.parse_number",
    name="Parse number",
    category="data",
    kind="transform",
    description="Parse a number from text like '1,234.50', '€12', '1.234,5' or '45%'.",
    input_schema=obj(
        {
            "text": prop("string", "The text.", maxLength=200),
            "decimal_separator": prop("string", "Decimal mark.", enum=[".", ","], default="."),
        },
        ["text"],
    ),
    output_schema=out(
        {
            "value": prop("number", "The number (45% gives 0.45)."),
            "is_integer": prop("boolean", "Whether it is whole."),
        }
    ),
    examples=[{"text": "$1,234.50"}, {"text": "1.234,5", "decimal_separator": ","}],
)
async def parse_number(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Parse a number out of ``text``."""
    text = params["text"].strip()
    decimal_mark = params.get("decimal_separator", ".")
    group_mark = "," if decimal_mark == "." else "."
    percent = text.endswith("%")
    cleaned = (
        re.sub(r"[^\d\-+eE" + re.escape(decimal_mark) + re.escape(group_mark) + "]", "", text)
        .replace(group_mark, "")
        .replace(decimal_mark, ".")
    )
    try:
        value = float(cleaned)
    except ValueError as exc:
        raise _bad(f"no number in {params['text']!r}") from exc
    if percent:
        value /= 100
    if not math.isfinite(value):
        raise _bad("number is not finite")
    return {"value": finite(value), "is_integer": value.is_integer()}


@connector(
    "data.format_number",
    name="Format number",
    category="data",
    kind="transform",
    description="Format a number with fixed decimals, thousands separators, percent or a unit.",
    input_schema=obj(
        {
            "value": prop(["number", "string"], "The number."),
            "decimals": prop("integer", "Decimal places.", minimum=0, maximum=20, default=2),
            "thousands": prop("string", "Thousands separator.", maxLength=1, default=","),
            "decimal_separator": prop(
                "string", "Decimal mark.", minLength=1, maxLength=1, default="."
            ),
            "percent": prop("boolean", "Multiply by 100 and append %.", default=False),
            "prefix": prop("string", "Text before (e.g. '$').", maxLength=10, default=""),
            "suffix": prop("string", "Text after (e.g. ' kg').", maxLength=10, default=""),
        },
        ["value"],
    ),
    output_schema=out({"text": prop("string", "The formatted number.")}),
    examples=[{"value": 1234567.891, "decimals": 2, "prefix": "$"}],
)
async def format_number(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Format ``value``."""
    value = to_number(params["value"])
    if not math.isfinite(value):
        raise _bad("number is not finite")
    if params.get("percent"):
        value *= 100
    decimals = params.get("decimals", 2)
    text = f"{_round(value, decimals, 'half_up'):,.{decimals}f}"
    text = text.replace(",", "\0").replace(".", params.get("decimal_separator", "."))
    text = text.replace("\0", params.get("thousands", ","))
    if params.get("percent"):
        text += "%"
    return {"text": f"{params.get('prefix', '')}{text}{params.get('suffix', '')}"}


@connector(
    "data.clamp",
    name="Clamp number",
    category="data",
    kind="transform",
    description="Limit a number to a [min, max] range.",
    input_schema=obj(
        {
            "value": prop(["number", "string"], "The number."),
            "min": prop("number", "Lower bound."),
            "max": prop("number", "Upper bound."),
        },
        ["value"],
    ),
    output_schema=out(
        {
            "result": prop("number", "The clamped number."),
            "clamped": prop("boolean", "Whether a bound applied."),
        }
    ),
    examples=[{"value": 120, "min": 0, "max": 100}],
)
async def clamp(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Clamp ``value`` to ``[min, max]``."""
    value = to_number(params["value"])
    low, high = params.get("min", -math.inf), params.get("max", math.inf)
    if low > high:
        raise _bad("min is greater than max")
    result = min(max(value, low), high)
    return {"result": finite(result), "clamped": result != value}


@connector(
    "data.percentage",
    name="Percentage",
    category="data",
    kind="transform",
    description="Compute part/total as a percentage, or the percent change from old to new.",
    input_schema=obj(
        {
            "mode": prop(
                "string",
                "of_total: part/total*100; change: (new-old)/old*100.",
                enum=["of_total", "change"],
            ),
            "a": prop(["number", "string"], "part (of_total) or old value (change)."),
            "b": prop(["number", "string"], "total (of_total) or new value (change)."),
            "decimals": prop("integer", "Round to decimals.", minimum=0, maximum=15, default=2),
        },
        ["mode", "a", "b"],
    ),
    output_schema=out({"percent": prop(["number", "null"], "The percentage.")}),
    examples=[{"mode": "of_total", "a": 25, "b": 200}, {"mode": "change", "a": 80, "b": 100}],
)
async def percentage(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Compute a percentage."""
    a, b = to_number(params["a"]), to_number(params["b"])
    if params["mode"] == "of_total":
        value = None if b == 0 else a / b * 100
    else:
        value = None if a == 0 else (b - a) / abs(a) * 100
    if value is None:
        return {"percent": None}
    return {"percent": finite(_round(value, params.get("decimals", 2), "half_up"))}


@connector(
    "data.range",
    name="Number range",
    category="data",
    kind="transform",
    description="Generate a list of numbers from start to stop (exclusive) by step.",
    input_schema=obj(
        {
            "start": prop("number", "First value.", default=0),
            "stop": prop("number", "End (exclusive)."),
            "step": prop("number", "Increment (non-zero).", default=1),
        },
        ["stop"],
    ),
    output_schema=out(
        {"items": prop("array", "The numbers."), "count": prop("integer", "How many.")}
    ),
    examples=[{"start": 0, "stop": 10, "step": 2}],
)
async def number_range(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Generate a range (at most 100,000 values)."""
    start, stop, step = params.get("start", 0), params["stop"], params.get("step", 1)
    if step == 0:
        raise _bad("step must not be zero")
    count = max(math.ceil((stop - start) / step), 0)
    if count > 100_000:
        raise _bad("range has more than 100000 values")
    items = [finite(start + i * step) for i in range(count)]
    return {"items": items, "count": count}
