"""JSON Schema builders for the built-in connectors' manifests."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def obj(
    properties: dict[str, Any], required: Iterable[str] = (), *, description: str = ""
) -> dict[str, Any]:
    """Return a closed object schema (``additionalProperties: false``).

    Args:
        properties: the property schemas.
        required: names of the required properties.
        description: an optional description of the object.
    """
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }
    if description:
        schema["description"] = description
    return schema


def out(properties: dict[str, Any]) -> dict[str, Any]:
    """Return an output schema: an object with the given properties."""
    return {"type": "object", "properties": properties}


def prop(type_: str | list[str] | None, description: str, **extra: Any) -> dict[str, Any]:
    """Return a property schema of ``type_`` (None for any JSON value) with a description."""
    schema: dict[str, Any] = {"description": description}
    if type_ is not None:
        schema["type"] = type_
    schema.update(extra)
    return schema


CREDENTIAL_PROP = prop(
    "string", "Name of the credential holding the secret value.", minLength=1, maxLength=128
)
