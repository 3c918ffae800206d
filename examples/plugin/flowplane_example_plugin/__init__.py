"""An example Flowplane plugin: one connector, registered through an entry point."""

from __future__ import annotations

from typing import Any

from flowplane.connectors.base import NodeContext, connector


@connector(
    "example.greet",
    name="Greet",
    category="example",
    description="Greet someone by name, in the language asked for.",
    input_schema={
        "type": "object",
        "required": ["name"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "minLength": 1, "description": "Who to greet."},
            "language": {
                "type": "string",
                "enum": ["en", "fr", "de"],
                "default": "en",
                "description": "Greeting language.",
            },
        },
    },
    output_schema={
        "type": "object",
        "properties": {"greeting": {"type": "string"}, "key": {"type": "string"}},
    },
    examples=[{"name": "Ada", "language": "fr"}],
)
async def greet(params: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    """Return a greeting; logs it and echoes the idempotency key."""
    words = {"en": "Hello", "fr": "Bonjour", "de": "Hallo"}
    greeting = f"{words[params.get('language', 'en')]}, {params['name']}!"
    ctx.logger.info(greeting)
    return {"greeting": greeting, "key": ctx.idempotency_key}
