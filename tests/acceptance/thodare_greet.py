"""The ``greet`` connector the thodare seed's curl quickstart uses, as a plug-in.

The seed boots its API after ``wfkit.register(/* your connectors here */)``; its quickstart
then adds a block of type ``greet`` with ``{"name": "Ada"}``. This module is that user
connector for Flowplane, loaded with ``flowplane serve --plugin thodare_greet``.
"""

from __future__ import annotations

from typing import Any

from flowplane.connectors.base import NodeContext, connector


@connector(
    "greet",
    name="Greet",
    category="demo",
    description="Say hello to someone by name.",
    input_schema={
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string", "description": "Who to greet."}},
        "additionalProperties": False,
    },
    output_schema={
        "type": "object",
        "properties": {"greeting": {"type": "string"}},
    },
)
async def greet(params: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    """Return ``{"greeting": "Hello, <name>!"}``."""
    return {"greeting": f"Hello, {params['name']}!"}
