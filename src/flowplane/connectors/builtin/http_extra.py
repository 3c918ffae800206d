"""More HTTP connectors: GraphQL queries, file downloads to run artifacts, webhook responses.

Every outbound request goes through the network policy (:mod:`flowplane.security.ssrf`).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import urllib.parse
from typing import Any

import httpx

from flowplane.connectors.base import NodeContext, connector
from flowplane.connectors.builtin._credentials import credential
from flowplane.connectors.builtin._http_calls import http_call, status_error
from flowplane.connectors.builtin._network import http_client
from flowplane.connectors.builtin._schemas import CREDENTIAL_PROP, obj, out, prop
from flowplane.connectors.builtin._settings import data_dir
from flowplane.errors import ConnectorError
from flowplane.security.redaction import mask_values

MAX_DOWNLOAD_BYTES = 500 * 1024 * 1024
DEFAULT_DOWNLOAD_BYTES = 100 * 1024 * 1024
URL = prop("string", "Absolute http(s) URL.", minLength=1, maxLength=8192)
HEADERS = prop(
    "object",
    "Extra request headers.",
    additionalProperties={"type": ["string", "number", "boolean"]},
)
TIMEOUT = prop(
    "number", "Whole-request time limit in seconds.", exclusiveMinimum=0, maximum=3600, default=30
)
AUTH = {
    "credential": {
        **CREDENTIAL_PROP,
        "description": "Credential sent as 'Authorization: Bearer <value>' (or in auth_header).",
    },
    "auth_header": prop(
        "string",
        "Header that carries the credential value as-is instead.",
        maxLength=128,
        pattern="^[A-Za-z0-9-]+$",
    ),
}


def _bad(message: str) -> ConnectorError:
    return ConnectorError(message, retryable=False)


def _headers(params: dict[str, Any], ctx: NodeContext) -> tuple[dict[str, str], list[str]]:
    headers = {
        str(k): str(v).lower() if isinstance(v, bool) else str(v)
        for k, v in (params.get("headers") or {}).items()
    }
    secrets: list[str] = []
    if params.get("credential"):
        value = credential(ctx, params["credential"])
        secrets.append(value)
        if params.get("auth_header"):
            headers[params["auth_header"]] = value
        else:
            headers["Authorization"] = f"Bearer {value}"
    headers.setdefault("Idempotency-Key", ctx.idempotency_key)
    return headers, secrets


@connector(
    "http.graphql",
    name="GraphQL request",
    category="http",
    description="Send a GraphQL query or mutation with variables and return data and errors.",
    input_schema=obj(
        {
            "url": URL,
            "query": prop("string", "The GraphQL document.", minLength=1, maxLength=100_000),
            "variables": prop("object", "Variables (values stay data, never spliced into query)."),
            "operation_name": prop(
                "string", "Operation to run when the document has several.", maxLength=256
            ),
            "headers": HEADERS,
            **AUTH,
            "timeout": TIMEOUT,
            "fail_on_errors": prop(
                "boolean", "Fail the node when the response has errors.", default=True
            ),
        },
        ["url", "query"],
    ),
    output_schema=out(
        {
            "data": prop(["object", "null"], "The 'data' member."),
            "errors": prop("array", "The 'errors' member (empty when none)."),
            "status_code": prop("integer", "HTTP status."),
        }
    ),
    secrets=["credential"],
    examples=[
        {
            "url": "https://api.example.com/graphql",
            "query": "query($id: ID!) { order(id: $id) { id total } }",
            "variables": {"id": "{{ input.order_id }}"},
            "credential": "SHOP_TOKEN",
        }
    ],
)
async def graphql(params: dict[str, Any], ctx: NodeContext) -> Any:
    """POST the GraphQL request."""
    headers, secrets = _headers(params, ctx)
    headers.setdefault("Accept", "application/graphql-response+json, application/json")
    body: dict[str, Any] = {"query": params["query"], "variables": params.get("variables") or {}}
    if params.get("operation_name"):
        body["operationName"] = params["operation_name"]
    result = await http_call(
        ctx,
        "POST",
        params["url"],
        label="GraphQL endpoint",
        timeout=float(params.get("timeout", 30)),
        secrets=secrets,
        json=body,
        headers=headers,
    )
    payload = result.json if result.is_json and isinstance(result.json, dict) else None
    if payload is None or ("data" not in payload and "errors" not in payload):
        if result.status >= 400:
            raise status_error(result, "GraphQL endpoint", secrets)
        raise _bad(f"GraphQL endpoint did not return a GraphQL response (HTTP {result.status})")
    errors = payload.get("errors") or []
    if result.status >= 500 or result.status in (408, 429):
        raise status_error(result, "GraphQL endpoint", secrets)
    if errors and params.get("fail_on_errors", True):
        messages = "; ".join(
            str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors[:5]
        )
        raise _bad(mask_values(f"GraphQL errors: {messages}"[:1000], secrets))
    return {"data": payload.get("data"), "errors": errors, "status_code": result.status}


_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(name: str, fallback: str = "download") -> str:
    """Return a harmless file name: the last path part, unsafe characters replaced."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = _SAFE_NAME.sub("_", base).strip("._")[:200]
    return cleaned or fallback


def _disposition_name(header: str) -> str | None:
    match = re.search(r"filename\*=(?:UTF-8'')?([^;]+)", header, re.IGNORECASE)
    if match:
        return urllib.parse.unquote(match.group(1).strip('"'))
    match = re.search(r'filename="?([^";]+)"?', header, re.IGNORECASE)
    return match.group(1) if match else None


