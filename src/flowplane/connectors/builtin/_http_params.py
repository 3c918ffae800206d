"""Params shared by ``http.graphql`` and ``http.download``: URL, headers, timeout, credential."""

from __future__ import annotations

from typing import Any

from flowplane.connectors.base import NodeContext
from flowplane.connectors.builtin._credentials import credential
from flowplane.connectors.builtin._schemas import CREDENTIAL_PROP, prop

URL = prop("string", "Absolute http(s) URL.", minLength=1, maxLength=8192)
HEADERS = prop(
    "object",
    "Extra request headers.",
    additionalProperties={"type": ["string", "number", "boolean"]},
    **{"x-secret": True},  # credentials may be substituted here (engine/secrets.py)
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


def request_headers(params: dict[str, Any], ctx: NodeContext) -> tuple[dict[str, str], list[str]]:
    """Return the request headers (extra headers, credential, idempotency key) and the secrets.

    The secrets are the credential values sent, for redaction from error text.
    """
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
