"""Credential lookup for the built-in connectors."""

from __future__ import annotations

from flowplane.connectors.base import NodeContext
from flowplane.errors import ConnectorError


def credential(ctx: NodeContext, name: str) -> str:
    """Return the value of credential ``name``.

    Raises:
        ConnectorError: (not retryable) the credential is not available to the run.
    """
    value = ctx.credentials.get(name)
    if not value:
        raise ConnectorError(f"credential {name!r} is not available", retryable=False)
    return value
