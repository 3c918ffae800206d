"""``http.download``: a file downloaded into the run's artifacts, through the network policy."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import urllib.parse
from typing import Any

import httpx

from flowplane.connectors.base import NodeContext, connector
from flowplane.connectors.builtin._http_params import AUTH, HEADERS, TIMEOUT, URL, request_headers
from flowplane.connectors.builtin._network import http_client
from flowplane.connectors.builtin._schemas import obj, out, prop
from flowplane.connectors.builtin._settings import data_dir
from flowplane.errors import ConnectorError
from flowplane.security.redaction import mask_values

MAX_DOWNLOAD_BYTES = 500 * 1024 * 1024
DEFAULT_DOWNLOAD_BYTES = 100 * 1024 * 1024


def _bad(message: str) -> ConnectorError:
    return ConnectorError(message, retryable=False)


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
    headers, secrets = request_headers(params, ctx)
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
