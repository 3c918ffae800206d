"""Object connectors: JSON Patch and diff, deep merge, get/set paths, pick/omit, flatten."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch

from flowplane.connectors.base import NodeContext, connector
from flowplane.connectors.builtin._paths import get_path, has_path, set_path
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
    "data.json_patch",
    name="JSON Patch",
    category="data",
    kind="transform",
    description="Apply an RFC 6902 JSON Patch (add/remove/replace/move/copy/test) to a document.",
    input_schema=obj(
        {
            "document": prop(None, "The document to patch."),
            "patch": prop("array", "The RFC 6902 operations.", items={"type": "object"}),
        },
        ["document", "patch"],
    ),
    output_schema=out({"document": prop(None, "The patched document.")}),
    examples=[{"document": {"a": 1}, "patch": [{"op": "add", "path": "/b", "value": 2}]}],
)
async def json_patch(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Apply ``patch`` to ``document`` (the input is not modified)."""
    try:
        patch = jsonpatch.JsonPatch(params["patch"])
        return {"document": patch.apply(copy.deepcopy(params["document"]))}
    except (
        jsonpatch.JsonPatchException,
        jsonpatch.JsonPointerException,
        KeyError,
        TypeError,
    ) as exc:
        raise ConnectorError(f"JSON Patch failed: {exc}"[:500], retryable=False) from exc


