"""Format connectors: JSON, YAML, CSV and XML parse/format, Markdown and HTML to text."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from typing import Any

import defusedxml.ElementTree as SafeET
import yaml
from defusedxml import DefusedXmlException
from markdown_it import MarkdownIt

from flowplane.connectors.base import NodeContext, connector
from flowplane.connectors.builtin._schemas import obj, out, prop
from flowplane.errors import ConnectorError

MAX_TEXT_CHARS = 10_000_000
MAX_CSV_ROWS = 100_000

TEXT = prop("string", "The text to parse.", maxLength=MAX_TEXT_CHARS)


def _bad(kind: str, exc: Exception) -> ConnectorError:
    return ConnectorError(f"invalid {kind}: {exc}"[:500], retryable=False)


# --- JSON -----------------------------------------------------------------------------------


@connector(
    "data.json_parse",
    name="Parse JSON",
    category="data",
    kind="transform",
    description="Parse a JSON string into a value.",
    input_schema=obj({"text": TEXT}, ["text"]),
    output_schema=out({"value": prop(None, "The parsed value.")}),
    examples=[{"text": '{"id": 1, "tags": ["a"]}'}],
)
async def json_parse(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Parse ``text`` as JSON."""
    try:
        return {"value": json.loads(params["text"])}
    except json.JSONDecodeError as exc:
        raise _bad("JSON", exc) from exc


