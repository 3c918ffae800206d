"""The outbound network policy, as the built-in connectors reach it (HTTP and other protocols)."""

from __future__ import annotations

from typing import Any

import httpx

from flowplane.connectors.base import NodeContext
from flowplane.security.ssrf import policy_client, policy_from_settings


def http_client(
    ctx: NodeContext, timeout: float | httpx.Timeout = 30.0, **kwargs: Any
) -> httpx.AsyncClient:
    """Return an HTTP client that enforces the outbound network policy of ``ctx.settings``.

    With ``FLOWPLANE_OPENTELEMETRY`` on, each request is a client span of the node attempt
    and carries its ``traceparent`` header (``opentelemetry-instrumentation-httpx``).
    """
    client = policy_client(policy_from_settings(ctx.settings), timeout=timeout, **kwargs)
    if getattr(ctx.settings, "opentelemetry", False):
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        HTTPXClientInstrumentor.instrument_client(client)
    return client


async def check_host(ctx: NodeContext, host: str, port: int) -> list[str]:
    """Check a non-HTTP destination against the network policy; return the allowed addresses.

    Connect to one of the returned addresses (not the name) so DNS cannot change in between.

    Raises:
        NetworkPolicyViolation: the address is not allowed.
        ConnectorError: the host cannot be resolved (retryable).
    """
    shown = f"[{host}]" if ":" in host else host
    policy = policy_from_settings(ctx.settings)
    return await policy.check_url(f"http://{shown}:{port}/", timeout=10.0)
