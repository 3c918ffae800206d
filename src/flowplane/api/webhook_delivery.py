"""One webhook delivery over HTTP, for every route that takes them.

``POST /v1/webhooks/{key}`` and workflowdev's ``POST /api/v1/webhook/{key}`` differ only in
how they word the answer; everything else is here, once: the per-client limit before the
body is read, the delivery handed to :meth:`TriggerService.receive` (which checks the
signature and takes the per-trigger limit), the signature-failure counter, and the wait for
an ``http.webhook_response`` node's reply.
"""

from __future__ import annotations

from fastapi import Request, Response
from prometheus_client import Counter

from flowplane.api.webhook_limits import webhook_limits_of
from flowplane.errors import SignatureInvalid
from flowplane.services import webhook_reply
from flowplane.services.container import Services
from flowplane.services.triggers import Delivery, WebhookOutcome

__all__ = ["deliver", "signature_failures"]


def signature_failures(request: Request) -> Counter | None:
    """``flowplane_webhook_signature_failures_total{scheme,reason}`` in the app's registry."""
    state = request.app.state
    counter: Counter | None = getattr(state, "webhook_signature_failures", None)
    metrics = getattr(state, "metrics", None)
    if counter is None and metrics is not None:
        counter = Counter(
            "flowplane_webhook_signature_failures",
            "Webhook deliveries refused because their signature did not verify.",
            ["scheme", "reason"],
            registry=metrics.registry,
        )
        state.webhook_signature_failures = counter
    return counter


async def deliver(request: Request, services: Services, key: str) -> WebhookOutcome | Response:
    """Deliver ``request`` to the trigger ``key``.

    Returns the reply an ``http.webhook_response`` node set (a ``Response``), or the
    trigger service's outcome for the route to word.
    """
    limits = webhook_limits_of(request.app, services.settings)
    await limits.admit_client(request)  # before the body is even read
    delivery = Delivery(
        body=await request.body(),
        headers=dict(request.headers),
        query=list(request.query_params.multi_items()),
        content_type=request.headers.get("content-type", ""),
    )
    try:
        outcome = await services.triggers.receive(key, delivery, admit=limits.admit_trigger)
    except SignatureInvalid as exc:
        counter = signature_failures(request)
        if counter is not None:
            counter.labels(str(exc.extra.get("scheme", "")), str(exc.extra.get("reason", ""))).inc()
        raise
    run_id = outcome.body.get("runId")
    if outcome.status == 202 and isinstance(run_id, str):
        timeout = services.settings.webhook_reply_timeout_seconds
        reply = await webhook_reply.await_reply(services.runs, run_id, timeout)
        if reply is not None:
            return Response(reply.body, status_code=reply.status, headers=reply.headers)
    return outcome
