"""API keys and login tokens (JWT).

API keys look like ``fp_<12 hex>_<43 url-safe chars>`` (256 random bits). Only a SHA-256
of the whole key is stored: keys are high-entropy, so a slow hash adds nothing, and the
first :data:`KEY_PREFIX_CHARS` characters (``fp_`` + 12) are kept in clear to find the row
and to show which key is which. Any ``fp_`` string of at least :data:`MIN_KEY_CHARS`
characters is accepted as a key (``FLOWPLANE_ADMIN_KEY`` can be chosen by an operator).

Login tokens are HS256 JWTs: the algorithm is pinned on decode (``alg: none`` and every
other algorithm are refused) and ``exp``, ``iat``, ``sub``, ``aud`` and ``iss`` are required.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from flowplane.errors import Unauthorized

API_KEY_PREFIX = "fp_"
KEY_PREFIX_CHARS = 15
MIN_KEY_CHARS = 40
MAX_KEY_CHARS = 256
JWT_ALGORITHM = "HS256"
JWT_ISSUER = "flowplane"
JWT_AUDIENCE = "flowplane-api"
JWT_LEEWAY_SECONDS = 30
MIN_JWT_SECRET_BYTES = 32


@dataclass(frozen=True)
class GeneratedKey:
    """A new API key: ``key`` is shown once; ``prefix`` and ``key_hash`` are stored."""

    key: str
    prefix: str
    key_hash: str


def generate_api_key() -> GeneratedKey:
    """Return a fresh random API key with its stored prefix and hash."""
    key = f"{API_KEY_PREFIX}{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
    return GeneratedKey(key=key, prefix=key_prefix(key), key_hash=hash_api_key(key))


def looks_like_api_key(value: str) -> bool:
    """Whether ``value`` has the shape of an API key (``fp_`` + enough printable ASCII)."""
    return (
        value.startswith(API_KEY_PREFIX)
        and MIN_KEY_CHARS <= len(value) <= MAX_KEY_CHARS
        and value.isascii()
        and value.isprintable()
        and " " not in value
    )


def key_prefix(key: str) -> str:
    """The clear-text part of a key kept for lookup and display."""
    return key[:KEY_PREFIX_CHARS]


def hash_api_key(key: str) -> str:
    """SHA-256 (hex) of a key."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_matches(key: str, stored_hash: str) -> bool:
    """Compare ``key`` with a stored hash in constant time."""
    return hmac.compare_digest(hash_api_key(key), stored_hash)


def generate_jwt_secret() -> str:
    """Return a new random HS256 key (48 random bytes, URL-safe base64)."""
    return secrets.token_urlsafe(48)


def check_jwt_secret(secret: str) -> str:
    """Return ``secret`` if it is long enough for HS256, else raise ``ValueError``."""
    if len(secret.encode()) < MIN_JWT_SECRET_BYTES:
        raise ValueError(f"the JWT secret must be at least {MIN_JWT_SECRET_BYTES} bytes")
    return secret


def encode_jwt(
    secret: str,
    *,
    subject: str,
    ttl_seconds: int,
    claims: dict[str, Any] | None = None,
    now: float | None = None,
) -> tuple[str, int]:
    """Sign a login token for ``subject``; return it with its expiry (ms since the epoch)."""
    issued = int(now if now is not None else time.time())
    expires = issued + ttl_seconds
    payload: dict[str, Any] = {
        **(claims or {}),
        "sub": subject,
        "iss": JWT_ISSUER,
        "aud": JWT_AUDIENCE,
        "iat": issued,
        "exp": expires,
        "jti": uuid.uuid4().hex,
    }
    token = jwt.encode(payload, check_jwt_secret(secret), algorithm=JWT_ALGORITHM)
    return token, expires * 1000


def decode_jwt(secret: str, token: str) -> dict[str, Any]:
    """Verify a login token and return its claims; raise ``Unauthorized`` on any problem."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[JWT_ALGORITHM],
            audience=JWT_AUDIENCE,
            issuer=JWT_ISSUER,
            leeway=JWT_LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "sub", "aud", "iss"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("the token has expired") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("invalid token") from exc
    if not isinstance(claims.get("sub"), str):
        raise Unauthorized("invalid token")
    return claims
