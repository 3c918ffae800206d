"""``http.graphql``: a GraphQL query or mutation through the outbound network policy."""

from __future__ import annotations

from typing import Any

from flowplane.connectors.base import NodeContext, connector
from flowplane.connectors.builtin._http_calls import http_call, status_error
from flowplane.connectors.builtin._http_params import AUTH, HEADERS, TIMEOUT, URL, request_headers
from flowplane.connectors.builtin._schemas import obj, out, prop
from flowplane.errors import ConnectorError
from flowplane.security.redaction import mask_values


def _bad(message: str) -> ConnectorError:
    return ConnectorError(message, retryable=False)


@connector(
    "http.graphql",
    name="GraphQL request",
    category="http",
    description="Send a GraphQL query or mutation with variables and return data and errors.",
    input_schema=obj(
        {
            "url": URL,
            "query": prop("string", "The GraphQL document.", minLength=1, maxLength=100_000),
            "variables": prop("object", "Variables (values stay data, never spliced into query)."),
            "operation_name": prop(
                "string", "Operation to run when the document has several.", maxLength=256
            ),
            "headers": HEADERS,
            **AUTH,
            "timeout": TIMEOUT,
            "fail_on_errors": prop(
                "boolean", "Fail the node when the response has errors.", default=True
            ),
        },
        ["url", "query"],
    ),
    output_schema=out(
        {
            "data": prop(["object", "null"], "The 'data' member."),
            "errors": prop("array", "The 'errors' member (empty when none)."),
            "status_code": prop("integer", "HTTP status."),
        }
    ),
    secrets=["credential"],
    examples=[
        {
            "url": "https://api.example.com/graphql",
            "query": "query($id: ID!) { order(id: $id) { id total } }",
            "variables": {"id": "{{ input.order_id }}"},
            "credential": "SHOP_TOKEN",
        }
    ],
)
async def graphql(params: dict[str, Any], ctx: NodeContext) -> Any:
    """POST the GraphQL request."""
    headers, secrets = request_headers(params, ctx)
    headers.setdefault("Accept", "application/graphql-response+json, application/json")
    body: dict[str, Any] = {"query": params["query"], "variables": params.get("variables") or {}}
    if params.get("operation_name"):
        body["operationName"] = params["operation_name"]
    result = await http_call(
        ctx,
        "POST",
        params["url"],
        label="GraphQL endpoint",
        timeout=float(params.get("timeout", 30)),
        secrets=secrets,
        json=body,
        headers=headers,
    )
    payload = result.json if result.is_json and isinstance(result.json, dict) else None
    if payload is None or ("data" not in payload and "errors" not in payload):
        if result.status >= 400:
            raise status_error(result, "GraphQL endpoint", secrets)
        raise _bad(f"GraphQL endpoint did not return a GraphQL response (HTTP {result.status})")
    errors = payload.get("errors") or []
    if result.status >= 500 or result.status in (408, 429):
        raise status_error(result, "GraphQL endpoint", secrets)
    if errors and params.get("fail_on_errors", True):
        messages = "; ".join(
            str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors[:5]
        )
        raise _bad(mask_values(f"GraphQL errors: {messages}"[:1000], secrets))
    return {"data": payload.get("data"), "errors": errors, "status_code": result.status}
