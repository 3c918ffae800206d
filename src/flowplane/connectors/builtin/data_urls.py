"""``data.url_parse`` and ``data.url_build``: URLs taken apart and put together."""

from __future__ import annotations

import urllib.parse
from typing import Any

from flowplane.connectors.base import NodeContext, connector
from flowplane.connectors.builtin._schemas import obj, out, prop
from flowplane.errors import ConnectorError


@connector(
    "data.url_parse",
    name="Parse URL",
    category="data",
    kind="transform",
    description="Split a URL into scheme, host, port, path, query parameters and fragment.",
    input_schema=obj({"url": prop("string", "The URL.", maxLength=65_536)}, ["url"]),
    output_schema=out(
        {
            "scheme": prop("string", "Scheme."),
            "host": prop(["string", "null"], "Host name."),
            "port": prop(["integer", "null"], "Port."),
            "path": prop("string", "Path."),
            "query": prop("object", "Query parameters (lists when repeated)."),
            "fragment": prop("string", "Fragment."),
            "username": prop(["string", "null"], "User name (the password is never returned)."),
        }
    ),
    examples=[{"url": "https://example.com:8443/a/b?x=1&y=2&y=3#top"}],
)
async def url_parse(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Parse ``url``."""
    try:
        parts = urllib.parse.urlsplit(params["url"])
        port = parts.port
    except ValueError as exc:
        raise ConnectorError(f"invalid URL: {exc}", retryable=False) from exc
    query: dict[str, Any] = {}
    for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
        if key in query:
            existing = query[key]
            query[key] = [*existing, value] if isinstance(existing, list) else [existing, value]
        else:
            query[key] = value
    return {
        "scheme": parts.scheme,
        "host": parts.hostname,
        "port": port,
        "path": parts.path,
        "query": query,
        "fragment": parts.fragment,
        "username": parts.username,
    }


@connector(
    "data.url_build",
    name="Build URL",
    category="data",
    kind="transform",
    description="Build a URL from a base and query parameters, percent-encoding every value.",
    input_schema=obj(
        {
            "base": prop("string", "Base URL (its existing query is kept).", maxLength=65_536),
            "path": prop(
                "array",
                "Path segments appended (each percent-encoded).",
                items={"type": ["string", "number"]},
            ),
            "query": prop("object", "Query parameters; list values repeat the key."),
        },
        ["base"],
    ),
    output_schema=out({"url": prop("string", "The URL.")}),
    examples=[
        {
            "base": "https://api.example.com/v1",
            "path": ["users", "a b"],
            "query": {"q": "x&y", "tag": ["a", "b"]},
        }
    ],
)
async def url_build(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Build a URL."""
    parts = urllib.parse.urlsplit(params["base"])
    path = parts.path
    for segment in params.get("path") or []:
        path = path.rstrip("/") + "/" + urllib.parse.quote(str(segment), safe="")
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    for key, value in (params.get("query") or {}).items():
        for item in value if isinstance(value, list) else [value]:
            if item is not None:
                pairs.append((key, str(item).lower() if isinstance(item, bool) else str(item)))
    query = urllib.parse.urlencode(pairs)
    return {"url": urllib.parse.urlunsplit(parts._replace(path=path, query=query))}