@connector(
    "data.json_format",
    name="Format JSON",
    category="data",
    kind="transform",
    description="Serialise a value to a JSON string, compact or indented.",
    input_schema=obj(
        {
            "value": prop(None, "The value to serialise."),
            "indent": prop("integer", "Spaces of indentation (0: compact).", minimum=0, maximum=8),
            "sort_keys": prop("boolean", "Sort object keys.", default=False),
        },
        ["value"],
    ),
    output_schema=out({"text": prop("string", "The JSON text.")}),
    examples=[{"value": {"b": 1, "a": [1, 2]}, "indent": 2, "sort_keys": True}],
)
async def json_format(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Serialise ``value`` as JSON."""
    indent = params.get("indent") or None
    separators = None if indent else (",", ":")
    text = json.dumps(
        params["value"],
        indent=indent,
        sort_keys=bool(params.get("sort_keys")),
        ensure_ascii=False,
        separators=separators,
    )
    return {"text": text}


# --- YAML -----------------------------------------------------------------------------------


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
        raise _bad("YAML", exc) from exc


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


# --- CSV ------------------------------------------------------------------------------------

DELIMITER = prop(
    "string", "Field delimiter (one character).", minLength=1, maxLength=1, default=","
)


@connector(
    "data.csv_parse",
    name="Parse CSV",
    category="data",
    kind="transform",
    description="Parse CSV text into rows (objects keyed by the header, or lists).",
    input_schema=obj(
        {
            "text": TEXT,
            "delimiter": DELIMITER,
            "header": prop("boolean", "The first row holds column names.", default=True),
            "skip_empty": prop("boolean", "Skip blank lines.", default=True),
        },
        ["text"],
    ),
    output_schema=out(
        {
            "rows": prop("array", "Rows: objects with header, lists without."),
            "columns": prop("array", "Column names (empty without header)."),
            "count": prop("integer", "Number of rows."),
        }
    ),
    examples=[
        {"text": "id,name\n1,Ada\n2,Linus\n"},
        {"text": "1;2\n3;4", "delimiter": ";", "header": False},
    ],
)
async def csv_parse(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Parse ``text`` as CSV."""
    reader = csv.reader(io.StringIO(params["text"]), delimiter=params.get("delimiter", ","))
    rows: list[list[str]] = []
    try:
        for row in reader:
            if not row and params.get("skip_empty", True):
                continue
            rows.append(row)
            if len(rows) > MAX_CSV_ROWS + 1:
                raise ConnectorError(f"more than {MAX_CSV_ROWS} CSV rows", retryable=False)
    except csv.Error as exc:
        raise _bad("CSV", exc) from exc
    if not params.get("header", True):
        return {"rows": rows, "columns": [], "count": len(rows)}
    if not rows:
        return {"rows": [], "columns": [], "count": 0}
    columns = rows[0]
    records = [
        {name: (row[i] if i < len(row) else None) for i, name in enumerate(columns)}
        for row in rows[1:]
    ]
    return {"rows": records, "columns": columns, "count": len(records)}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


@connector(
    "data.csv_format",
    name="Format CSV",
    category="data",
    kind="transform",
    description="Serialise rows (objects or lists) to CSV text with a header line.",
    input_schema=obj(
        {
            "rows": prop(
                "array",
                "Rows: objects (keys become columns) or lists.",
                items={"type": ["object", "array"]},
            ),
            "columns": prop(
                "array",
                "Column order (default: keys in order of appearance).",
                items={"type": "string"},
            ),
            "delimiter": DELIMITER,
            "header": prop("boolean", "Write a header line (object rows).", default=True),
        },
        ["rows"],
    ),
    output_schema=out(
        {"text": prop("string", "The CSV text."), "count": prop("integer", "Rows written.")}
    ),
    examples=[{"rows": [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Linus"}]}],
)
async def csv_format(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Serialise ``rows`` as CSV."""
    rows: list[Any] = params["rows"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=params.get("delimiter", ","), lineterminator="\n")
    columns: list[str] = list(params.get("columns") or [])
    if not columns:
        for row in rows:
            if isinstance(row, dict):
                columns.extend(key for key in row if key not in columns)
    if columns and params.get("header", True):
        writer.writerow(columns)
    for row in rows:
        if isinstance(row, dict):
            writer.writerow([_cell(row.get(name)) for name in columns])
        else:
            writer.writerow([_cell(value) for value in row])
    return {"text": buffer.getvalue(), "count": len(rows)}


# --- XML ------------------------------------------------------------------------------------


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
        raise _bad("XML", exc) from exc
    return {"value": {root.tag: _element_to_value(root, params.get("attribute_prefix", "@"))}}


def _build_element(tag: str, value: Any, attr_prefix: str) -> ET.Element:
    element = ET.Element(tag)
    _fill_element(element, value, attr_prefix)
    return element


def _fill_element(element: ET.Element, value: Any, attr_prefix: str) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "#text":
                element.text = _cell(item)
            elif attr_prefix and key.startswith(attr_prefix):
                element.set(key[len(attr_prefix) :], _cell(item))
            elif isinstance(item, list):
                for entry in item:
                    element.append(_build_element(key, entry, attr_prefix))
            else:
                element.append(_build_element(key, item, attr_prefix))
    elif value is not None:
        element.text = _cell(value)


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
        raise _bad("XML value", exc) from exc
    if params.get("declaration"):
        text = '<?xml version="1.0" encoding="UTF-8"?>\n' + text
    return {"text": text}


# --- Markdown and HTML ---------------------------------------------------------------------


@connector(
    "data.markdown_to_html",
    name="Markdown to HTML",
    category="data",
    kind="transform",
    description="Render CommonMark Markdown to HTML; raw HTML in the input is escaped.",
    input_schema=obj(
        {
            "markdown": prop("string", "The Markdown text.", maxLength=MAX_TEXT_CHARS),
            "tables": prop("boolean", "Enable GFM tables and strikethrough.", default=True),
        },
        ["markdown"],
    ),
    output_schema=out({"html": prop("string", "The HTML.")}),
    examples=[{"markdown": "# Title\n\nSome **bold** text."}],
)
async def markdown_to_html(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Render Markdown with markdown-it-py, raw HTML disabled."""
    md = MarkdownIt("commonmark", {"html": False, "linkify": False})
    if params.get("tables", True):
        md.enable(["table", "strikethrough"])
    return {"html": md.render(params["markdown"])}


class _TextExtractor(HTMLParser):
    _SKIP = frozenset({"script", "style", "head", "template", "noscript"})
    _BLOCK = frozenset(
        {
            "p",
            "div",
            "br",
            "li",
            "tr",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "section",
            "article",
            "header",
            "footer",
            "table",
            "ul",
            "ol",
            "pre",
            "blockquote",
            "hr",
        }
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.links.append(href)

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skip:
            self._skip -= 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


@connector(
    "data.html_to_text",
    name="HTML to text",
    category="data",
    kind="transform",
    description="Extract readable text and link targets from HTML (scripts and styles dropped).",
    input_schema=obj({"html": prop("string", "The HTML.", maxLength=MAX_TEXT_CHARS)}, ["html"]),
    output_schema=out(
        {
            "text": prop("string", "The text, one block per line."),
            "links": prop("array", "href values of links, in order."),
        }
    ),
    examples=[{"html": "<h1>Hi</h1><p>See <a href='https://example.com'>this</a>.</p>"}],
)
async def html_to_text(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Extract text from ``html``."""
    parser = _TextExtractor()
    parser.feed(params["html"])
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return {"text": "\n".join(line for line in lines if line), "links": parser.links}
