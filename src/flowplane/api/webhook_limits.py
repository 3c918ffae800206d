"""How fast anonymous senders may deliver webhooks: per client address and per trigger.

``POST /v1/webhooks/{key}`` needs no API key, so the API's per-caller buckets never see it.
Two token buckets guard it instead (both refill continuously, 429 problem + ``Retry-After``
past them):

- per **client address** (``FLOWPLANE_WEBHOOK_CLIENT_RATE_PER_MINUTE``), taken before the
  trigger is even looked up: one sender cannot flood every key, nor burn the server's HMAC
  time with forged signatures. The address is the peer, or what a trusted proxy forwarded
  (:mod:`flowplane.api.client_address`).
- per **trigger** (``FLOWPLANE_WEBHOOK_RATE_PER_MINUTE``), taken once the delivery is
  accepted by its scheme: for an unsigned (``scheme: none``) trigger that is every delivery
  (anyone who knows the URL can start runs, so the runs it starts are bounded); for a
  signed trigger only deliveries whose signature verified count, so forged deliveries
  cannot use up the real sender's allowance.

The buckets live in the memory of one process, like the API's own rate limits, or in the
Redis of ``FLOWPLANE_RATE_LIMIT_STORAGE`` shared by every API process.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import HTTPConnection

from flowplane.api.client_address import client_address, parse_networks
from flowplane.api.ratelimit import Limiter, limiter_of
from flowplane.settings import Settings


class WebhookLimits:
    """The buckets of webhook deliveries.

    Args:
        settings: the rates (per minute) and the trusted proxies.
        limiter: the token buckets (injectable, with its clock, for tests).
    """

    def __init__(self, settings: Settings, limiter: Limiter | None = None) -> None:
        self.per_trigger = settings.webhook_rate_per_minute
        self.per_client = settings.webhook_client_rate_per_minute
        self._proxies = parse_networks(settings.trusted_proxies)
        self._limiter = limiter or limiter_of(settings, "webhooks")

    async def admit_client(self, connection: HTTPConnection) -> None:
        """Take a delivery from the sender's bucket.

        Raises:
            RateLimitExceeded: the sender's address is over its rate (429).
        """
        address = client_address(connection, self._proxies)
        await self._limiter.check_async(f"client:{address}", self.per_client)

    async def admit_trigger(self, trigger_id: str) -> None:
        """Take a delivery from the trigger's bucket (call once the scheme accepted it).

        Raises:
            RateLimitExceeded: the trigger is over its rate (429).
        """
        await self._limiter.check_async(f"trigger:{trigger_id}", self.per_trigger)


def webhook_limits_of(app: Any, settings: Settings) -> WebhookLimits:
    """The app's :class:`WebhookLimits`, made on first use from ``settings``."""
    limits = getattr(app.state, "webhook_limits", None)
    if not isinstance(limits, WebhookLimits):
        limits = WebhookLimits(settings)
        app.state.webhook_limits = limits
    return limits
