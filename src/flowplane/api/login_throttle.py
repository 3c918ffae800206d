"""Throttling password guesses without letting anyone lock a user out.

A limit per username alone hands an attacker a lock-out switch: 30 wrong passwords from
anywhere and the real user's right password answers 429. Here only **failures** count, and
they count against the client that made them:

- per (username, client address): ``FAILURES_PER_MINUTE_PAIR`` wrong passwords for one
  account from one address, then that address waits (guessing one account is slowed);
- per client address: ``FAILURES_PER_MINUTE_CLIENT`` wrong passwords for any accounts,
  then that address waits (spraying many accounts is slowed).

A successful login gives its token back to both buckets, so a client that has not been
failing is never refused, whatever others do to the same username. The address is the peer,
or what a trusted proxy forwarded (``FLOWPLANE_TRUSTED_PROXIES``;
:mod:`flowplane.api.client_address`), so a client cannot pick a fresh address per guess by
writing ``X-Forwarded-For``. Each attempt takes its tokens *before* the password is checked,
so concurrent guesses cannot slip past the limit while an earlier one is being verified.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from starlette.requests import HTTPConnection

from flowplane.api.client_address import client_address, parse_networks
from flowplane.api.ratelimit import Limiter, RateLimitExceeded
from flowplane.errors import Unauthorized
from flowplane.settings import Settings

FAILURES_PER_MINUTE_PAIR = 10
"""Wrong passwords one address may try for one username per minute (bucket of that size)."""
FAILURES_PER_MINUTE_CLIENT = 30
"""Wrong passwords one address may try, all usernames together, per minute."""

T = TypeVar("T")


async def throttled_login(
    connection: HTTPConnection,
    limiter: Limiter,
    settings: Settings,
    username: str,
    login: Callable[[], Awaitable[T]],
) -> T:
    """Run ``login`` unless this client has failed too often; count it if it fails.

    Args:
        connection: the login request (for the client address).
        limiter: the login buckets (one per app).
        settings: for ``trusted_proxies``.
        username: the username tried (case-insensitive).
        login: checks the password; raises :class:`~flowplane.errors.Unauthorized` when wrong.

    Raises:
        RateLimitExceeded: this client failed too often lately (429 with ``Retry-After``).
        Unauthorized: the password is wrong (counted).
    """
    address = client_address(connection, parse_networks(settings.trusted_proxies))
    pair = f"pair:{username.lower()}|{address}"
    client = f"client:{address}"
    await limiter.check_async(pair, FAILURES_PER_MINUTE_PAIR)
    try:
        await limiter.check_async(client, FAILURES_PER_MINUTE_CLIENT)
    except RateLimitExceeded:
        await limiter.refund_async(pair, FAILURES_PER_MINUTE_PAIR)
        raise
    try:
        result = await login()
    except Unauthorized:
        raise  # the tokens stay taken: this failure counts
    except BaseException:
        await limiter.refund_async(pair, FAILURES_PER_MINUTE_PAIR)
        await limiter.refund_async(client, FAILURES_PER_MINUTE_CLIENT)
        raise
    await limiter.refund_async(pair, FAILURES_PER_MINUTE_PAIR)
    await limiter.refund_async(client, FAILURES_PER_MINUTE_CLIENT)
    return result
