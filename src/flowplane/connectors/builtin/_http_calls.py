"""One bounded HTTP call through the network policy, and its errors (for API connectors)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from flowplane.connectors.base import NodeContext
from flowplane.connectors.builtin._network import http_client
from flowplane.errors import ConnectorError
from flowplane.security.redaction import mask_values

MAX_RESPONSE_BYTES = 10 * 1024 * 1024


@dataclass
class HttpResult:
    """A bounded HTTP response: status, headers, raw body and its JSON (when it parses)."""

    status: int
    headers: dict[str, str]
    content: bytes
    json: Any = None
    is_json: bool = False

    @property
    def text(self) -> str:
        """The body as text (UTF-8, invalid bytes replaced)."""
        return self.content.decode("utf-8", errors="replace")


async def http_call(
    ctx: NodeContext,
    method: str,
    url: str,
    *,
    label: str,
    timeout: float = 30.0,
    max_bytes: int = MAX_RESPONSE_BYTES,
    secrets: Iterable[str | None] = (),
    **request: Any,
) -> HttpResult:
    """Send one request through the network policy and read a bounded body.

    Errors name ``label`` (never the URL, which may carry a token) and are redacted of
    ``secrets``. Transport failures and timeouts are retryable; policy refusals are not.

    Args:
        ctx: the node context (settings give the network policy).
        method: the HTTP method.
        url: the absolute URL.
        label: how the destination is named in errors ("Slack webhook", "GraphQL endpoint").
        timeout: whole-request limit in seconds.
        max_bytes: largest body read.
        secrets: values to redact from error text.
        **request: ``httpx`` request options (``json``, ``content``, ``headers``, ``params``).
    """
    ctx.check_cancelled()
    try:
        async with (
            asyncio.timeout(timeout),
            http_client(ctx, timeout=timeout, follow_redirects=False) as client,
            client.stream(method, url, **request) as response,
        ):
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise ConnectorError(
                        f"{label} response is larger than {max_bytes} bytes", retryable=False
                    )
                chunks.append(chunk)
    except ConnectorError as exc:
        exc.detail = mask_values(exc.detail, [*secrets, url])
        exc.args = (exc.detail,)
        raise
    except (TimeoutError, httpx.TimeoutException):
        raise ConnectorError(f"{label} timed out after {timeout:g}s", retryable=True) from None
    except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError):
        raise ConnectorError(f"{label}: invalid URL", retryable=False) from None
    except httpx.HTTPError as exc:
        raise ConnectorError(
            f"{label} request failed: {type(exc).__name__}", retryable=True
        ) from None
    content = b"".join(chunks)
    result = HttpResult(
        status=response.status_code,
        headers={k.lower(): v for k, v in response.headers.items()},
        content=content,
    )
    if content.strip():
        try:
            result.json = json.loads(content)
            result.is_json = True
        except ValueError:
            pass
    return result


def status_error(
    result: HttpResult, label: str, secrets: Iterable[str | None] = ()
) -> ConnectorError:
    """Return the error for an unsuccessful HTTP status (retryable on 408/425/429/5xx)."""
    retryable = result.status >= 500 or result.status in (408, 425, 429)
    body = mask_values(result.text[:500], secrets)
    extra: dict[str, Any] = {"status_code": result.status, "body": body}
    if "retry-after" in result.headers:
        extra["retry_after"] = result.headers["retry-after"]
    return ConnectorError(f"{label} returned HTTP {result.status}", retryable=retryable, **extra)