@connector(
    "data.json_diff",
    name="JSON diff",
    category="data",
    kind="transform",
    description="Compute the RFC 6902 JSON Patch that turns one document into another.",
    input_schema=obj(
        {
            "source": prop(None, "The original document."),
            "target": prop(None, "The desired document."),
        },
        ["source", "target"],
    ),
    output_schema=out(
        {
            "patch": prop("array", "The operations."),
            "equal": prop("boolean", "Whether the documents are equal."),
        }
    ),
    examples=[{"source": {"a": 1, "b": 2}, "target": {"a": 1, "b": 3}}],
)
async def json_diff(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Diff ``source`` against ``target``."""
    ops = list(jsonpatch.make_patch(params["source"], params["target"]))
    return {"patch": ops, "equal": not ops}


def _deep_merge(base: Any, other: Any, lists: str) -> Any:
    if isinstance(base, dict) and isinstance(other, dict):
        merged = dict(base)
        for key, value in other.items():
            merged[key] = _deep_merge(base[key], value, lists) if key in base else value
        return merged
    if isinstance(base, list) and isinstance(other, list):
        if lists == "concat":
            return base + other
        if lists == "union":
            seen = {_key(v) for v in base}
            return base + [v for v in other if _key(v) not in seen]
    return other


@connector(
    "data.merge",
    name="Merge objects",
    category="data",
    kind="transform",
    description="Deep-merge objects left to right; later values win, lists replaced or joined.",
    input_schema=obj(
        {
            "objects": prop(
                "array",
                "Objects to merge, lowest priority first.",
                items={"type": "object"},
                minItems=1,
            ),
            "lists": prop(
                "string", "How lists merge.", enum=["replace", "concat", "union"], default="replace"
            ),
            "deep": prop("boolean", "Merge nested objects (false: shallow update).", default=True),
        },
        ["objects"],
    ),
    output_schema=out({"value": prop("object", "The merged object.")}),
    examples=[
        {"objects": [{"a": {"x": 1}, "l": [1]}, {"a": {"y": 2}, "l": [2]}], "lists": "concat"}
    ],
)
async def merge(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Merge ``objects``."""
    result: dict[str, Any] = {}
    for item in params["objects"]:
        if params.get("deep", True):
            result = _deep_merge(result, item, params.get("lists", "replace"))
        else:
            result.update(item)
    return {"value": result}


def _pick_omit(params: dict[str, Any], pick: bool) -> Any:
    fields: list[str] = params["fields"]

    def shape(value: Any) -> Any:
        if not isinstance(value, dict):
            raise ConnectorError("pick/omit works on objects", retryable=False)
        if pick:
            result: dict[str, Any] = {}
            for field in fields:
                if has_path(value, field):
                    set_path(result, field, copy.deepcopy(get_path(value, field)))
            return result
        result = copy.deepcopy(value)
        for field in fields:
            *parents, last = field.split(".")
            holder = get_path(result, ".".join(parents)) if parents else result
            if isinstance(holder, dict):
                holder.pop(last, None)
        return result

    if "object" in params:
        return {"value": shape(params["object"])}
    if "items" in params:
        return _items_result([shape(item) for item in params["items"]])
    raise ConnectorError("give 'object' or 'items'", retryable=False)


PICK_SCHEMA = obj(
    {
        "object": prop("object", "One object to reshape."),
        "items": prop("array", "Or a list of objects to reshape.", items={"type": "object"}),
        "fields": prop(
            "array", "Dotted paths of the fields.", items={"type": "string"}, minItems=1
        ),
    },
    ["fields"],
)
PICK_OUT = out(
    {
        "value": prop("object", "The reshaped object (with 'object')."),
        "items": prop("array", "The reshaped objects (with 'items')."),
        "count": prop("integer", "Number of items (with 'items')."),
    }
)


@connector(
    "data.pick",
    name="Pick fields",
    category="data",
    kind="transform",
    description="Keep only the given (dotted) fields of an object or of each object in a list.",
    input_schema=PICK_SCHEMA,
    output_schema=PICK_OUT,
    examples=[
        {"object": {"id": 1, "user": {"name": "a", "pw": "x"}}, "fields": ["id", "user.name"]}
    ],
)
async def pick(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Keep only ``fields``."""
    return _pick_omit(params, pick=True)


@connector(
    "data.omit",
    name="Omit fields",
    category="data",
    kind="transform",
    description="Remove the given (dotted) fields from an object or from each object in a list.",
    input_schema=PICK_SCHEMA,
    output_schema=PICK_OUT,
    examples=[{"items": [{"id": 1, "password": "x"}], "fields": ["password"]}],
)
async def omit(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Drop ``fields``."""
    return _pick_omit(params, pick=False)


def _flatten_list(items: list[Any], depth: int) -> list[Any]:
    result: list[Any] = []
    for item in items:
        if isinstance(item, list) and depth > 0:
            result.extend(_flatten_list(item, depth - 1))
        else:
            result.append(item)
    return result


def _flatten_object(value: Any, prefix: str, sep: str, out_: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _flatten_object(item, f"{prefix}{sep}{key}" if prefix else str(key), sep, out_)
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            _flatten_object(item, f"{prefix}{sep}{index}" if prefix else str(index), sep, out_)
    else:
        out_[prefix] = value


@connector(
    "data.flatten",
    name="Flatten",
    category="data",
    kind="transform",
    description="Flatten nested lists (to a depth) or a nested object into dotted keys.",
    input_schema=obj(
        {
            "items": prop("array", "A nested list to flatten."),
            "object": prop("object", "Or a nested object to flatten into {'a.b.0': v}."),
            "depth": prop("integer", "List levels to flatten.", minimum=1, maximum=64, default=1),
            "separator": prop(
                "string", "Key separator for objects.", default=".", minLength=1, maxLength=4
            ),
        },
    ),
    output_schema=out(
        {"items": prop("array", "The flat list."), "value": prop("object", "The flat object.")}
    ),
    examples=[{"items": [1, [2, [3]]], "depth": 2}, {"object": {"a": {"b": 1}, "c": [1, 2]}}],
)
async def flatten(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Flatten ``items`` or ``object``."""
    if "items" in params:
        return {"items": _flatten_list(params["items"], params.get("depth", 1))}
    if "object" in params:
        flat: dict[str, Any] = {}
        _flatten_object(params["object"], "", params.get("separator", "."), flat)
        return {"value": flat}
    raise ConnectorError("give 'items' or 'object'", retryable=False)


@connector(
    "data.unflatten",
    name="Unflatten",
    category="data",
    kind="transform",
    description="Turn an object with dotted keys ({'a.b': 1}) back into nested objects.",
    input_schema=obj(
        {
            "object": prop("object", "The flat object."),
            "separator": prop("string", "Key separator.", default=".", minLength=1, maxLength=4),
        },
        ["object"],
    ),
    output_schema=out({"value": prop("object", "The nested object.")}),
    examples=[{"object": {"a.b": 1, "a.c": 2, "d": 3}}],
)
async def unflatten(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Nest dotted keys."""
    sep = params.get("separator", ".")
    result: dict[str, Any] = {}
    for key, value in params["object"].items():
        parts = key.split(sep)
        holder = result
        for part in parts[:-1]:
            nxt = holder.get(part)
            if not isinstance(nxt, dict):
                nxt = holder[part] = {}
            holder = nxt
        holder[parts[-1]] = value
    return {"value": result}


@connector(
    "data.get",
    name="Get value",
    category="data",
    kind="transform",
    description="Read the value at a dotted path of a document, with a default when missing.",
    input_schema=obj(
        {
            "document": prop(None, "The document."),
            "path": prop("string", "Dotted path, e.g. 'items.0.name'."),
            "default": prop(None, "Value returned when the path is missing."),
        },
        ["document", "path"],
    ),
    output_schema=out(
        {
            "value": prop(None, "The value (or default)."),
            "found": prop("boolean", "Whether the path exists."),
        }
    ),
    examples=[{"document": {"items": [{"name": "a"}]}, "path": "items.0.name"}],
)
async def get_value(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Read ``path`` of ``document``."""
    found = has_path(params["document"], params["path"])
    value = get_path(params["document"], params["path"]) if found else params.get("default")
    return {"value": value, "found": found}


@connector(
    "data.set",
    name="Set values",
    category="data",
    kind="transform",
    description="Return a copy of an object with values set at dotted paths.",
    input_schema=obj(
        {
            "object": prop("object", "The object to copy (default: empty)."),
            "values": prop("object", "{dotted.path: value} to set.", minProperties=1),
        },
        ["values"],
    ),
    output_schema=out({"value": prop("object", "The updated object.")}),
    examples=[{"object": {"a": 1}, "values": {"b.c": 2}}],
)
async def set_values(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Set ``values`` into a copy of ``object``."""
    result = copy.deepcopy(params.get("object") or {})
    for path, value in params["values"].items():
        set_path(result, path, value)
    return {"value": result}


@connector(
    "data.entries",
    name="Object entries",
    category="data",
    kind="transform",
    description="Turn an object into a list of {key, value} entries, or entries back into one.",
    input_schema=obj(
        {
            "object": prop("object", "An object to split into entries."),
            "entries": prop(
                "array",
                "Or [{key, value}] entries to join into an object.",
                items=obj(
                    {"key": prop("string", "The key."), "value": prop(None, "The value.")}, ["key"]
                ),
            ),
        },
    ),
    output_schema=out(
        {
            "entries": prop("array", "[{key, value}] (from 'object')."),
            "value": prop("object", "The object (from 'entries')."),
            "count": prop("integer", "Number of entries."),
        }
    ),
    examples=[{"object": {"a": 1, "b": 2}}, {"entries": [{"key": "a", "value": 1}]}],
)
async def entries(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Convert between an object and its entries."""
    if "object" in params:
        items = [{"key": k, "value": v} for k, v in params["object"].items()]
        return {"entries": items, "count": len(items)}
    if "entries" in params:
        value = {e["key"]: e.get("value") for e in params["entries"]}
        return {"value": value, "count": len(value)}
    raise ConnectorError("give 'object' or 'entries'", retryable=False)
