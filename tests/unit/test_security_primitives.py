"""Pure checks of keys, JWTs, passwords, token buckets and the JSON depth scan."""

from __future__ import annotations

import time

import jwt
import pytest

from flowplane.api.limits import json_depth_exceeds
from flowplane.api.ratelimit import RateLimiter, RateLimitExceeded
from flowplane.api.security import AuthRequired, extract_credential, is_open
from flowplane.errors import InvalidInput, Unauthorized
from flowplane.security import passwords, tokens
from flowplane.settings import Settings

SECRET = tokens.generate_jwt_secret()


def test_generated_keys_have_the_documented_shape() -> None:
    generated = tokens.generate_api_key()
    assert generated.key.startswith("fp_") and generated.key.count("_") >= 2
    assert tokens.looks_like_api_key(generated.key)
    assert generated.prefix == generated.key[: tokens.KEY_PREFIX_CHARS]
    assert tokens.key_matches(generated.key, generated.key_hash)
    assert not tokens.key_matches(generated.key + "x", generated.key_hash)
    assert generated.key not in generated.key_hash
    assert tokens.generate_api_key().key != generated.key


@pytest.mark.parametrize("value", ["fp_short", "xx_" + "a" * 50, "fp_" + "a" * 300, "fp_é" * 20])
def test_malformed_keys_are_not_keys(value: str) -> None:
    assert not tokens.looks_like_api_key(value)


def test_jwt_round_trip_and_pinned_algorithm() -> None:
    token, expires_ms = tokens.encode_jwt(SECRET, subject="u1", ttl_seconds=60, claims={"ver": 3})
    claims = tokens.decode_jwt(SECRET, token)
    assert claims["sub"] == "u1" and claims["ver"] == 3
    assert expires_ms // 1000 == claims["exp"]
    # alg: none, another algorithm, another key, another audience: all refused.
    none_token = jwt.encode(
        {
            "sub": "u1",
            "exp": int(time.time()) + 60,
            "iat": int(time.time()),
            "aud": tokens.JWT_AUDIENCE,
            "iss": tokens.JWT_ISSUER,
        },
        key=None,
        algorithm="none",
    )
    hs512 = jwt.encode(
        {
            "sub": "u1",
            "exp": int(time.time()) + 60,
            "iat": int(time.time()),
            "aud": tokens.JWT_AUDIENCE,
            "iss": tokens.JWT_ISSUER,
        },
        SECRET + SECRET,
        algorithm="HS512",
    )
    other_key, _ = tokens.encode_jwt(tokens.generate_jwt_secret(), subject="u1", ttl_seconds=60)
    for bad in (none_token, hs512, other_key, token + "x", "a.b.c", ""):
        with pytest.raises(Unauthorized):
            tokens.decode_jwt(SECRET, bad)


def test_jwt_missing_claims_and_expiry() -> None:
    now = int(time.time())
    no_exp = jwt.encode(
        {"sub": "u", "iat": now, "aud": tokens.JWT_AUDIENCE, "iss": tokens.JWT_ISSUER},
        SECRET,
        algorithm="HS256",
    )
    wrong_iss = jwt.encode(
        {"sub": "u", "iat": now, "exp": now + 60, "aud": tokens.JWT_AUDIENCE, "iss": "evil"},
        SECRET,
        algorithm="HS256",
    )
    expired, _ = tokens.encode_jwt(SECRET, subject="u", ttl_seconds=60, now=time.time() - 3600)
    for bad in (no_exp, wrong_iss):
        with pytest.raises(Unauthorized, match="invalid token"):
            tokens.decode_jwt(SECRET, bad)
    with pytest.raises(Unauthorized, match="expired"):
        tokens.decode_jwt(SECRET, expired)


def test_jwt_secret_must_be_long_and_random() -> None:
    with pytest.raises(ValueError):
        tokens.check_jwt_secret("short")
    for weak in ("too-short", "a" * 64, "changemechangemechangemechangeme"):
        with pytest.raises(ValueError, match="32 random bytes"):
            Settings(jwt_secret=weak)
    assert Settings(jwt_secret=SECRET).jwt_secret == SECRET


