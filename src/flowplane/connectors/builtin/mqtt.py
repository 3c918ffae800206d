"""``mqtt.publish``: publish on an MQTT topic."""

from __future__ import annotations

import urllib.parse
from typing import Any

import aiomqtt

from flowplane.connectors.base import NodeContext, connector
from flowplane.connectors.builtin._brokers import BROKER, MESSAGE, broker_url, encode_payload
from flowplane.connectors.builtin._network import check_host
from flowplane.connectors.builtin._schemas import obj, out, prop
from flowplane.errors import ConnectorError
from flowplane.security.redaction import mask_values

CATEGORY = "messaging"


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
    payload = encode_payload(params["message"])
    parts, port, secrets = broker_url(params, ctx, ("mqtt", "mqtts"), 1883)
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
