"""Collection connectors: filter, sort, group, dedupe, zip, chunk and slice lists."""

from __future__ import annotations

import json
from typing import Any

from flowplane.connectors.base import NodeContext, connector
from flowplane.connectors.builtin._conditions import CONDITION_SCHEMA, check_all
from flowplane.connectors.builtin._paths import get_path, has_path
from flowplane.connectors.builtin._schemas import obj, out, prop
from flowplane.errors import ConnectorError

ITEMS = prop("array", "The list of items.")
FIELD = prop("string", "Dotted path inside each item (e.g. 'user.id'; empty: the item itself).")
ITEMS_OUT = out(
    {"items": prop("array", "The resulting list."), "count": prop("integer", "Number of items.")}
)


def _items_result(items: list[Any]) -> dict[str, Any]:
    return {"items": items, "count": len(items)}


def _key(value: Any) -> str:
    """A hashable, type-aware identity for any JSON value."""
    return json.dumps(value, sort_keys=True, default=str)


@connector(
    "data.filter",
    name="Filter list",
    category="data",
    kind="transform",
    description="Keep the items of a list that match all (or any) of the given conditions.",
    input_schema=obj(
        {
            "items": ITEMS,
            "conditions": prop(
                "array", "Tests applied to each item.", items=CONDITION_SCHEMA, minItems=1
            ),
            "mode": prop(
                "string",
                "Combine tests with all (AND) or any (OR).",
                enum=["all", "any"],
                default="all",
            ),
            "invert": prop("boolean", "Keep the items that do NOT match.", default=False),
        },
        ["items", "conditions"],
    ),
    output_schema=out(
        {**ITEMS_OUT["properties"], "rejected": prop("integer", "Number of items dropped.")}
    ),
    examples=[
        {"items": [{"n": 1}, {"n": 5}], "conditions": [{"field": "n", "op": "gt", "value": 2}]}
    ],
)
async def filter_items(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Filter ``items`` by ``conditions``."""
    invert = bool(params.get("invert"))
    mode = params.get("mode", "all")
    kept = [
        item for item in params["items"] if check_all(params["conditions"], item, mode) != invert
    ]
    return {**_items_result(kept), "rejected": len(params["items"]) - len(kept)}


def _sort_key(value: Any) -> tuple[int, Any]:
    # None sorts last; mixed types sort by type rank then value.
    if value is None:
        return (3, 0)
    if isinstance(value, bool | int | float):
        return (0, value)
    if isinstance(value, str):
        return (1, value)
    return (2, _key(value))


@connector(
    "data.sort",
    name="Sort list",
    category="data",
    kind="transform",
    description="Sort a list by one or more fields, ascending or descending (nulls last).",
    input_schema=obj(
        {
            "items": ITEMS,
            "by": prop(
                "array",
                "Sort keys, most significant first.",
                items=obj(
                    {
                        "field": FIELD,
                        "order": prop("string", "Direction.", enum=["asc", "desc"], default="asc"),
                        "case_insensitive": prop(
                            "boolean", "Compare strings ignoring case.", default=False
                        ),
                    },
                ),
            ),
        },
        ["items"],
    ),
    output_schema=ITEMS_OUT,
    examples=[{"items": [{"n": 2}, {"n": 1}], "by": [{"field": "n"}]}, {"items": [3, 1, 2]}],
)
async def sort_items(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Sort ``items`` (stable, applied from the least significant key)."""
    items = list(params["items"])
    for spec in reversed(params.get("by") or [{"field": ""}]):
        path = spec.get("field") or ""
        fold = bool(spec.get("case_insensitive"))

        def key(item: Any, path: str = path, fold: bool = fold) -> tuple[int, Any]:
            value = get_path(item, path)
            return _sort_key(value.casefold() if fold and isinstance(value, str) else value)

        descending = spec.get("order") == "desc"
        present = [i for i in items if get_path(i, path) is not None]
        missing = [i for i in items if get_path(i, path) is None]
        items = sorted(present, key=key, reverse=descending) + missing
    return _items_result(items)


@connector(
    "data.group_by",
    name="Group by",
    category="data",
    kind="transform",
    description="Group list items by the value of a field, with per-group counts.",
    input_schema=obj({"items": ITEMS, "field": FIELD}, ["items", "field"]),
    output_schema=out(
        {
            "groups": prop("array", "[{key, items, count}] in order of first appearance."),
            "by_key": prop("object", "Items by key (keys as strings)."),
        }
    ),
    examples=[{"items": [{"t": "a"}, {"t": "b"}, {"t": "a"}], "field": "t"}],
)
async def group_by(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Group ``items`` by ``field``."""
    groups: dict[str, dict[str, Any]] = {}
    for item in params["items"]:
        value = get_path(item, params["field"])
        group = groups.setdefault(_key(value), {"key": value, "items": []})
        group["items"].append(item)
    result = [{**g, "count": len(g["items"])} for g in groups.values()]
    by_key = {
        (g["key"] if isinstance(g["key"], str) else _key(g["key"])): g["items"] for g in result
    }
    return {"groups": result, "by_key": by_key}


@connector(
    "data.dedupe",
    name="Remove duplicates",
    category="data",
    kind="transform",
    description="Remove duplicate items from a list, comparing whole items or given fields.",
    input_schema=obj(
        {
            "items": ITEMS,
            "fields": prop(
                "array",
                "Fields that identify an item (default: the whole item).",
                items={"type": "string"},
            ),
            "keep": prop(
                "string", "Which duplicate to keep.", enum=["first", "last"], default="first"
            ),
        },
        ["items"],
    ),
    output_schema=out(
        {**ITEMS_OUT["properties"], "removed": prop("integer", "Number of duplicates dropped.")}
    ),
    examples=[{"items": [{"id": 1}, {"id": 1}, {"id": 2}], "fields": ["id"]}],
)
async def dedupe(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Deduplicate ``items``."""
    fields = params.get("fields") or []
    items = params["items"]
    ordered = items if params.get("keep", "first") == "first" else list(reversed(items))
    seen: set[str] = set()
    kept = []
    for item in ordered:
        identity = _key([get_path(item, f) for f in fields] if fields else item)
        if identity not in seen:
            seen.add(identity)
            kept.append(item)
    if params.get("keep") == "last":
        kept.reverse()
    return {**_items_result(kept), "removed": len(items) - len(kept)}


@connector(
    "data.zip",
    name="Zip lists",
    category="data",
    kind="transform",
    description="Combine parallel lists into a list of objects (or tuples), one per position.",
    input_schema=obj(
        {
            "lists": prop(
                "object",
                "Named lists: {name: [...]} (objects out), or use 'arrays'.",
                additionalProperties={"type": "array"},
            ),
            "arrays": prop("array", "Unnamed lists (tuples out).", items={"type": "array"}),
            "fill": prop(
                "boolean", "Pad shorter lists with null instead of truncating.", default=False
            ),
        },
    ),
    output_schema=ITEMS_OUT,
    examples=[{"lists": {"name": ["a", "b"], "score": [1, 2]}}, {"arrays": [[1, 2], [3, 4]]}],
)
async def zip_lists(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Zip ``lists`` or ``arrays`` together."""
    named: dict[str, list[Any]] = params.get("lists") or {}
    arrays: list[list[Any]] = list(named.values()) if named else params.get("arrays") or []
    if not arrays:
        raise ConnectorError("give 'lists' or 'arrays'", retryable=False)
    size = (max if params.get("fill") else min)(len(a) for a in arrays)
    rows = [[a[i] if i < len(a) else None for a in arrays] for i in range(size)]
    if named:
        keys = list(named)
        return _items_result([dict(zip(keys, row, strict=True)) for row in rows])
    return _items_result(rows)


@connector(
    "data.chunk",
    name="Split into chunks",
    category="data",
    kind="transform",
    description="Split a list into consecutive chunks of at most N items.",
    input_schema=obj(
        {"items": ITEMS, "size": prop("integer", "Chunk size.", minimum=1, maximum=100_000)},
        ["items", "size"],
    ),
    output_schema=out(
        {"chunks": prop("array", "The chunks."), "count": prop("integer", "Number of chunks.")}
    ),
    examples=[{"items": [1, 2, 3, 4, 5], "size": 2}],
)
async def chunk(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Split ``items`` into chunks of ``size``."""
    items, size = params["items"], params["size"]
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    return {"chunks": chunks, "count": len(chunks)}


@connector(
    "data.slice",
    name="Slice list",
    category="data",
    kind="transform",
    description="Take a range of a list (start/end, negative counts from the end), or reverse it.",
    input_schema=obj(
        {
            "items": ITEMS,
            "start": prop("integer", "First index (inclusive).", default=0),
            "end": prop("integer", "Last index (exclusive; default: the end)."),
            "reverse": prop("boolean", "Reverse the result.", default=False),
        },
        ["items"],
    ),
    output_schema=ITEMS_OUT,
    examples=[{"items": [1, 2, 3, 4], "start": 1, "end": 3}, {"items": [1, 2], "reverse": True}],
)
async def slice_items(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Slice ``items``."""
    items = params["items"][params.get("start", 0) : params.get("end")]
    return _items_result(list(reversed(items)) if params.get("reverse") else items)


@connector(
    "data.pluck",
    name="Pluck field",
    category="data",
    kind="transform",
    description="Collect the value of one field from each item of a list.",
    input_schema=obj(
        {
            "items": ITEMS,
            "field": FIELD,
            "skip_missing": prop("boolean", "Drop items without the field.", default=False),
        },
        ["items", "field"],
    ),
    output_schema=out(
        {"values": prop("array", "The values."), "count": prop("integer", "Number of values.")}
    ),
    examples=[{"items": [{"id": 1}, {"id": 2}], "field": "id"}],
)
async def pluck(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Collect ``field`` of each item."""
    values = [
        get_path(item, params["field"])
        for item in params["items"]
        if not params.get("skip_missing") or has_path(item, params["field"])
    ]
    return {"values": values, "count": len(values)}


@connector(
    "data.to_map",
    name="List to map",
    category="data",
    kind="transform",
    description="Index a list of objects by a key field into an object {key: item}.",
    input_schema=obj(
        {
            "items": ITEMS,
            "key": FIELD,
            "value": prop("string", "Field to keep as the value (default: the whole item)."),
        },
        ["items", "key"],
    ),
    output_schema=out(
        {
            "value": prop("object", "The map (later items win on duplicate keys)."),
            "count": prop("integer", "Number of keys."),
        }
    ),
    examples=[{"items": [{"id": "a", "n": 1}, {"id": "b", "n": 2}], "key": "id", "value": "n"}],
)
async def to_map(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Index ``items`` by ``key``."""
    result: dict[str, Any] = {}
    for item in params["items"]:
        key = get_path(item, params["key"])
        if key is None:
            continue
        value_field = params.get("value")
        result[str(key)] = get_path(item, value_field) if value_field else item
    return {"value": result, "count": len(result)}


@connector(
    "data.set_ops",
    name="Set operations",
    category="data",
    kind="transform",
    description="Union, intersection or difference of two lists (order kept, by value).",
    input_schema=obj(
        {
            "left": prop("array", "First list."),
            "right": prop("array", "Second list."),
            "op": prop(
                "string",
                "Operation.",
                enum=["union", "intersection", "difference", "symmetric_difference"],
            ),
        },
        ["left", "right", "op"],
    ),
    output_schema=ITEMS_OUT,
    examples=[{"left": [1, 2, 3], "right": [2, 3, 4], "op": "intersection"}],
)
async def set_ops(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Combine ``left`` and ``right`` as sets."""
    left, right, op = params["left"], params["right"], params["op"]
    lkeys, rkeys = {_key(v) for v in left}, {_key(v) for v in right}
    if op == "union":
        candidates = left + right
    elif op == "intersection":
        candidates = [v for v in left if _key(v) in rkeys]
    elif op == "difference":
        candidates = [v for v in left if _key(v) not in rkeys]
    else:
        candidates = [v for v in left if _key(v) not in rkeys]
        candidates += [v for v in right if _key(v) not in lkeys]
    seen: set[str] = set()
    result = []
    for value in candidates:
        if _key(value) not in seen:
            seen.add(_key(value))
            result.append(value)
    return _items_result(result)
