"""Answering a webhook's caller from the run it started: the ``http.webhook_response`` node.

A webhook trigger of kind ``run`` normally answers 202 ``{runId}`` at once. When the
workflow has an ``http.webhook_response`` node, the delivery instead waits (at most
``FLOWPLANE_WEBHOOK_REPLY_TIMEOUT_SECONDS``) for the first such node to finish and answers
with the status, headers and body that node set, so a workflow can be a synchronous HTTP
endpoint (validate → compute → reply, then go on with slower work). If the run ends
without reaching such a node, or the wait times out, the caller gets the usual 202
``{runId}``; the run goes on either way.

The node's output is the run's data (redacted like every output); headers that belong to
the connection or to the server (hop-by-hop headers, ``Content-Length``, our request id and
rate-limit headers) and malformed names or values are dropped, and a body that is not
text or bytes is sent as JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flowplane.services.caller import Caller
from flowplane.services.runs import RunService
from flowplane.timeouts import wait_for

REPLY_TYPE = "http.webhook_response"
DROPPED_HEADERS = frozenset(
    {
        "connection",
        "content-length",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "ratelimit",
        "ratelimit-policy",
        "retry-after",
        "set-cookie",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "x-request-id",
    }
)

MAX_WAITING = 256
"""Deliveries of this process waiting for a reply at once; more get 202 ``{runId}`` at once
(each waiting delivery holds a connection, counted by uvicorn's ``limit_concurrency``)."""
FORCED_HEADERS = {
    # The reply is served from the API's origin: whatever the workflow (or the webhook
    # caller's data inside it) puts in the body must not run as script there.
    "Content-Security-Policy": "sandbox; default-src 'none'",
    "X-Content-Type-Options": "nosniff",
}
_waiting = 0

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
"""A header name (RFC 9110 token); others are dropped rather than break the response."""
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
"""A header value: no control characters, Latin-1 only."""


@dataclass(frozen=True)
class WebhookReply:
    """What to answer the webhook's caller."""

    status: int
    headers: dict[str, str]
    body: bytes


def reply_nodes(document: Mapping[str, Any]) -> frozenset[str]:
    """Ids of the document's ``http.webhook_response`` nodes."""
    return frozenset(
        str(node["id"])
        for node in document.get("nodes") or []
        if isinstance(node, Mapping) and node.get("type") == REPLY_TYPE and "id" in node
    )


def build_reply(output: Any) -> WebhookReply | None:
    """The reply an ``http.webhook_response`` node's output describes (``None``: not one)."""
    if not isinstance(output, Mapping):
        return None
    status = output.get("status_code", 200)
    if not isinstance(status, int) or not 200 <= status <= 599:
        return None  # 1xx are not final answers
    forced = {name.lower() for name in FORCED_HEADERS}
    headers = {
        str(name): str(value).strip(" \t")  # h11 refuses surrounding whitespace
        for name, value in (output.get("headers") or {}).items()
        if str(name).lower() not in DROPPED_HEADERS | forced
        and _TOKEN.fullmatch(str(name))
        and _FIELD_VALUE.fullmatch(str(value))
    }
    headers.update(FORCED_HEADERS)
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    body = output.get("body")
    if body is None:
        data = b""
    elif isinstance(body, bytes):
        data = body
    elif isinstance(body, str) and "json" not in content_type.lower():
        data = body.encode()
    else:
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    if status in (204, 304):
        data = b""  # these answers have no body
    return WebhookReply(status, headers, data)


async def await_reply(runs: RunService, run_id: str, timeout: float) -> WebhookReply | None:
    """Wait for the run's first ``http.webhook_response`` node; ``None`` when there is none,
    the run ends without one, or ``timeout`` passes."""
    global _waiting
    if timeout <= 0 or _waiting >= MAX_WAITING:
        return None
    nodes = reply_nodes(await runs.document(Caller.system(), run_id))
    if not nodes:
        return None

    async def watch() -> WebhookReply | None:
        async for event in runs.follow(Caller.system(), run_id, poll_seconds=1.0):
            if event.get("type") == "NodeFinished" and event.get("nodeId") in nodes:
                if "output" in event:
                    return build_reply(event["output"])
                found = await runs.nodes(Caller.system(), run_id)
                output = next((n.output for n in found if n.node_id == event["nodeId"]), None)
                return build_reply(output)
        return None

    _waiting += 1
    try:
        return await wait_for(watch(), timeout)
    except TimeoutError:
        return None
    finally:
        _waiting -= 1
