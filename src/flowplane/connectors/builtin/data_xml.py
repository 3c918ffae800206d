"""``data.xml_parse`` and ``data.xml_format`` (defusedxml: no entities, no external references)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from flowplane.connectors.base import NodeContext, connector
from flowplane.connectors.builtin._format_input import TEXT, cell_text, invalid
from flowplane.connectors.builtin._schemas import obj, out, prop


def _element_to_value(element: ET.Element, attr_prefix: str) -> Any:
    children = list(element)
    text = (element.text or "").strip()
    if not children and not element.attrib:
        return text
    value: dict[str, Any] = {f"{attr_prefix}{k}": v for k, v in element.attrib.items()}
    for child in children:
        item = _element_to_value(child, attr_prefix)
        if child.tag in value:
            existing = value[child.tag]
            if isinstance(existing, list):
                existing.append(item)
            else:
                value[child.tag] = [existing, item]
        else:
            value[child.tag] = item
    if text:
        value["#text"] = text
    return value


@connector(
    "data.xml_parse",
    name="Parse XML",
    category="data",
    kind="transform",
    description="Parse XML (entity and DTD attacks refused) into nested objects.",
    input_schema=obj(
        {
            "text": TEXT,
            "attribute_prefix": prop(
                "string", "Prefix of attribute keys.", default="@", maxLength=8
            ),
        },
        ["text"],
    ),
    output_schema=out(
        {
            "value": prop(
                "object",
                "{rootTag: content}; repeated tags become "
                "lists, text beside children is under '#text'.",
            )
        }
    ),
    examples=[{"text": '<order id="7"><item>a</item><item>b</item></order>'}],
)
async def xml_parse(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Parse ``text`` as XML with defusedxml."""
    try:
        root = SafeET.fromstring(params["text"], forbid_dtd=True)
    except (ET.ParseError, DefusedXmlException) as exc:
        raise invalid("XML", exc) from exc
    return {"value": {root.tag: _element_to_value(root, params.get("attribute_prefix", "@"))}}


def _build_element(tag: str, value: Any, attr_prefix: str) -> ET.Element:
    element = ET.Element(tag)
    _fill_element(element, value, attr_prefix)
    return element


def _fill_element(element: ET.Element, value: Any, attr_prefix: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "#text":
                element.text = cell_text(item)
            elif attr_prefix and key.startswith(attr_prefix):
                element.set(key[len(attr_prefix) :], cell_text(item))
            elif isinstance(item, list):
                for entry in item:
                    element.append(_build_element(key, entry, attr_prefix))
            else:
                element.append(_build_element(key, item, attr_prefix))
    elif value is not None:
        element.text = cell_text(value)


@connector(
    "data.xml_format",
    name="Format XML",
    category="data",
    kind="transform",
    description="Serialise nested objects ({rootTag: content}, '@attr', '#text') to XML text.",
    input_schema=obj(
        {
            "value": prop(
                "object",
                "A single-key object {rootTag: content}.",
                minProperties=1,
                maxProperties=1,
            ),
            "attribute_prefix": prop(
                "string", "Prefix of attribute keys.", default="@", maxLength=8
            ),
            "declaration": prop("boolean", "Start with an XML declaration.", default=False),
            "indent": prop("boolean", "Pretty-print with two-space indentation.", default=False),
        },
        ["value"],
    ),
    output_schema=out({"text": prop("string", "The XML text.")}),
    examples=[{"value": {"order": {"@id": "7", "item": ["a", "b"]}}}],
)
async def xml_format(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Serialise ``value`` as XML."""
    ((tag, content),) = params["value"].items()
    try:
        root = _build_element(tag, content, params.get("attribute_prefix", "@"))
        if params.get("indent"):
            ET.indent(root)
        text = ET.tostring(root, encoding="unicode")
    except (ValueError, TypeError) as exc:
        raise invalid("XML value", exc) from exc
    if params.get("declaration"):
        text = '<?xml version="1.0" encoding="UTF-8"?>\n' + text
    return {"text": text}
