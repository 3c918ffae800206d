"""JSON Schema connectors: validate a value, infer a schema from a sample."""

from __future__ import annotations

from typing import Any

import jsonschema
from jsonschema.validators import validator_for

from flowplane.connectors.base import NodeContext, connector
from flowplane.connectors.builtin._schemas import obj, out, prop
from flowplane.errors import ConnectorError

MAX_ERRORS = 100


@connector(
    "data.schema_validate",
    name="Validate JSON Schema",
    category="data",
    kind="transform",
    description="Validate a value against a JSON Schema and list every error with its path.",
    input_schema=obj(
        {
            "value": prop(None, "The value to validate."),
            "schema": prop("object", "The JSON Schema (draft 2020-12 unless $schema says)."),
            "fail": prop(
                "boolean",
                "Fail the node when invalid instead of returning valid=false.",
                default=False,
            ),
        },
        ["value", "schema"],
    ),
    output_schema=out(
        {
            "valid": prop("boolean", "Whether the value is valid."),
            "errors": prop("array", "[{path, message, validator}] (at most 100)."),
        }
    ),
    examples=[
        {
            "value": {"age": "x"},
            "schema": {
                "type": "object",
                "properties": {"age": {"type": "integer"}},
                "required": ["age", "name"],
            },
        }
    ],
)
async def schema_validate(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Validate ``value`` against ``schema``."""
    schema = params["schema"]
    cls = validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ConnectorError(f"invalid schema: {exc.message}"[:500], retryable=False) from exc
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    errors = []
    for error in sorted(validator.iter_errors(params["value"]), key=lambda e: list(e.path)):
        errors.append(
            {
                "path": "/" + "/".join(str(p) for p in error.absolute_path),
                "message": error.message[:500],
                "validator": str(error.validator),
            }
        )
        if len(errors) >= MAX_ERRORS:
            break
    if errors and params.get("fail"):
        summary = "; ".join(f"{e['path']}: {e['message']}" for e in errors[:5])
        raise ConnectorError(f"value is invalid: {summary}"[:1000], retryable=False, errors=errors)
    return {"valid": not errors, "errors": errors}


def _merge_types(schemas: list[dict[str, Any]]) -> dict[str, Any]:
    if not schemas:
        return {}
    if all(s == schemas[0] for s in schemas):
        return schemas[0]
    types = {s.get("type") for s in schemas}
    if types == {"object"}:
        keys: dict[str, list[dict[str, Any]]] = {}
        for s in schemas:
            for key, sub in s.get("properties", {}).items():
                keys.setdefault(key, []).append(sub)
        required = set.intersection(*(set(s.get("required", [])) for s in schemas))
        return {
            "type": "object",
            "properties": {k: _merge_types(v) for k, v in keys.items()},
            "required": sorted(required),
        }
    if types == {"integer", "number"}:
        return {"type": "number"}
    return {"anyOf": [dict(t) for t in {repr(s): s for s in schemas}.values()]}


def infer_schema(value: Any, depth: int = 0) -> dict[str, Any]:
    """Return a JSON Schema describing ``value`` (objects require the keys they have)."""
    if depth > 32:
        return {}
    if value is None:
        return {"type": "null"}
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer"}
    if isinstance(value, float):
        return {"type": "number"}
    if isinstance(value, str):
        return {"type": "string"}
    if isinstance(value, list):
        items = _merge_types([infer_schema(v, depth + 1) for v in value[:1000]])
        return {"type": "array", "items": items} if items else {"type": "array"}
    props = {str(k): infer_schema(v, depth + 1) for k, v in value.items()}
    return {"type": "object", "properties": props, "required": sorted(props)}


@connector(
    "data.schema_infer",
    name="Infer JSON Schema",
    category="data",
    kind="transform",
    description="Infer a JSON Schema from a sample value (e.g. to build workflow inputs).",
    input_schema=obj({"value": prop(None, "The sample value.")}, ["value"]),
    output_schema=out({"schema": prop("object", "The inferred schema.")}),
    examples=[{"value": {"id": 1, "tags": ["a"], "price": 9.5}}],
)
async def schema_infer(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Infer a schema from ``value``."""
    return {
        "schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            **infer_schema(params["value"]),
        }
    }
