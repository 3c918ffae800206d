"""Message-broker connectors: NATS publish and request-reply, MQTT publish.

Broker URLs come from a credential (they may hold a password) or a param. The host is
checked by the network policy and the connection goes to the checked address.
"""

from __future__ import annotations

import asyncio
import json
import urllib.parse
from typing import Any

import aiomqtt
import nats
from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError, NoServersError
from nats.errors import TimeoutError as NatsTimeoutError

from flowplane.connectors.base import NodeContext, connector
from flowplane.connectors.builtin._credentials import credential
from flowplane.connectors.builtin._network import check_host
from flowplane.connectors.builtin._schemas import CREDENTIAL_PROP, obj, out, prop
from flowplane.errors import ConnectorError
from flowplane.security.redaction import mask_values

CATEGORY = "messaging"
MAX_PAYLOAD_BYTES = 1024 * 1024
TIMEOUT = prop("number", "Time limit in seconds.", exclusiveMinimum=0, maximum=300, default=10)
MESSAGE = prop(None, "The message: text is sent as-is, other values as JSON.")


def _bad(message: str) -> ConnectorError:
    return ConnectorError(message, retryable=False)


def _payload(value: Any) -> bytes:
    data = (value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)).encode()
    if len(data) > MAX_PAYLOAD_BYTES:
        raise _bad(f"message is larger than {MAX_PAYLOAD_BYTES} bytes")
    return data


def _url(
    params: dict[str, Any], ctx: NodeContext, schemes: tuple[str, ...], default_port: int
) -> tuple[urllib.parse.SplitResult, int, list[str | None]]:
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


async def _nats(params: dict[str, Any], ctx: NodeContext) -> tuple[NatsClient, list[str | None]]:
    parts, port, secrets = _url(params, ctx, ("nats", "tls"), 4222)
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


BROKER = {
    "credential": {**CREDENTIAL_PROP, "description": "Credential holding the broker URL."},
    "url": prop("string", "Or the broker URL itself when it holds no password.", maxLength=2048),
    "timeout": TIMEOUT,
}
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
    payload = _payload(params["message"])
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
    payload = _payload(params["message"])
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


@connector(
    "mqtt.publish",
    name="MQTT publish",
    category=CATEGORY,
    description="Publish a message on an MQTT topic (QoS 0-2, optional retain).",
    input_schema=obj(
        {
            **BROKER,
            "topic": prop(
                "string",
                "Topic, e.g. 'plant/line1/alerts'.",
                minLength=1,
                maxLength=1024,
                pattern=r"^[^#+]+$",
            ),
            "message": MESSAGE,
            "qos": prop("integer", "Quality of service.", enum=[0, 1, 2], default=1),
            "retain": prop("boolean", "Ask the broker to retain the message.", default=False),
        },
        ["topic", "message"],
    ),
    output_schema=out(
        {"ok": prop("boolean", "True once published."), "bytes": prop("integer", "Payload size.")}
    ),
    secrets=["credential"],
    examples=[
        {
            "url": "mqtt://broker.internal:1883",
            "topic": "plant/line1/alerts",
            "message": {"level": "high"},
            "qos": 1,
        }
    ],
)
async def mqtt_publish(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Publish ``message`` on ``topic``."""
    payload = _payload(params["message"])
    parts, port, secrets = _url(params, ctx, ("mqtt", "mqtts"), 1883)
    addresses = await check_host(ctx, parts.hostname or "", port)
    timeout = float(params.get("timeout", 10))
    tls = aiomqtt.TLSParameters() if parts.scheme == "mqtts" else None
    try:
        async with aiomqtt.Client(
            hostname=addresses[0] if tls is None else (parts.hostname or ""),
            port=port,
            username=urllib.parse.unquote(parts.username) if parts.username else None,
            password=urllib.parse.unquote(parts.password) if parts.password else None,
            timeout=timeout,
            tls_params=tls,
        ) as client:
            await client.publish(
                params["topic"],
                payload,
                qos=params.get("qos", 1),
                retain=bool(params.get("retain")),
                timeout=timeout,
            )
    except aiomqtt.MqttError as exc:
        raise ConnectorError(
            mask_values(f"MQTT publish failed: {exc}", secrets)[:500], retryable=True
        ) from None
    return {"ok": True, "bytes": len(payload)}
