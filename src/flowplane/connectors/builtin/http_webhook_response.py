"""``http.webhook_response``: the HTTP answer a webhook trigger sends its waiting caller."""

from __future__ import annotations

from typing import Any

from flowplane.connectors.base import NodeContext, connector
from flowplane.connectors.builtin._schemas import obj, out, prop
from flowplane.errors import ConnectorError


def _bad(message: str) -> ConnectorError:
    return ConnectorError(message, retryable=False)


@connector(
    "http.webhook_response",
    name="Webhook response",
    category="http",
    kind="transform",
    description="Set the HTTP status, headers and body answered to a webhook trigger's caller.",
    input_schema=obj(
        {
            "status": prop("integer", "HTTP status.", minimum=200, maximum=599, default=200),
            "body": prop(None, "Response body: JSON value or text."),
            "headers": prop("object", "Response headers.", additionalProperties={"type": "string"}),
            "content_type": prop(
                "string",
                "Content-Type (default: JSON for non-strings, else text/plain).",
                maxLength=200,
            ),
        },
    ),
    output_schema=out(
        {
            "status_code": prop("integer", "Status."),
            "headers": prop("object", "Headers."),
            "body": prop(None, "Body."),
        }
    ),
    examples=[{"status": 202, "body": {"accepted": True, "run": "{{ run.id }}"}}],
)
async def webhook_response(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Describe the webhook response; the trigger service sends it to the waiting caller."""
    body = params.get("body")
    headers = {str(k): str(v) for k, v in (params.get("headers") or {}).items()}
    if any("\r" in k + v or "\n" in k + v for k, v in headers.items()):
        raise _bad("header names and values must not contain line breaks")
    content_type = params.get("content_type") or (
        "text/plain; charset=utf-8" if isinstance(body, str) else "application/json"
    )
    headers.setdefault("Content-Type", content_type)
    response = {"status_code": params.get("status", 200), "headers": headers, "body": body}
    ctx.extras["webhook_response"] = response
    return response
