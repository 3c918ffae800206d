"""``data.transform`` (JMESPath) and ``data.template`` (Jinja2): data reshaped by an expression."""

from __future__ import annotations

import json
from typing import Any

import jmespath
import jmespath.exceptions

from flowplane.connectors.base import NodeContext, connector
from flowplane.errors import ConnectorError, FlowplaneError


@connector(
    "data.transform",
    name="Transform (JMESPath)",
    category="data",
    description="Reshape JSON data with a JMESPath expression; the result is the output.",
    kind="transform",
    input_schema={
        "type": "object",
        "required": ["data", "expression"],
        "additionalProperties": False,
        "properties": {
            "data": {"description": "The JSON value to query."},
            "expression": {
                "type": "string",
                "minLength": 1,
                "maxLength": 10000,
                "description": "A JMESPath expression, e.g. items[?price > `10`].name",
            },
        },
    },
    output_schema={"description": "The expression's result (any JSON value, null if no match)."},
    examples=[
        {
            "data": "{{ nodes.fetch.output.body }}",
            "expression": "orders[?status == 'open'].id",
        },
        {"data": {"a": {"b": [1, 2, 3]}}, "expression": "length(a.b)"},
    ],
)
async def transform(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Evaluate ``expression`` against ``data``."""
    expression = params.get("expression")
    if not isinstance(expression, str) or not expression.strip():
        raise ConnectorError("expression must be a non-empty string", retryable=False)
    try:
        compiled = jmespath.compile(expression)
        return compiled.search(params.get("data"))
    except jmespath.exceptions.JMESPathError as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConnectorError(
            f"invalid JMESPath expression: {message}", retryable=False, expression=expression
        ) from exc


@connector(
    "data.template",
    name="Render template",
    category="data",
    description=(
        "Render a Jinja2 template (sandboxed) with the run context plus `vars`; "
        "output {text, value}."
    ),
    kind="transform",
    input_schema={
        "type": "object",
        "required": ["template"],
        "additionalProperties": False,
        "properties": {
            "template": {
                "type": ["string", "object", "array"],
                "x-raw": True,
                "description": (
                    "The template, rendered by this node (not before): a string, or an "
                    "object/array whose strings are templates. Context: input, nodes, run, "
                    "workflow, secrets and vars."
                ),
            },
            "vars": {
                "type": "object",
                "description": "Extra values available to the template as `vars`.",
            },
        },
    },
    output_schema={
        "type": "object",
        "properties": {
            "text": {
                "type": "string",
                "description": "The rendered result as text (JSON when it is not a string).",
            },
            "value": {
                "description": "The rendered result with its native type (a single "
                "{{ expr }} keeps its type)."
            },
        },
    },
    examples=[
        {
            "template": "Hello {{ vars.name }}, order {{ input.order_id }} is ready.",
            "vars": {"name": "Ada"},
        },
        {"template": {"subject": "Order {{ input.order_id }}", "total": "{{ vars.total }}"}},
    ],
)
async def template(params: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    """Render ``template`` with ``{**template_context, "vars": vars}``."""
    # Imported here: model.templates needs jinja2, which only this connector requires.
    from flowplane.model.templates import render_value

    variables = params.get("vars") or {}
    if not isinstance(variables, dict):
        raise ConnectorError("vars must be an object", retryable=False)
    context = {**ctx.extras.get("template_context", {}), "vars": variables}
    try:
        value = render_value(params.get("template", ""), context)
    except ConnectorError:
        raise
    except FlowplaneError as exc:
        raise ConnectorError(
            f"template failed: {exc.detail}", retryable=False, cause=exc.code
        ) from exc
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return {"text": text, "value": value}
