"""What ``nats.*`` and ``mqtt.*`` share: the broker URL (from a credential) and payloads.

Broker URLs come from a credential (they may hold a password) or a param. The host is
checked by the network policy and the connection goes to the checked address.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

from flowplane.connectors.base import NodeContext
from flowplane.connectors.builtin._credentials import credential
from flowplane.connectors.builtin._schemas import CREDENTIAL_PROP, prop
from flowplane.errors import ConnectorError

MAX_PAYLOAD_BYTES = 1024 * 1024
TIMEOUT = prop("number", "Time limit in seconds.", exclusiveMinimum=0, maximum=300, default=10)
MESSAGE = prop(None, "The message: text is sent as-is, other values as JSON.")


def _bad(message: str) -> ConnectorError:
    return ConnectorError(message, retryable=False)


def encode_payload(value: Any) -> bytes:
    """Return a message as bytes: text as-is (UTF-8), other values as JSON.

    Raises:
        ConnectorError: (not retryable) the payload is larger than ``MAX_PAYLOAD_BYTES``.
    """
    data = (value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)).encode()
    if len(data) > MAX_PAYLOAD_BYTES:
        raise _bad(f"message is larger than {MAX_PAYLOAD_BYTES} bytes")
    return data


def broker_url(
    params: dict[str, Any], ctx: NodeContext, schemes: tuple[str, ...], default_port: int
) -> tuple[urllib.parse.SplitResult, int, list[str | None]]:
    """Return the broker URL's parts, its port and the values to redact from errors.

    Raises:
        ConnectorError: (not retryable) no URL given, or not one of ``schemes``.
    """
    if params.get("credential"):
        url = credential(ctx, params["credential"])
    elif params.get("url"):
        url = params["url"]
    else:
        raise _bad("give 'credential' (preferred) or 'url'")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in schemes or not parts.hostname:
        raise _bad(f"the broker URL must look like {schemes[0]}://host:{default_port}")
    try:
        port = parts.port or default_port
    except ValueError as exc:
        raise _bad("the broker URL has an invalid port") from exc
    return parts, port, [url, parts.password, parts.username]


BROKER = {
    "credential": {**CREDENTIAL_PROP, "description": "Credential holding the broker URL."},
    "url": prop("string", "Or the broker URL itself when it holds no password.", maxLength=2048),
    "timeout": TIMEOUT,
}
