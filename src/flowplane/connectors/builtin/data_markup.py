"""``data.markdown_to_html`` and ``data.html_to_text``."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from markdown_it import MarkdownIt

from flowplane.connectors.base import NodeContext, connector
from flowplane.connectors.builtin._format_input import MAX_TEXT_CHARS
from flowplane.connectors.builtin._schemas import obj, out, prop


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
