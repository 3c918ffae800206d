"""Auth on both backends: keys, users, login tokens, revocation, bootstrap, rate limits, ops."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from api_support import ApiHarness, api_fixture, started  # noqa: F401

from flowplane.api.app import create_app
from flowplane.security import tokens
from flowplane.services.auth import LOCAL
from flowplane.settings import Settings

PASSWORD = "correct horse battery"


async def test_api_keys_lifecycle(api: ApiHarness) -> None:
    r = await api.client.post(
        "/v1/auth/tokens", json={"name": "ci", "role": "executor", "namespaces": ["shop"]}
    )
    assert r.status_code == 201, r.text
    body = r.json()
    secret, token_id = body["secret"], body["token"]["id"]
    assert secret.startswith("fp_") and body["token"]["prefix"] == secret[:15]
    assert "secret" not in body["token"] and "keyHash" not in body["token"]

    # Bearer with any case of the scheme, or X-API-Key.
    for headers in (
        {"Authorization": f"Bearer {secret}"},
        {"Authorization": f"bearer {secret}"},
        {"Authorization": f"BEARER {secret}"},
        {"X-API-Key": secret},
    ):
        async with api.client_for(None) as anon:
            me = await anon.get("/v1/auth/me", headers=headers)
        assert me.status_code == 200, me.text
        assert me.json() == {
            "id": token_id,
            "kind": "api_key",
            "name": "ci",
            "role": "executor",
            "namespaces": ["shop"],
        }

    listed = (await api.client.get("/v1/auth/tokens")).json()["items"]
    assert token_id in [k["id"] for k in listed]
    assert secret not in (await api.client.get("/v1/auth/tokens")).text
    got = await api.client.get(f"/v1/auth/tokens/{token_id}")
    assert got.status_code == 200 and got.json()["lastUsedAtMs"] is not None

    revoked = await api.client.delete(f"/v1/auth/tokens/{token_id}")
    assert revoked.status_code == 200 and revoked.json()["active"] is False
    me = await api.client.get("/v1/auth/me", headers=api.auth(secret))
    assert me.status_code == 401
    assert me.headers["content-type"] == "application/problem+json"
    assert me.headers["www-authenticate"].startswith("Bearer")
    assert (await api.client.delete(f"/v1/auth/tokens/{token_id}")).status_code == 200
    listed = (await api.client.get("/v1/auth/tokens")).json()["items"]
    assert token_id not in [k["id"] for k in listed]
    listed = (await api.client.get("/v1/auth/tokens?includeRevoked=true")).json()["items"]
    assert token_id in [k["id"] for k in listed]


async def test_expired_and_bogus_keys(api: ApiHarness) -> None:
    created = await api.services.auth.create_api_key(
        caller=LOCAL, name="short", role="admin", expires_at_ms=int(time.time() * 1000) + 400
    )
    assert (await api.client.get("/v1/auth/me", headers=api.auth(created.secret))).is_success
    time.sleep(0.5)
    r = await api.client.get("/v1/auth/me", headers=api.auth(created.secret))
    assert r.status_code == 401 and r.json()["code"] == "unauthorized"

    forged = created.secret[:15] + "_" + "A" * 43  # right prefix, wrong secret
    for value in ("nothing", "fp_", forged, "fp_" + "x" * 60, "a.b.c", "Bearer"):
        r = await api.client.get("/v1/auth/me", headers=api.auth(value))
        assert r.status_code == 401, value
    for header in ("Bearer", "Bearer ", "Basic Zm9vOmJhcg==", "Token abc"):
        r = await api.client.get("/v1/auth/me", headers={"Authorization": header})
        assert r.status_code == 401, header
    # Two credentials at once are refused rather than guessed between.
    r = await api.client.get("/v1/auth/me", headers={"X-API-Key": api.admin_key})
    assert r.status_code == 401
    past = await api.client.post(
        "/v1/auth/tokens", json={"name": "old", "role": "viewer", "expiresAtMs": 1000}
    )
    assert past.status_code == 400


async def test_login_tokens_and_password_change_revokes(api: ApiHarness) -> None:
    r = await api.client.post(
        "/v1/auth/users", json={"username": "ada", "password": PASSWORD, "role": "editor"}
    )
    assert r.status_code == 201, r.text
    user_id = r.json()["id"]
    assert PASSWORD not in r.text and "argon2" not in r.text and "passwordHash" not in r.text
    dup = await api.client.post(
        "/v1/auth/users", json={"username": "ada", "password": PASSWORD, "role": "viewer"}
    )
    assert dup.status_code == 409

    async with api.client_for(None) as anon:
        bad = await anon.post("/v1/auth/login", json={"username": "ada", "password": "nope-nope"})
        assert bad.status_code == 401
        ghost = await anon.post("/v1/auth/login", json={"username": "ghost", "password": "x" * 9})
        assert ghost.status_code == 401 and ghost.json()["detail"] == bad.json()["detail"]
        login = await anon.post("/v1/auth/login", json={"username": "ada", "password": PASSWORD})
        assert login.status_code == 200, login.text
        token = login.json()["accessToken"]
        assert login.json()["tokenType"] == "Bearer" and login.json()["expiresIn"] > 3000

        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["iss"] == "flowplane" and claims["aud"] == "flowplane-api"
        assert jwt.get_unverified_header(token)["alg"] == "HS256"
        me = await anon.get("/v1/auth/me", headers=api.auth(token))
        assert me.json()["kind"] == "user" and me.json()["role"] == "editor"

        # An editor is not an admin.
        assert (await anon.get("/v1/auth/users", headers=api.auth(token))).status_code == 403

        # A changed password revokes every token issued before.
        changed = await anon.post(
            "/v1/auth/me/password",
            json={"currentPassword": PASSWORD, "newPassword": "another long one"},
            headers=api.auth(token),
        )
        assert changed.status_code == 200, changed.text
        assert (await anon.get("/v1/auth/me", headers=api.auth(token))).status_code == 401
        relogin = await anon.post(
            "/v1/auth/login", json={"username": "ada", "password": "another long one"}
        )
        token2 = relogin.json()["accessToken"]
        assert (await anon.get("/v1/auth/me", headers=api.auth(token2))).status_code == 200

    # An admin reset revokes too; so does disabling.
    reset = await api.client.patch(f"/v1/auth/users/{user_id}", json={"password": "third pass!"})
    assert reset.status_code == 200
    assert (await api.client.get("/v1/auth/me", headers=api.auth(token2))).status_code == 401
    token3 = (await api.services.auth.login("ada", "third pass!")).token
    assert (await api.client.patch(f"/v1/auth/users/{user_id}", json={"disabled": True})).is_success
    assert (await api.client.get("/v1/auth/me", headers=api.auth(token3))).status_code == 401
    async with api.client_for(None) as anon:
        r = await anon.post("/v1/auth/login", json={"username": "ada", "password": "third pass!"})
        assert r.status_code == 401
    assert (await api.client.delete(f"/v1/auth/users/{user_id}")).status_code == 204
    assert (await api.client.get(f"/v1/auth/users/{user_id}")).status_code == 404


async def test_forged_and_expired_jwts(api: ApiHarness) -> None:
    user = await api.services.auth.create_user(
        caller=LOCAL, username="bob", password=PASSWORD, role="admin"
    )
    secret = await api.services.auth.jwt_secret()
    now = int(time.time())
    base = {
        "sub": user.id,
        "ver": 1,
        "iat": now,
        "aud": tokens.JWT_AUDIENCE,
        "iss": tokens.JWT_ISSUER,
    }
    good = jwt.encode({**base, "exp": now + 60}, secret, algorithm="HS256")
    assert (await api.client.get("/v1/auth/me", headers=api.auth(good))).status_code == 200
    forged = {
        "alg none": jwt.encode({**base, "exp": now + 60}, None, algorithm="none"),
        "expired": jwt.encode(
            {**base, "iat": now - 7200, "exp": now - 3600}, secret, algorithm="HS256"
        ),
        "other key": jwt.encode(
            {**base, "exp": now + 60}, "k" * 16 + "ey-of-someone-else", algorithm="HS256"
        ),
        "no exp": jwt.encode(base, secret, algorithm="HS256"),
        "wrong aud": jwt.encode({**base, "exp": now + 60, "aud": "x"}, secret, algorithm="HS256"),
        "old version": jwt.encode({**base, "exp": now + 60, "ver": 0}, secret, algorithm="HS256"),
        "unknown user": jwt.encode(
            {**base, "exp": now + 60, "sub": "nobody"}, secret, algorithm="HS256"
        ),
    }
    for label, token in forged.items():
        r = await api.client.get("/v1/auth/me", headers=api.auth(token))
        assert r.status_code == 401, label


async def test_namespace_restricted_admin_cannot_escalate(api: ApiHarness) -> None:
    tenant = await api.key("admin", ["team-a"])
    other = await api.services.auth.create_api_key(
        caller=LOCAL, name="b", role="viewer", namespaces=["team-b"]
    )
    mine = await api.client.post(
        "/v1/auth/tokens",
        json={"name": "a2", "role": "executor", "namespaces": ["team-a"]},
        headers=api.auth(tenant),
    )
    assert mine.status_code == 201
    for namespaces in (None, ["team-b"], ["team-a", "team-b"]):
        r = await api.client.post(
            "/v1/auth/tokens",
            json={"name": "esc", "role": "admin", "namespaces": namespaces},
            headers=api.auth(tenant),
        )
        assert r.status_code == 400, namespaces
    listed = await api.client.get("/v1/auth/tokens", headers=api.auth(tenant))
    ids = {k["id"] for k in listed.json()["items"]}
    assert mine.json()["token"]["id"] in ids and other.info.id not in ids
    for method in ("GET", "DELETE"):
        r = await api.client.request(
            method, f"/v1/auth/tokens/{other.info.id}", headers=api.auth(tenant)
        )
        assert r.status_code == 404, method
    assert (await api.client.get(f"/v1/auth/tokens/{other.info.id}")).json()["active"]


async def test_rate_limit(api: ApiHarness) -> None:
    key = await api.key("viewer", rate_limit_per_minute=3)
    seen = []
    for _ in range(3):
        r = await api.client.get("/v1/auth/me", headers=api.auth(key))
        assert r.status_code == 200
        assert r.headers["ratelimit-policy"] == '"default";q=3;w=60'
        seen.append(r.headers["ratelimit"])
    assert seen[0].startswith('"default";r=2;') and seen[-1].startswith('"default";r=0;')
    # Anonymous, open and refused requests take nothing from anyone's bucket.
    async with api.client_for(None) as anon:
        for _ in range(5):
            assert (await anon.get("/health")).status_code == 200
            assert (await anon.get("/v1/auth/me")).status_code == 401
    limited = await api.client.get("/v1/auth/me", headers=api.auth(key))
    assert limited.status_code == 429
    problem = limited.json()
    assert problem["code"] == "rate_limited" and 0 < problem["retryAfterMs"] <= 20_000
    assert limited.headers["content-type"] == "application/problem+json"
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["ratelimit"].startswith('"default";r=0;')
    # Other keys have their own buckets.
    assert (await api.client.get("/v1/auth/me")).status_code == 200


async def test_readyz_names_a_migration_behind(api: ApiHarness) -> None:
    import sqlalchemy as sa

    from flowplane.store.migrate import LATEST_REVISION, VERSION_TABLE

    store = api.services.store
    version = sa.table(VERSION_TABLE, sa.column("version_num", sa.String))

    def set_version(tx: Any, value: str) -> None:
        tx.conn.execute(version.update().values(version_num=value))

    await store.transact(lambda tx: set_version(tx, "0009"))
    try:
        async with api.client_for(None) as anon:
            ready = await anon.get("/readyz")
        assert ready.status_code == 503, ready.text
        body = ready.json()
        assert body["code"] == "not_ready" and body["migration"] == "0009"
        assert f"expected {LATEST_REVISION}" in body["detail"]
    finally:
        await store.transact(lambda tx: set_version(tx, LATEST_REVISION))


async def test_ops_routes(api: ApiHarness) -> None:
    async with api.client_for(None) as anon:
        health = await anon.get("/health")
        assert health.json() == {"status": "ok", "version": health.json()["version"]}
        ready = await anon.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        assert (await anon.get("/metrics")).status_code == 401
        # The API's description is open (Swagger UI at /docs reads it before sign-in).
        assert (await anon.get("/openapi.json")).status_code == 200
        # Only the exact open routes are open.
        for path in (
            "/health/",
            "//health",
            "/%68ealth",
            "/v1/kv/xhealth",
            "/readyz/",
            "/HEALTH",
            "/health%2F",
            "/v1/auth/login/",
        ):
            # The raw path as written (httpx would read "//health" as a host named health).
            r = await anon.get(anon.base_url.copy_with(raw_path=path.encode()))
            assert r.status_code == 401, path
    metrics = await api.client.get("/metrics", headers=api.auth(await api.key("viewer")))
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'flowplane_http_requests_total{method="GET",route="/health",status="200"}' in text
    assert 'route="/metrics",status="401"' in text
    assert "flowplane_queue_depth 0.0" in text
    for family in (
        "flowplane_runs_started",
        "flowplane_runs_finished",
        "flowplane_runs_failed",
        "flowplane_node_duration_seconds",
        "flowplane_http_request_duration_seconds",
    ):
        assert f"# TYPE {family}" in text, family


async def test_first_start_prints_an_admin_key_once(
    db: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, schema = db
    settings = Settings(database_url=url, database_schema=schema, workers=0, data_dir=tmp_path)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        pass
    err = capsys.readouterr().err
    assert err.count("Admin API key (shown once): fp_") == 1
    key = err.split("Admin API key (shown once): ")[1].split()[0]
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        info = await app.state.services.auth.authenticate_key(key)
        assert info.role == "admin" and info.namespaces is None
        # The generated JWT secret is kept, so every process signs with the same key.
        assert len(await app.state.services.auth.jwt_secret()) >= 32
    assert "Admin API key" not in capsys.readouterr().err


async def test_configured_admin_key_and_bad_secrets(db: tuple[str, str], tmp_path: Path) -> None:
    async with started(db, tmp_path / "a") as harness:
        r = await harness.client.get("/v1/auth/me")
        assert r.json()["name"] == "admin (FLOWPLANE_ADMIN_KEY)"
    url, schema = db
    bad = Settings(database_url=url, database_schema=schema, workers=0, admin_key="fp_short")
    app = create_app(bad)
    with pytest.raises(ValueError, match="FLOWPLANE_ADMIN_KEY"):
        async with app.router.lifespan_context(app):
            pass


async def test_openapi_is_exact(api: ApiHarness) -> None:
    from flowplane.api.deps import api_routes
    from flowplane.api.security import is_open

    document = (await api.client.get("/openapi.json")).json()
    paths = document["paths"]
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for info in api_routes(api.app):
        for method in info.methods:
            operation = paths[info.path][method.lower()]
            responses = operation["responses"]
            # FastAPI's validation 422 is replaced by a 400 problem; a declared 422 (such as
            # idempotency_key_reused) is a problem document like every other error.
            assert "HTTPValidationError" not in repr(responses.get("422")), (method, info.path)
            success = [s for s in responses if s.startswith("2")]
            assert success, (method, info.path)
            for status in success:
                if status != "204":
                    content = responses[status].get("content")
                    assert content and all(c.get("schema") for c in content.values()), (
                        method,
                        info.path,
                        status,
                    )
            # Errors are problem documents, except on a seed surface that declares its own.
            error_media = list(operation.get("x-error-content") or ["application/problem+json"])
            for status, response in responses.items():
                if int(status) >= 400:
                    assert list(response["content"]) == error_media
            # Routes opened by a pattern (signed webhooks) are marked in the document.
            if not (is_open(method, info.path.encode()) or operation.get("x-flowplane-public")):
                assert {"401", "429"} <= set(responses) and operation["security"]
                assert operation["x-required-role"] == info.role
            if info.role not in (None, "viewer"):
                assert "403" in responses
            if "{" in info.path:
                assert "404" in responses
