"""Run input validation against the workflow ``inputs`` schema."""

from __future__ import annotations

from typing import Any

import pytest

from flowplane.errors import InputInvalid, WorkflowInvalid
from flowplane.model.inputs import check_inputs_schema, validate_input

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["order_id", "email"],
    "properties": {
        "order_id": {"type": "integer"},
        "email": {"type": "string", "format": "email"},
        "priority": {"type": "string", "enum": ["low", "high"], "default": "low"},
        "tags": {"type": "array", "items": {"type": "string"}, "default": []},
    },
    "additionalProperties": False,
}


def test_no_schema_accepts_any_object() -> None:
    assert validate_input(None, None) == {}
    assert validate_input(None, {"a": [1]}) == {"a": [1]}


@pytest.mark.parametrize("value", [[1], "x", 3])
def test_input_must_be_an_object(value: Any) -> None:
    with pytest.raises(InputInvalid) as info:
        validate_input(None, value)
    assert info.value.extra["errors"][0]["path"] == ""
    assert "run input must be an object" in info.value.detail


def test_defaults_are_filled_and_copied() -> None:
    first = validate_input(SCHEMA, {"order_id": 1, "email": "a@example.com"})
    assert first == {"order_id": 1, "email": "a@example.com", "priority": "low", "tags": []}
    first["tags"].append("x")
    second = validate_input(SCHEMA, {"order_id": 2, "email": "b@example.com"})
    assert second["tags"] == []
    given = {"order_id": 1, "email": "a@example.com", "priority": "high"}
    assert validate_input(SCHEMA, given)["priority"] == "high"
    assert "tags" not in given  # the caller's dict is not modified


def test_every_error_is_listed() -> None:
    with pytest.raises(InputInvalid) as info:
        validate_input(SCHEMA, {"order_id": "x", "priority": "mid", "tags": [1], "extra": 1})
    assert info.value.extra["errors"] == [
        {"path": "", "error": "Additional properties are not allowed ('extra' was unexpected)"},
        {"path": "email", "error": "'email' is a required property"},
        {"path": "order_id", "error": "'x' is not of type 'integer'"},
        {"path": "priority", "error": "'mid' is not one of ['low', 'high']"},
        {"path": "tags[0]", "error": "1 is not of type 'string'"},
    ]
    assert info.value.code == "input_invalid"
    assert info.value.detail.startswith("run input is invalid: ")


def test_format_is_checked() -> None:
    with pytest.raises(InputInvalid) as info:
        validate_input(SCHEMA, {"order_id": 1, "email": "not-an-email"})
    assert info.value.extra["errors"] == [
        {"path": "email", "error": "'not-an-email' is not a 'email'"}
    ]


def test_none_input_reports_required() -> None:
    with pytest.raises(InputInvalid) as info:
        validate_input(SCHEMA, None)
    assert [e["path"] for e in info.value.extra["errors"]] == ["email", "order_id"]


def test_check_inputs_schema() -> None:
    check_inputs_schema(SCHEMA)
    check_inputs_schema({})
    with pytest.raises(WorkflowInvalid) as info:
        check_inputs_schema({"type": "object", "properties": {"a": {"type": "nope"}}})
    assert info.value.extra["errors"][0]["path"] == "inputs.properties.a.type"
    assert info.value.detail.startswith("inputs is not a valid JSON Schema: ")
    with pytest.raises(WorkflowInvalid, match="inputs must describe an object"):
        check_inputs_schema({"type": "array"})
    with pytest.raises(WorkflowInvalid, match="inputs must be a JSON Schema object"):
        check_inputs_schema(["not", "a", "schema"])


def test_invalid_schema_is_refused_at_validation() -> None:
    with pytest.raises(WorkflowInvalid):
        validate_input({"type": "object", "required": "a"}, {})
