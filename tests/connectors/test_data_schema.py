"""data_schema: JSON Schema validation and inference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
from connector_kit import assert_manifests, make_ctx

from flowplane.connectors.builtin import data_schema as m
from flowplane.errors import ConnectorError

SCHEMA = {
    "type": "object",
    "required": ["age", "name"],
    "properties": {
        "age": {"type": "integer"},
        "email": {"type": "string", "format": "email"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
}


@pytest.fixture
def ctx(tmp_path: Path) -> Any:
    return make_ctx(tmp_path)


def test_manifests() -> None:
    assert_manifests(m, minimum=2)


async def test_validate(ctx: Any) -> None:
    ok = await m.schema_validate({"value": {"age": 3, "name": "x"}, "schema": SCHEMA}, ctx)
    assert ok == {"valid": True, "errors": []}
    bad = await m.schema_validate(
        {"value": {"age": "x", "tags": ["a", 1], "email": "nope"}, "schema": SCHEMA}, ctx
    )
    assert not bad["valid"]
    paths = {e["path"] for e in bad["errors"]}
    assert paths == {"/", "/age", "/tags/1", "/email"}
    with pytest.raises(ConnectorError, match="invalid") as err:
        await m.schema_validate({"value": {}, "schema": SCHEMA, "fail": True}, ctx)
    assert err.value.extra["errors"]
    with pytest.raises(ConnectorError, match="invalid schema"):
        await m.schema_validate({"value": 1, "schema": {"type": "nope"}}, ctx)


async def test_infer(ctx: Any) -> None:
    sample = {
        "id": 1,
        "price": 9.5,
        "tags": ["a"],
        "items": [{"n": 1}, {"n": 2, "x": None}],
        "mixed": [1, 2.5],
    }
    schema = (await m.schema_infer({"value": sample}, ctx))["schema"]
    jsonschema.validate(sample, schema)
    assert schema["properties"]["items"]["items"]["required"] == ["n"]
    assert schema["properties"]["mixed"]["items"] == {"type": "number"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"id": "x"}, schema)