@connector(
    "http.download",
    name="Download file",
    category="http",
    description="Download a URL into the run's artifact folder; return its path, size and SHA-256.",
    input_schema=obj(
        {
            "url": URL,
            "filename": prop(
                "string", "File name to save as (default: from the response or URL).", maxLength=200
            ),
            "headers": HEADERS,
            **AUTH,
            "max_bytes": prop(
                "integer",
                "Refuse bodies larger than this.",
                minimum=1,
                maximum=MAX_DOWNLOAD_BYTES,
                default=DEFAULT_DOWNLOAD_BYTES,
            ),
            "timeout": {**TIMEOUT, "default": 300},
        },
        ["url"],
    ),
    output_schema=out(
        {
            "path": prop("string", "Absolute path of the saved file."),
            "artifact": prop("string", "Path relative to the data folder."),
            "filename": prop("string", "File name."),
            "size": prop("integer", "Bytes."),
            "sha256": prop("string", "Hex digest."),
            "content_type": prop(["string", "null"], "Content-Type of the response."),
            "status_code": prop("integer", "HTTP status."),
        }
    ),
    secrets=["credential"],
    examples=[
        {"url": "https://example.com/reports/q1.pdf"},
        {
            "url": "https://api.example.com/export",
            "filename": "export.csv",
            "credential": "API_TOKEN",
            "max_bytes": 10485760,
        },
    ],
)
async def download(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Stream ``url`` to ``<data_dir>/artifacts/<run_id>/<filename>``."""
    headers, secrets = _headers(params, ctx)
    limit, timeout = (
        params.get("max_bytes", DEFAULT_DOWNLOAD_BYTES),
        float(params.get("timeout", 300)),
    )
    root = data_dir(ctx)
    folder = root / "artifacts" / safe_filename(ctx.run_id, "run")
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    partial = folder / f".{safe_filename(ctx.node_id)}-{ctx.iteration}-{ctx.attempt}.part"
    digest, size = hashlib.sha256(), 0
    ctx.check_cancelled()
    try:
        async with (
            asyncio.timeout(timeout),
            http_client(ctx, timeout=timeout, follow_redirects=True, max_redirects=10) as client,
            client.stream("GET", params["url"], headers=headers) as response,
        ):
            if response.status_code >= 400:
                retryable = response.status_code >= 500 or response.status_code in (408, 429)
                raise ConnectorError(
                    f"download returned HTTP {response.status_code}",
                    retryable=retryable,
                    status_code=response.status_code,
                )
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise _bad(f"file is larger than {limit} bytes")
            with partial.open("wb") as handle:
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise _bad(f"file is larger than {limit} bytes")
                    digest.update(chunk)
                    handle.write(chunk)
    except ConnectorError:
        partial.unlink(missing_ok=True)
        raise
    except (TimeoutError, httpx.TimeoutException):
        partial.unlink(missing_ok=True)
        raise ConnectorError(f"download timed out after {timeout:g}s", retryable=True) from None
    except httpx.HTTPError as exc:
        partial.unlink(missing_ok=True)
        raise ConnectorError(
            mask_values(f"download failed: {type(exc).__name__}", secrets),
            retryable=not isinstance(exc, httpx.InvalidURL),
        ) from None
    name = (
        params.get("filename")
        or _disposition_name(response.headers.get("content-disposition", ""))
        or urllib.parse.unquote(response.url.path)
    )
    final = folder / safe_filename(name)
    os.replace(partial, final)
    return {
        "path": str(final),
        "artifact": final.relative_to(root).as_posix(),
        "filename": final.name,
        "size": size,
        "sha256": digest.hexdigest(),
        "content_type": response.headers.get("content-type"),
        "status_code": response.status_code,
    }


@connector(
    "http.webhook_response",
    name="Webhook response",
    category="http",
    kind="transform",
    description="Set the HTTP status, headers and body answered to a webhook trigger's caller.",
    input_schema=obj(
        {
            "status": prop("integer", "HTTP status.", minimum=200, maximum=599, default=200),
            "body": prop(None, "Response body: JSON value or text."),
            "headers": prop("object", "Response headers.", additionalProperties={"type": "string"}),
            "content_type": prop(
                "string",
                "Content-Type (default: JSON for non-strings, else text/plain).",
                maxLength=200,
            ),
        },
    ),
    output_schema=out(
        {
            "status_code": prop("integer", "Status."),
            "headers": prop("object", "Headers."),
            "body": prop(None, "Body."),
        }
    ),
    examples=[{"status": 202, "body": {"accepted": True, "run": "{{ run.id }}"}}],
)
async def webhook_response(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Describe the webhook response; the trigger service sends it to the waiting caller."""
    body = params.get("body")
    headers = {str(k): str(v) for k, v in (params.get("headers") or {}).items()}
    if any("\r" in k + v or "\n" in k + v for k, v in headers.items()):
        raise _bad("header names and values must not contain line breaks")
    content_type = params.get("content_type") or (
        "text/plain; charset=utf-8" if isinstance(body, str) else "application/json"
    )
    headers.setdefault("Content-Type", content_type)
    response = {"status_code": params.get("status", 200), "headers": headers, "body": body}
    ctx.extras["webhook_response"] = response
    return response
