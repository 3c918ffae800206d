"""Hostile input: huge and deep bodies, unknown fields, bad ids and headers. Never a 5xx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from api_support import ApiHarness, started

MAX_BODY = 1024 * 1024


@pytest.fixture
async def api(db: tuple[str, str], tmp_path: Path) -> AsyncIterator[ApiHarness]:
    async with started(db, tmp_path / "root", max_body_bytes=MAX_BODY) as harness:
        yield harness


def assert_problem(r: httpx.Response, status: int, code: str | None = None) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status and isinstance(body["code"], str) and body["title"]
    if code is not None:
        assert body["code"] == code


async def test_oversized_bodies_are_413(api: ApiHarness) -> None:
    big = b'{"name": "' + b"x" * (MAX_BODY + 10) + b'", "role": "viewer"}'
    r = await api.client.post(
        "/v1/auth/tokens", content=big, headers={"Content-Type": "application/json"}
    )
    assert_problem(r, 413, "payload_too_large")

    async def stream() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        for _ in range(MAX_BODY // 1024 + 2):
            yield b" " * 1024

    r = await api.client.post(
        "/v1/auth/tokens", content=stream(), headers={"Content-Type": "application/json"}
    )
    assert_problem(r, 413, "payload_too_large")
    # A lying Content-Length is refused before anything is read.
    r = await api.client.post(
        "/v1/auth/tokens", content=b"{}", headers={"Content-Length": str(10 * MAX_BODY)}
    )
    assert r.status_code == 413


@pytest.mark.parametrize("depth", [65, 1000, 100_000])
async def test_deep_json_is_400_never_500(api: ApiHarness, depth: int) -> None:
    for opener, closer in ((b"[", b"]"), (b'{"a":', b"}")):
        body = opener * depth + b"1" + closer * depth
        for path in ("/v1/auth/tokens", "/v1/auth/login", "/v1/auth/users"):
            r = await api.client.post(
                path, content=body, headers={"Content-Type": "application/json"}
            )
            assert_problem(r, 400, "json_too_deep")


async def test_malformed_and_unknown_fields(api: ApiHarness) -> None:
    cases: list[tuple[str, str, object]] = [
        ("POST", "/v1/auth/tokens", {"name": "x", "role": "viewer", "isAdmin": True}),
        ("POST", "/v1/auth/tokens", {"name": "x", "role": "root"}),
        ("POST", "/v1/auth/tokens", {"name": "x\u0000y", "role": "viewer"}),
        ("POST", "/v1/auth/tokens", {"name": "x", "role": "viewer", "namespaces": []}),
        ("POST", "/v1/auth/tokens", {"name": "x", "role": "viewer", "namespaces": ["A/B"]}),
        ("POST", "/v1/auth/tokens", {"name": "x", "role": "viewer", "expiresInSeconds": -1}),
        ("POST", "/v1/auth/tokens", [1, 2, 3]),
        ("POST", "/v1/auth/tokens", "just a string"),
        ("POST", "/v1/auth/users", {"username": "a b", "password": "p" * 10, "role": "viewer"}),
        ("POST", "/v1/auth/users", {"username": "ok", "password": "short", "role": "viewer"}),
        ("POST", "/v1/auth/login", {"username": "x", "password": "y", "extra": 1}),
        ("PATCH", "/v1/auth/users/abc", {"role": "viewer", "superuser": True}),
    ]
    for method, path, body in cases:
        r = await api.client.request(method, path, json=body)
        assert_problem(r, 400)
    for raw in (b"{", b"{'a': 1}", b"\xff\xfe", b"null", b"NaN"):
        r = await api.client.post(
            "/v1/auth/tokens", content=raw, headers={"Content-Type": "application/json"}
        )
        assert_problem(r, 400)


async def test_bad_ids_are_4xx(api: ApiHarness) -> None:
    for bad in ("nope", "..%2F..%2Fetc", "%00", "x" * 5000, "%F0%9F%92%A9", "a%20b", "'; DROP"):
        for path in (f"/v1/auth/tokens/{bad}", f"/v1/auth/users/{bad}"):
            r = await api.client.get(path)
            assert r.status_code in (400, 404), (path, r.status_code)
            assert r.headers["content-type"] == "application/problem+json"


async def test_bad_credentials_headers(api: ApiHarness) -> None:
    async with api.client_for(None) as anon:
        for headers in (
            {"Authorization": "Bearer nothing"},
            {"Authorization": "Bearer"},
            {"Authorization": "Bearer " + "x" * 10_000},
            {"Authorization": ("Bearer fp_" + "\u00e9" * 50).encode()},
            {"X-API-Key": "fp_" + "0" * 100},
            {"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."},
        ):
            r = await anon.get("/v1/auth/me", headers=headers)
            assert_problem(r, 401, "unauthorized")


async def test_bad_if_match_never_500(api: ApiHarness) -> None:
    # Routes without optimistic concurrency ignore If-Match; none may crash on it.
    for value in ('"abc"', "W/", "*", '"' + "9" * 400 + '"', "\u00e9"):
        r = await api.client.get("/v1/auth/me", headers={"If-Match": value.encode("utf-8")})
        assert r.status_code < 500
    schema = api.app.openapi()
    patchable = [
        (path, method)
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if any(p.get("name", "").lower() == "if-match" for p in op.get("parameters", []))
    ]
    for path, method in patchable:
        url = path.replace("{", "").replace("}", "")
        for value in ('"abc"', '"-1"', 'W/"1"', "garbage", '"' + "9" * 400 + '"'):
            r = await api.client.request(method, url, json={}, headers={"If-Match": value})
            assert 400 <= r.status_code < 500, (method, path, value, r.status_code)
