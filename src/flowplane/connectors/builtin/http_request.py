"""``http.request``: call an HTTP API through the outbound network policy.

Every request (and every redirect) is checked by :mod:`flowplane.security.ssrf`: private,
loopback, link-local and metadata addresses are refused unless ``FLOWPLANE_ALLOW_HOSTS``
allows them. The node's idempotency key is sent as ``Idempotency-Key`` so that an API that
honours it performs a retried side effect once.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import httpx

from flowplane.connectors.base import NodeContext, connector
from flowplane.connectors.builtin._network import http_client
from flowplane.errors import ConnectorError, DurationInvalid
from flowplane.model.durations import parse_duration

MAX_RESPONSE_BYTES = 10 * 1024 * 1024
MAX_REDIRECTS = 10
DEFAULT_TIMEOUT = "30s"
ERROR_BODY_CHARS = 1000
# 4xx statuses that mean "try again later" rather than "your request is wrong".
RETRYABLE_CLIENT_STATUSES = frozenset({408, 425, 429})
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_TEXT_TYPES = ("xml", "javascript", "yaml", "csv", "html", "x-www-form-urlencoded", "graphql")

_SCALAR: dict[str, Any] = {"type": ["string", "number", "boolean"]}
_STATUS_ITEM: dict[str, Any] = {
    "oneOf": [
        {"type": "integer", "minimum": 100, "maximum": 599},
        {"type": "string", "pattern": "^[1-5]([0-9]{2}|xx)$"},
    ]
}

INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["url"],
    "additionalProperties": False,
    "not": {
        "anyOf": [
            {"required": ["json", "body"]},
            {"required": ["json", "form"]},
            {"required": ["body", "form"]},
        ]
    },
    "properties": {
        "url": {
            "type": "string",
            "minLength": 1,
            "maxLength": 8192,
            "description": "Absolute http(s) URL.",
            # Credentials may be substituted here (an API key in the query string).
            "x-secret": True,
        },
        "method": {
            "type": "string",
            "enum": [*METHODS, *(m.lower() for m in METHODS)],
            "default": "GET",
            "description": "HTTP method.",
        },
        "headers": {
            "type": "object",
            "additionalProperties": _SCALAR,
            "description": "Request headers. Idempotency-Key defaults to the node's key.",
            "x-secret": True,
        },
        "query": {
            "type": "object",
            "additionalProperties": {
                "anyOf": [_SCALAR, {"type": "array", "items": _SCALAR}, {"type": "null"}]
            },
            "description": "Query parameters, added to those already in the URL.",
            "x-secret": True,
        },
        "json": {"description": "A JSON body (sets Content-Type: application/json)."},
        "body": {"type": "string", "description": "A raw text body."},
        "form": {
            "type": "object",
            "additionalProperties": {"anyOf": [_SCALAR, {"type": "array", "items": _SCALAR}]},
            "description": "A form body (application/x-www-form-urlencoded).",
        },
        "timeout": {
            "oneOf": [
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h|d)?\s*$"},
                {"type": "number", "exclusiveMinimum": 0},
            ],
            "default": DEFAULT_TIMEOUT,
            "description": "Whole-request time limit: a duration (30s, 2m) or seconds.",
        },
        "response": {
            "type": "string",
            "enum": ["auto", "json", "text", "bytes"],
            "default": "auto",
            "description": (
                "How to decode the body: auto (JSON if the content type says so, else text, "
                "else base64), json, text, or bytes (base64)."
            ),
        },
        "follow_redirects": {
            "type": "boolean",
            "default": True,
            "description": "Follow redirects (each target is checked by the network policy).",
        },
        "expect_status": {
            "anyOf": [_STATUS_ITEM, {"type": "array", "items": _STATUS_ITEM, "minItems": 1}],
            "description": (
                "Statuses that count as success, e.g. [200, 404] or '2xx'. Default: "
                "anything below 400."
            ),
        },
    },
}

OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "status_code": {"type": "integer", "description": "HTTP status."},
        "headers": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "Response headers (lower-case names; repeated ones joined by ', ').",
        },
        "body": {"description": "Decoded body: JSON value, text, or base64 string."},
        "url": {"type": "string", "description": "Final URL, after redirects."},
        "elapsed_ms": {"type": "integer", "description": "Time taken, in milliseconds."},
    },
}


@connector(
    "http.request",
    name="HTTP request",
    category="http",
    description="Send an HTTP request and return status, headers and the decoded body.",
    kind="action",
    input_schema=INPUT_SCHEMA,
    output_schema=OUTPUT_SCHEMA,
    examples=[
        {"url": "https://api.example.com/orders/{{ input.order_id }}"},
        {
            "url": "https://api.example.com/orders",
            "method": "POST",
            "headers": {"Authorization": "Bearer {{ secrets.SHOP_TOKEN }}"},
            "json": {"sku": "A-1", "quantity": 2},
            "timeout": "10s",
            "expect_status": [200, 201],
        },
        {
            "url": "https://example.com/search",
            "query": {"q": "flowplane", "page": 2},
            "response": "text",
        },
    ],
)
async def request(params: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    """Send the request described by ``params`` (see the manifest's input schema)."""
    url = params.get("url")
    if not isinstance(url, str) or not url:
        raise ConnectorError("url must be a non-empty string", retryable=False)
    method = str(params.get("method") or "GET").upper()
    if method not in METHODS:
        raise ConnectorError(f"unsupported method {method!r}", retryable=False)
    mode = params.get("response") or "auto"
    if mode not in ("auto", "json", "text", "bytes"):
        raise ConnectorError(f"unknown response mode {mode!r}", retryable=False)
    timeout = _timeout_seconds(params.get("timeout", DEFAULT_TIMEOUT))
    expected = _expected_statuses(params.get("expect_status"))
    query = _query(params.get("query"))
    if query:
        # Merge with (not replace) the URL's own query string.
        try:
            url = str(httpx.URL(url).copy_merge_params(query))
        except httpx.InvalidURL as exc:
            raise ConnectorError(f"invalid URL: {exc}", retryable=False) from exc
    send_kwargs = {
        "headers": _headers(params.get("headers"), ctx.idempotency_key),
        **_body(params),
    }
    ctx.check_cancelled()
    started = time.monotonic()
    try:
        async with (
            asyncio.timeout(timeout),
            http_client(
                ctx,
                timeout=httpx.Timeout(timeout),
                follow_redirects=bool(params.get("follow_redirects", True)),
                max_redirects=MAX_REDIRECTS,
            ) as client,
            client.stream(method, url, **send_kwargs) as response,
        ):
            content = await _read_capped(response)
    except ConnectorError:
        raise
    except (TimeoutError, httpx.TimeoutException) as exc:
        raise ConnectorError(
            f"{method} {_origin(url)} timed out after {timeout:g}s", retryable=True
        ) from exc
    except httpx.TooManyRedirects as exc:
        raise ConnectorError(
            f"{method} {_origin(url)}: more than {MAX_REDIRECTS} redirects", retryable=False
        ) from exc
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise ConnectorError(f"invalid URL: {exc}", retryable=False) from exc
    except httpx.TransportError as exc:
        raise ConnectorError(
            f"{method} {_origin(url)} failed: {type(exc).__name__}: {exc}", retryable=True
        ) from exc
    except httpx.HTTPError as exc:
        raise ConnectorError(
            f"{method} {_origin(url)} failed: {type(exc).__name__}: {exc}", retryable=False
        ) from exc
    elapsed_ms = round((time.monotonic() - started) * 1000)

    status = response.status_code
    if not _status_ok(status, expected):
        raise ConnectorError(
            f"{method} {_origin(url)} returned HTTP {status}",
            retryable=status >= 500 or status in RETRYABLE_CLIENT_STATUSES,
            status_code=status,
            body=_decode_text(content, response)[:ERROR_BODY_CHARS],
            **_retry_after(response),
        )
    return {
        "status_code": status,
        "headers": {key: ", ".join(response.headers.get_list(key)) for key in response.headers},
        "body": _decode_body(content, response, mode),
        "url": str(response.url),
        "elapsed_ms": elapsed_ms,
    }


# --- request building -------------------------------------------------------------------------


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _headers(raw: Any, idempotency_key: str) -> dict[str, str]:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConnectorError("headers must be an object", retryable=False)
    headers = {str(k): _scalar_text(v) for k, v in raw.items() if v is not None}
    if not any(name.lower() == "idempotency-key" for name in headers):
        headers["Idempotency-Key"] = idempotency_key
    return headers


def _query(raw: Any) -> dict[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ConnectorError("query must be an object", retryable=False)
    query: dict[str, Any] = {}
    for key, value in raw.items():
        if value is None:
            continue
        if isinstance(value, list):
            query[str(key)] = [_scalar_text(item) for item in value if item is not None]
        else:
            query[str(key)] = _scalar_text(value)
    return query


def _body(params: dict[str, Any]) -> dict[str, Any]:
    given = [key for key in ("json", "body", "form") if params.get(key) is not None]
    if len(given) > 1:
        raise ConnectorError(
            f"give at most one of json, body or form (got {', '.join(given)})", retryable=False
        )
    if not given:
        return {}
    key = given[0]
    value = params[key]
    if key == "json":
        return {"json": value}
    if key == "body":
        if not isinstance(value, str):
            raise ConnectorError("body must be a string (use json for objects)", retryable=False)
        return {"content": value.encode("utf-8")}
    if not isinstance(value, dict):
        raise ConnectorError("form must be an object", retryable=False)
    return {"data": {str(k): v for k, v in value.items() if v is not None}}


def _timeout_seconds(raw: Any) -> float:
    try:
        seconds = parse_duration(raw)
    except DurationInvalid as exc:
        raise ConnectorError(f"invalid timeout: {exc.detail}", retryable=False) from exc
    if seconds <= 0:
        raise ConnectorError("timeout must be positive", retryable=False)
    return seconds


def _expected_statuses(raw: Any) -> list[tuple[int, int]] | None:
    """Turn ``200``, ``"2xx"`` or ``[200, "3xx"]`` into inclusive ranges."""
    if raw is None:
        return None
    items = raw if isinstance(raw, list) else [raw]
    ranges: list[tuple[int, int]] = []
    for item in items:
        text = str(item).strip().lower()
        if isinstance(item, bool):
            text = ""
        if len(text) == 3 and text[0] in "12345" and text[1:] == "xx":
            low = int(text[0]) * 100
            ranges.append((low, low + 99))
        elif text.isdigit() and 100 <= int(text) <= 599:
            ranges.append((int(text), int(text)))
        else:
            raise ConnectorError(
                f"invalid expect_status entry {item!r} (use e.g. 200 or '2xx')", retryable=False
            )
    return ranges


def _status_ok(status: int, expected: list[tuple[int, int]] | None) -> bool:
    if expected is None:
        return status < 400
    return any(low <= status <= high for low, high in expected)


def _origin(url: str) -> str:
    """Scheme, host and port only: paths and queries may carry secrets."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "<invalid URL>"
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}"


# --- response decoding ------------------------------------------------------------------------


async def _read_capped(response: httpx.Response) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_RESPONSE_BYTES:
        raise _too_large(response)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise _too_large(response)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(response: httpx.Response) -> ConnectorError:
    return ConnectorError(
        f"response body is larger than {MAX_RESPONSE_BYTES // (1024 * 1024)} MiB",
        retryable=False,
        status_code=response.status_code,
    )


def _content_type(response: httpx.Response) -> str:
    value: str = response.headers.get("content-type", "")
    return value.split(";", 1)[0].strip().lower()


def _decode_text(content: bytes, response: httpx.Response) -> str:
    encoding = response.charset_encoding or "utf-8"
    try:
        return content.decode(encoding, errors="replace")
    except LookupError:
        return content.decode("utf-8", errors="replace")


def _decode_body(content: bytes, response: httpx.Response, mode: str) -> Any:
    if mode == "bytes":
        return base64.b64encode(content).decode("ascii")
    if mode == "text":
        return _decode_text(content, response)
    ctype = _content_type(response)
    is_json = ctype == "application/json" or ctype.endswith("+json")
    if mode == "json" or is_json:
        if not content.strip():
            return None
        try:
            return json.loads(content)
        except ValueError as exc:
            if mode == "json":
                raise ConnectorError(
                    f"response is not JSON (content type {ctype or 'unknown'})",
                    retryable=False,
                    status_code=response.status_code,
                ) from exc
            return _decode_text(content, response)
    if ctype.startswith("text/") or any(part in ctype for part in _TEXT_TYPES):
        return _decode_text(content, response)
    try:
        return content.decode(response.charset_encoding or "utf-8")
    except (UnicodeDecodeError, LookupError):
        return base64.b64encode(content).decode("ascii")


def _retry_after(response: httpx.Response) -> dict[str, Any]:
    value = response.headers.get("retry-after")
    return {"retry_after": value} if value else {}
