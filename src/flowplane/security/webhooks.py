"""Webhook signature schemes: Standard Webhooks, GitHub and Stripe.

Every scheme is an HMAC-SHA256 over the **raw** request body (never over re-serialised
JSON), compared in constant time. Schemes with a signed timestamp (Standard Webhooks,
Stripe) refuse deliveries more than :data:`TOLERANCE_SECONDS` away from now, in either
direction. :func:`verify` also returns the delivery id used to refuse replays:

=========  ===========================================  ======================================
scheme     signature                                    delivery id
=========  ===========================================  ======================================
standard   ``webhook-signature: v1,<base64>`` over      ``webhook-id`` (signed)
           ``<webhook-id>.<webhook-timestamp>.<body>``
github     ``X-Hub-Signature-256: sha256=<hex>`` over   ``X-GitHub-Delivery`` (not signed)
           ``<body>``
stripe     ``Stripe-Signature: t=<ts>,v1=<hex>`` over   the event ``id`` of the body, else the
           ``<ts>.<body>``                              signature
=========  ===========================================  ======================================

A Standard Webhooks secret is ``whsec_<base64 key>`` (the key is the decoded bytes); any
other secret, and GitHub and Stripe secrets, are used as their UTF-8 bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from flowplane.errors import SignatureInvalid

Scheme = Literal["none", "standard", "github", "stripe"]
SCHEMES: tuple[Scheme, ...] = ("none", "standard", "github", "stripe")
TOLERANCE_SECONDS = 300
"""How far a signed timestamp may be from now (5 minutes, as Stripe and Standard Webhooks)."""
MAX_SIGNATURE_HEADER_CHARS = 4096
SIGNATURE_HEADERS = ("webhook-signature", "x-hub-signature-256", "stripe-signature")
_TIMESTAMP_RE = re.compile(r"-?[0-9]{1,15}")
"""A signed timestamp: decimal seconds, at most 15 digits (ASCII only, unlike ``int()``)."""

Reason = Literal["missing", "malformed", "mismatch", "stale", "no_secret"]


def _fail(scheme: str, reason: Reason, detail: str) -> SignatureInvalid:
    return SignatureInvalid(detail, scheme=scheme, reason=reason)


@dataclass(frozen=True)
class Verified:
    """A delivery whose signature checked out.

    Attributes:
        delivery_id: the id to deduplicate replays by (``None``: the sender gave none).
        timestamp: the signed send time in seconds (``None`` for unsigned times).
    """

    delivery_id: str | None
    timestamp: int | None = None


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _hmac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _timestamp(scheme: str, text: str | None, now: float, tolerance: int) -> int:
    if not text:
        raise _fail(scheme, "missing", "the delivery has no signed timestamp")
    stripped = text.strip()
    # A Unix time in seconds has at most a dozen digits for millennia to come; anything longer
    # is hostile (400 nines once overflowed the float comparison below into a 500).
    if not _TIMESTAMP_RE.fullmatch(stripped):
        raise _fail(scheme, "malformed", "the signed timestamp is not an integer of seconds")
    value = int(stripped)
    # Integer arithmetic: ``now`` is a float, and mixing a huge int into it would overflow.
    if abs(int(now) - value) > tolerance:
        raise _fail(
            scheme,
            "stale",
            f"the signed timestamp is more than {tolerance} seconds from the server's clock",
        )
    return value


def _digest_id(header: str) -> str:
    return "sig:" + hashlib.sha256(header.encode()).hexdigest()[:40]


def standard_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret (``whsec_<base64>``, else the UTF-8 bytes)."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[len("whsec_") :], validate=True)
        except (binascii.Error, ValueError):
            pass
    return secret.encode()


def _verify_standard(
    secret: str, body: bytes, headers: dict[str, str], now: float, tolerance: int
) -> Verified:
    delivery_id = headers.get("webhook-id")
    signature = headers.get("webhook-signature")
    if not delivery_id or not signature:
        raise _fail("standard", "missing", "webhook-id and webhook-signature are required")
    ts = _timestamp("standard", headers.get("webhook-timestamp"), now, tolerance)
    signed = f"{delivery_id}.{ts}.".encode() + body
    expected = _hmac(standard_key(secret), signed)
    for entry in signature.split():
        version, _, value = entry.partition(",")
        if version != "v1":
            continue
        try:
            given = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(given, expected):
            return Verified(delivery_id, ts)
    raise _fail("standard", "mismatch", "no v1 signature matches the body")


def _verify_github(secret: str, body: bytes, headers: dict[str, str]) -> Verified:
    signature = headers.get("x-hub-signature-256")
    if not signature:
        raise _fail("github", "missing", "X-Hub-Signature-256 is required")
    prefix, _, value = signature.strip().partition("=")
    if prefix != "sha256" or not value:
        raise _fail("github", "malformed", "X-Hub-Signature-256 must be sha256=<hex>")
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
    if not hmac.compare_digest(value.lower().encode("utf-8", "replace"), expected):
        raise _fail("github", "mismatch", "the signature does not match the body")
    return Verified(headers.get("x-github-delivery") or _digest_id(signature))


def _verify_stripe(
    secret: str, body: bytes, headers: dict[str, str], now: float, tolerance: int
) -> Verified:
    header = headers.get("stripe-signature")
    if not header:
        raise _fail("stripe", "missing", "Stripe-Signature is required")
    stamp: str | None = None
    candidates: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            stamp = value
        elif key == "v1":
            candidates.append(value)
    if not candidates:
        raise _fail("stripe", "malformed", "Stripe-Signature has no v1 signature")
    ts = _timestamp("stripe", stamp, now, tolerance)
    expected = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    if not any(
        hmac.compare_digest(c.lower().encode("utf-8", "replace"), expected.encode())
        for c in candidates
    ):
        raise _fail("stripe", "mismatch", "no v1 signature matches the body")
    return Verified(_stripe_event_id(body) or _digest_id(header), ts)


def _stripe_event_id(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    event_id = data.get("id") if isinstance(data, dict) else None
    return event_id if isinstance(event_id, str) and 0 < len(event_id) <= 200 else None


def verify(
    scheme: str,
    secret: str | None,
    body: bytes,
    headers: Mapping[str, str],
    *,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> Verified:
    """Check a delivery's signature; return its delivery id.

    With scheme ``none`` nothing is checked and the delivery id is the ``webhook-id`` or
    ``Idempotency-Key`` header, if any.

    Args:
        scheme: ``none``, ``standard``, ``github`` or ``stripe``.
        secret: the trigger's secret (a signed scheme without one refuses everything).
        body: the raw request body, exactly as received.
        headers: the request headers (any case).
        now: the clock in seconds (default: now).
        tolerance: allowed distance of a signed timestamp from ``now``, in seconds.

    Raises:
        SignatureInvalid: missing, malformed, stale or wrong (``reason`` says which).
    """
    lowered = _lower(headers)
    if scheme == "none":
        return Verified(lowered.get("webhook-id") or lowered.get("idempotency-key") or None)
    if scheme not in SCHEMES:
        raise _fail(scheme, "malformed", f"unknown signature scheme {scheme!r}")
    if not secret:
        raise _fail(scheme, "no_secret", "the trigger has no secret yet: set one with PUT")
    if any(len(lowered.get(h, "")) > MAX_SIGNATURE_HEADER_CHARS for h in SIGNATURE_HEADERS):
        raise _fail(scheme, "malformed", "a signature header is too long")
    clock = time.time() if now is None else now
    if scheme == "standard":
        return _verify_standard(secret, body, lowered, clock, tolerance)
    if scheme == "github":
        return _verify_github(secret, body, lowered)
    return _verify_stripe(secret, body, lowered, clock, tolerance)


def sign(
    scheme: str, secret: str, body: bytes, *, timestamp: int | None = None, delivery_id: str = ""
) -> dict[str, str]:
    """Return the headers a sender of ``scheme`` would add (for tests and examples)."""
    ts = int(time.time()) if timestamp is None else timestamp
    if scheme == "standard":
        digest = _hmac(standard_key(secret), f"{delivery_id}.{ts}.".encode() + body)
        return {
            "webhook-id": delivery_id,
            "webhook-timestamp": str(ts),
            "webhook-signature": "v1," + base64.b64encode(digest).decode(),
        }
    if scheme == "github":
        digest_hex = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers = {"X-Hub-Signature-256": f"sha256={digest_hex}"}
        if delivery_id:
            headers["X-GitHub-Delivery"] = delivery_id
        return headers
    if scheme == "stripe":
        digest_hex = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
        return {"Stripe-Signature": f"t={ts},v1={digest_hex}"}
    return {}
