"""``data.json_parse`` and ``data.json_format``."""

from __future__ import annotations

import json
from typing import Any

from flowplane.connectors.base import NodeContext, connector
from flowplane.connectors.builtin._format_input import TEXT, invalid
from flowplane.connectors.builtin._schemas import obj, out, prop


@connector(
    "data.json_parse",
    name="Parse JSON",
    category="data",
    kind="transform",
    description="Parse a JSON string into a value.",
    input_schema=obj({"text": TEXT}, ["text"]),
    output_schema=out({"value": prop(None, "The parsed value.")}),
    examples=[{"text": '{"id": 1, "tags": ["a"]}'}],
)
async def json_parse(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Parse ``text`` as JSON."""
    try:
        return {"value": json.loads(params["text"])}
    except json.JSONDecodeError as exc:
        raise invalid("JSON", exc) from exc


@connector(
    "data.json_format",
    name="Format JSON",
    category="data",
    kind="transform",
    description="Serialise a value to a JSON string, compact or indented.",
    input_schema=obj(
        {
            "value": prop(None, "The value to serialise."),
            "indent": prop("integer", "Spaces of indentation (0: compact).", minimum=0, maximum=8),
            "sort_keys": prop("boolean", "Sort object keys.", default=False),
        },
        ["value"],
    ),
    output_schema=out({"text": prop("string", "The JSON text.")}),
    examples=[{"value": {"b": 1, "a": [1, 2]}, "indent": 2, "sort_keys": True}],
)
async def json_format(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Serialise ``value`` as JSON."""
    indent = params.get("indent") or None
    separators = None if indent else (",", ":")
    text = json.dumps(
        params["value"],
        indent=indent,
        sort_keys=bool(params.get("sort_keys")),
        ensure_ascii=False,
        separators=separators,
    )
    return {"text": text}