def test_passwords() -> None:
    hashed = passwords.hash_password("correct horse battery")
    assert hashed.startswith("$argon2id$")
    assert passwords.verify_password(hashed, "correct horse battery")
    assert not passwords.verify_password(hashed, "wrong horse battery")
    assert not passwords.verify_password(None, "correct horse battery")
    assert not passwords.verify_password("not-a-hash", "x")
    with pytest.raises(InvalidInput):
        passwords.hash_password("short")


def test_token_bucket_refills_and_reports() -> None:
    now = [1000.0]
    limiter = RateLimiter(clock=lambda: now[0])
    decisions = [limiter.take("k", 3) for _ in range(3)]
    assert [d.remaining for d in decisions if d] == [2, 1, 0]
    refused = limiter.take("k", 3)
    assert refused is not None and not refused.allowed
    assert refused.retry_after_ms == 20_000  # 3 per minute: one token every 20 s
    headers = refused.headers()
    assert headers["Retry-After"] == "20"
    assert headers["RateLimit-Policy"] == '"default";q=3;w=60'
    assert headers["RateLimit"] == '"default";r=0;t=20'
    with pytest.raises(RateLimitExceeded) as info:
        limiter.check("k", 3)
    assert info.value.extra["retryAfterMs"] == 20_000 and info.value.status == 429
    now[0] += 20
    assert limiter.check("k", 3) is not None
    assert limiter.take("other", 3) is not None  # buckets are per key
    assert limiter.take("k", 0) is None  # 0 = unlimited


@pytest.mark.parametrize(
    ("body", "too_deep"),
    [
        (b"[" * 100_000 + b"]" * 100_000, True),
        (b'{"a":' * 65 + b"1" + b"}" * 65, True),
        (b'{"a":' * 64 + b"1" + b"}" * 64, False),
        (b'{"s": "' + b"[" * 500 + b'"}', False),
        (b'["\\"[[[[' + b"[" * 100 + b'"]', False),
        (b"  " + b"[" * 70, True),
        (b"name: x\n" + b"[" * 100, False),
        (b"", False),
    ],
)
def test_json_depth_scan(body: bytes, too_deep: bool) -> None:
    assert json_depth_exceeds(body, 64) is too_deep


def test_open_routes_are_exact() -> None:
    assert is_open("GET", b"/health") and is_open("GET", b"/readyz?x=1")
    assert is_open("POST", b"/v1/auth/login") and is_open("POST", b"/v1/webhooks/new-order")
    for method, path in [
        ("GET", b"/health/"),
        ("GET", b"//health"),
        ("GET", b"/%68ealth"),
        ("GET", b"/v1/kv/xhealth"),
        ("GET", b"/healthz"),
        ("POST", b"/health"),
        ("GET", b"/v1/auth/login"),
        ("POST", b"/v1/webhooks/a/b"),
        ("POST", b"/v1/webhooks/%2e%2e"),
    ]:
        assert not is_open(method, path), path


def test_the_browser_pages_are_open_and_only_they() -> None:
    for path in (b"/", b"/docs", b"/openapi.json", b"/ui/app.js", b"/ui/swagger/swagger-ui.css"):
        assert is_open("GET", path), path
    assert is_open("HEAD", b"/")
    for method, path in [
        ("POST", b"/"),
        ("GET", b"/docs/"),
        ("GET", b"/ui/"),
        ("GET", b"/ui/a/b.js"),
        ("GET", b"/ui/%2e%2e"),
        ("GET", b"/ui/..%2fapp.js"),
        ("GET", b"/ui/.hidden"),
        ("GET", b"/ui/swagger/x/y.js"),
        ("POST", b"/ui/app.js"),
        ("GET", b"//ui/app.js"),
    ]:
        assert not is_open(method, path), path


def test_credential_extraction() -> None:
    assert extract_credential({"Authorization": "bearer abc"}) == "abc"
    assert extract_credential({"authorization": "BEARER   abc "}) == "abc"
    assert extract_credential({"X-API-Key": "fp_x"}) == "fp_x"
    for headers in (
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer a", "X-API-Key": "b"},
        {"X-API-Key": ""},
    ):
        with pytest.raises(AuthRequired):
            extract_credential(headers)
