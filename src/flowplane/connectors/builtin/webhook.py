"""``webhook.send``: a JSON event POSTed to a URL, signed per Standard Webhooks."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from typing import Any

from flowplane.connectors.base import NodeContext, connector
from flowplane.connectors.builtin._credentials import credential
from flowplane.connectors.builtin._http_calls import http_call, status_error
from flowplane.connectors.builtin._schemas import CREDENTIAL_PROP, obj, out, prop
from flowplane.errors import ConnectorError

CATEGORY = "messaging"
TIMEOUT = prop(
    "number", "Request time limit in seconds.", exclusiveMinimum=0, maximum=300, default=30
)


def _bad(message: str) -> ConnectorError:
    return ConnectorError(message, retryable=False)


def webhook_id(idempotency_key: str) -> str:
    """A stable message id for a node run: retries of the same node send the same id."""
    return "msg_" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]


def standard_webhook_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the Standard Webhooks ``webhook-signature`` header value (``v1,<base64>``).

    Args:
        secret: the signing secret; ``whsec_<base64>`` is decoded, anything else is used as
            UTF-8 bytes.
        msg_id: the ``webhook-id``.
        timestamp: the ``webhook-timestamp`` (Unix seconds).
        body: the exact request body.
    """
    if secret.startswith("whsec_"):
        try:
            key = base64.b64decode(secret[6:], validate=True)
        except binascii.Error as exc:
            raise _bad("signing secret 'whsec_...' is not valid base64") from exc
    else:
        key = secret.encode()
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


@connector(
    "webhook.send",
    name="Send webhook",
    category=CATEGORY,
    description="POST a JSON event to a URL, signed per Standard Webhooks (webhook-signature).",
    input_schema=obj(
        {
            "url": prop("string", "Destination URL (or use url_credential).", maxLength=8192),
            "url_credential": {**CREDENTIAL_PROP, "description": "Credential holding the URL."},
            "payload": prop(None, "The JSON body."),
            "signing_credential": {
                **CREDENTIAL_PROP,
                "description": "Credential holding the signing secret "
                "(whsec_... or raw); omit to send unsigned.",
            },
            "event_type": prop(
                "string", "Sent as the 'type' header hint and X-Event-Type.", maxLength=200
            ),
            "headers": prop(
                "object",
                "Extra headers.",
                additionalProperties={"type": "string"},
                **{"x-secret": True},  # credentials may be substituted here
            ),
            "method": prop("string", "HTTP method.", enum=["POST", "PUT", "PATCH"], default="POST"),
            "timeout": TIMEOUT,
        },
        ["payload"],
    ),
    output_schema=out(
        {
            "ok": prop("boolean", "True on a 2xx answer."),
            "status_code": prop("integer", "HTTP status."),
            "webhook_id": prop("string", "The webhook-id sent (stable per node run)."),
            "response": prop(None, "The response body."),
        }
    ),
    secrets=["url_credential", "signing_credential"],
    examples=[
        {
            "url": "https://hooks.partner.example/flowplane",
            "payload": {"type": "order.shipped", "order_id": "{{ input.order_id }}"},
            "signing_credential": "PARTNER_WEBHOOK_SECRET",
            "event_type": "order.shipped",
        }
    ],
)
async def webhook_send(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Send a (signed) webhook."""
    secrets: list[str] = []
    if params.get("url_credential"):
        url = credential(ctx, params["url_credential"])
        secrets.append(url)
    elif params.get("url"):
        url = params["url"]
    else:
        raise _bad("give 'url' or 'url_credential'")
    body = json.dumps(params["payload"], separators=(",", ":"), ensure_ascii=False).encode()
    msg_id, timestamp = webhook_id(ctx.idempotency_key), int(time.time())
    headers = {str(k): str(v) for k, v in (params.get("headers") or {}).items()}
    headers.update(
        {
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
        }
    )
    if params.get("event_type"):
        headers["X-Event-Type"] = params["event_type"]
    if params.get("signing_credential"):
        signing = credential(ctx, params["signing_credential"])
        secrets.append(signing)
        headers["webhook-signature"] = standard_webhook_signature(signing, msg_id, timestamp, body)
    label = "webhook destination"
    result = await http_call(
        ctx,
        params.get("method", "POST"),
        url,
        label=label,
        timeout=float(params.get("timeout", 30)),
        secrets=secrets,
        content=body,
        headers=headers,
    )
    if result.status >= 300:
        raise status_error(result, label, secrets)
    response = result.json if result.is_json else (result.text[:2000] or None)
    return {"ok": True, "status_code": result.status, "webhook_id": msg_id, "response": response}
