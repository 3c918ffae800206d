"""``nats.*`` connectors: publish and request-reply on a NATS server."""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from typing import Any

import nats
from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError, NoServersError
from nats.errors import TimeoutError as NatsTimeoutError

from flowplane.connectors.base import NodeContext, connector
from flowplane.connectors.builtin._brokers import BROKER, MESSAGE, broker_url, encode_payload
from flowplane.connectors.builtin._network import check_host
from flowplane.connectors.builtin._schemas import obj, out, prop
from flowplane.errors import ConnectorError
from flowplane.security.redaction import mask_values

CATEGORY = "messaging"


async def _nats(params: dict[str, Any], ctx: NodeContext) -> tuple[NatsClient, list[str | None]]:
    parts, port, secrets = broker_url(params, ctx, ("nats", "tls"), 4222)
    addresses = await check_host(ctx, parts.hostname or "", port)
    host = f"[{addresses[0]}]" if ":" in addresses[0] else addresses[0]
    server = (
        f"{parts.scheme}://{host}:{port}"
        if parts.scheme == "nats"
        else (f"tls://{parts.hostname}:{port}")
    )
    options: dict[str, Any] = {}
    if parts.username and parts.password:
        options = {
            "user": urllib.parse.unquote(parts.username),
            "password": urllib.parse.unquote(parts.password),
        }
    elif parts.username:
        options = {"token": urllib.parse.unquote(parts.username)}

    async def _quiet(exc: Exception) -> None:
        return None

    timeout = float(params.get("timeout", 10))
    try:
        async with asyncio.timeout(timeout + 1):
            client = await nats.connect(
                servers=[server],
                connect_timeout=timeout,
                allow_reconnect=False,
                # 0 would mean "retry forever" for the initial connection.
                max_reconnect_attempts=1,
                reconnect_time_wait=0.1,
                error_cb=_quiet,
                **options,
            )
        return client, secrets
    except (NoServersError, OSError, TimeoutError, NatsError) as exc:
        raise ConnectorError(
            mask_values(f"NATS unreachable: {type(exc).__name__}", secrets), retryable=True
        ) from None


SUBJECT = prop(
    "string",
    "NATS subject, e.g. 'orders.created'.",
    minLength=1,
    maxLength=256,
    pattern=r"^[^\s*>]+$",
)
HEADERS = prop("object", "Message headers.", additionalProperties={"type": "string"})


@connector(
    "nats.publish",
    name="NATS publish",
    category=CATEGORY,
    description="Publish a message on a NATS subject (flushed before the node finishes).",
    input_schema=obj(
        {**BROKER, "subject": SUBJECT, "message": MESSAGE, "headers": HEADERS},
        ["subject", "message"],
    ),
    output_schema=out(
        {
            "ok": prop("boolean", "True once the server has the message."),
            "bytes": prop("integer", "Payload size."),
        }
    ),
    secrets=["credential"],
    examples=[
        {
            "url": "nats://nats.internal:4222",
            "subject": "orders.created",
            "message": {"id": "{{ input.order_id }}"},
        }
    ],
)
async def nats_publish(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Publish ``message`` on ``subject``."""
    payload = encode_payload(params["message"])
    client, secrets = await _nats(params, ctx)
    try:
        headers = {"Nats-Msg-Id": ctx.idempotency_key, **(params.get("headers") or {})}
        await client.publish(params["subject"], payload, headers=headers)
        await client.flush(timeout=max(1, round(float(params.get("timeout", 10)))))
    except (NatsError, TimeoutError) as exc:
        raise ConnectorError(
            mask_values(f"NATS publish failed: {type(exc).__name__}", secrets), retryable=True
        ) from None
    finally:
        await client.close()
    return {"ok": True, "bytes": len(payload)}


@connector(
    "nats.request",
    name="NATS request",
    category=CATEGORY,
    description="Send a NATS request and wait for the first reply (request-reply).",
    input_schema=obj(
        {**BROKER, "subject": SUBJECT, "message": MESSAGE, "headers": HEADERS},
        ["subject", "message"],
    ),
    output_schema=out(
        {
            "reply": prop(None, "The reply (parsed when it is JSON)."),
            "headers": prop("object", "Reply headers."),
        }
    ),
    secrets=["credential"],
    examples=[
        {
            "url": "nats://nats.internal:4222",
            "subject": "pricing.quote",
            "message": {"sku": "A-1"},
            "timeout": 5,
        }
    ],
)
async def nats_request(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Request on ``subject`` and return the reply."""
    payload = encode_payload(params["message"])
    client, secrets = await _nats(params, ctx)
    timeout = float(params.get("timeout", 10))
    try:
        msg = await client.request(
            params["subject"], payload, timeout=timeout, headers=params.get("headers")
        )
    except NoRespondersError:
        raise ConnectorError(
            f"no service listens on {params['subject']!r}", retryable=True
        ) from None
    except (NatsTimeoutError, TimeoutError):
        raise ConnectorError(f"no reply within {timeout:g}s", retryable=True) from None
    except NatsError as exc:
        raise ConnectorError(
            mask_values(f"NATS request failed: {type(exc).__name__}", secrets), retryable=True
        ) from None
    finally:
        await client.close()
    text = msg.data.decode("utf-8", errors="replace")
    try:
        reply: Any = json.loads(text)
    except ValueError:
        reply = text
    return {"reply": reply, "headers": dict(msg.headers or {})}
