"""Run input validation against a workflow's ``inputs`` JSON Schema (Draft 2020-12)."""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError

from flowplane.errors import InputInvalid, WorkflowInvalid

__all__ = ["MAX_INPUT_ERRORS", "check_inputs_schema", "format_error_path", "validate_input"]

MAX_INPUT_ERRORS = 50
_MAX_MESSAGE_CHARS = 300


def format_error_path(parts: Any) -> str:
    """Return ``items[0].sku`` for the path ``["items", 0, "sku"]`` (``""`` for the root)."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _short(message: str) -> str:
    if len(message) <= _MAX_MESSAGE_CHARS:
        return message
    return message[:_MAX_MESSAGE_CHARS] + "..."


def check_inputs_schema(schema: Any) -> None:
    """Check that a workflow's ``inputs`` is a valid JSON Schema for an object.

    Raises:
        WorkflowInvalid: the schema is not a mapping, is not valid Draft 2020-12, or
            declares a ``type`` other than ``object``; ``errors`` holds one
            ``{"path", "error"}`` entry.
    """
    if not isinstance(schema, dict):
        raise WorkflowInvalid(
            "inputs must be a JSON Schema object",
            errors=[{"path": "inputs", "error": "inputs must be a JSON Schema object"}],
        )
    _checked_validator(json.dumps(schema, sort_keys=True))


@lru_cache(maxsize=256)
def _checked_validator(schema_json: str) -> Draft202012Validator:
    schema = json.loads(schema_json)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = format_error_path(exc.path)
        path = f"inputs.{where}" if where else "inputs"
        message = f"inputs is not a valid JSON Schema: {_short(exc.message)}"
        raise WorkflowInvalid(message, errors=[{"path": path, "error": message}]) from None
    declared = schema.get("type")
    if declared is not None and declared != "object":
        message = f"inputs must describe an object (type: object), not {declared!r}"
        raise WorkflowInvalid(message, errors=[{"path": "inputs.type", "error": message}])
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _error_entry(error: ValidationError) -> dict[str, Any]:
    parts = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.validator_value, list):
        for name in error.validator_value:
            if repr(name) in error.message:
                parts.append(name)
                break
    return {"path": format_error_path(parts), "error": _short(error.message)}


def validate_input(schema: dict[str, Any] | None, value: Any) -> dict[str, Any]:
    """Validate a run input and fill top-level defaults.

    Args:
        schema: the workflow's ``inputs`` (``None`` accepts any object).
        value: the run input; ``None`` means ``{}``.

    Returns:
        A new dict: ``value`` with the ``default`` of every absent top-level property.

    Raises:
        InputInvalid: the input is not an object or breaks the schema; ``errors`` lists
            every problem as ``{"path", "error"}`` (``path`` names the missing property for
            ``required`` errors).
        WorkflowInvalid: the schema itself is invalid.
    """
    if value is None:
        value = {}
    if not isinstance(value, dict):
        message = f"run input must be an object, not {type(value).__name__}"
        raise InputInvalid(message, errors=[{"path": "", "error": message}])
    result = dict(value)
    if schema is None:
        return result
    check_inputs_schema(schema)
    validator = _checked_validator(json.dumps(schema, sort_keys=True))
    properties = schema.get("properties")
    if isinstance(properties, dict):
        for name, prop in properties.items():
            if name not in result and isinstance(prop, dict) and "default" in prop:
                result[name] = copy.deepcopy(prop["default"])
    errors = sorted(
        (_error_entry(error) for error in validator.iter_errors(result)),
        key=lambda entry: (entry["path"], entry["error"]),
    )
    if errors:
        entries = errors[:MAX_INPUT_ERRORS]
        summary = "; ".join(
            f"{entry['path']}: {entry['error']}" if entry["path"] else entry["error"]
            for entry in entries[:5]
        )
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise InputInvalid(f"run input is invalid: {summary}{more}", errors=entries)
    return result
