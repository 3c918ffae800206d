"""``data.yaml_parse`` and ``data.yaml_format`` (safe loading, no anchors or aliases)."""

from __future__ import annotations

from typing import Any

import yaml

from flowplane.connectors.base import NodeContext, connector
from flowplane.connectors.builtin._format_input import TEXT, invalid
from flowplane.connectors.builtin._schemas import obj, out, prop


class _NoAliasLoader(yaml.SafeLoader):
    """A safe loader that refuses anchors and aliases (no billion-laughs expansion)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases are not allowed", event.start_mark
            )
        return super().compose_node(parent, index)


@connector(
    "data.yaml_parse",
    name="Parse YAML",
    category="data",
    kind="transform",
    description="Parse a YAML document (safe loader, no aliases) into a value.",
    input_schema=obj(
        {
            "text": TEXT,
            "all_documents": prop(
                "boolean",
                "Parse every document of a multi-document stream into a list.",
                default=False,
            ),
        },
        ["text"],
    ),
    output_schema=out({"value": prop(None, "The parsed value (a list with all_documents).")}),
    examples=[{"text": "name: demo\nitems: [1, 2]\n"}],
)
async def yaml_parse(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Parse ``text`` as YAML with a safe, alias-free loader."""
    try:
        if params.get("all_documents"):
            return {"value": list(yaml.load_all(params["text"], Loader=_NoAliasLoader))}
        return {"value": yaml.load(params["text"], Loader=_NoAliasLoader)}
    except yaml.YAMLError as exc:
        raise invalid("YAML", exc) from exc


@connector(
    "data.yaml_format",
    name="Format YAML",
    category="data",
    kind="transform",
    description="Serialise a value to a YAML string.",
    input_schema=obj(
        {
            "value": prop(None, "The value to serialise."),
            "sort_keys": prop("boolean", "Sort mapping keys.", default=False),
        },
        ["value"],
    ),
    output_schema=out({"text": prop("string", "The YAML text.")}),
    examples=[{"value": {"name": "demo", "items": [1, 2]}}],
)
async def yaml_format(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Serialise ``value`` as block-style YAML."""
    text = yaml.safe_dump(
        params["value"],
        sort_keys=bool(params.get("sort_keys")),
        allow_unicode=True,
        default_flow_style=False,
    )
    return {"text": text}
