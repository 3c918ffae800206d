"""workflowdev's ``/auth/register`` stays fail-closed (in-process API, SQLite and PostgreSQL).

Without ``FLOWPLANE_OPEN_FIRST_REGISTRATION`` nobody registers without credentials; with
it, only the first user does; an admin registers anyone; a lower role gets 403.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from api_support import BASE_URL, ApiHarness, api_fixture, started

api = api_fixture  # the ``api`` fixture, on SQLite and PostgreSQL
PASSWORD = "a long enough passphrase"


def anonymous(api: ApiHarness) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=api.app), base_url=BASE_URL)


async def test_registering_without_credentials_is_refused_by_default(api: ApiHarness) -> None:
    async with anonymous(api) as c:
        r = await c.post(
            "/auth/register", json={"username": "eve", "password": PASSWORD, "role": "admin"}
        )
    assert r.status_code == 401
    assert r.json() == {
        "error": "registering a user needs an admin's credentials",
        "code": "unauthorized",
        "status": 401,
    }
    assert (await api.client.get("/v1/auth/users")).json()["items"] == []


async def test_an_admin_registers_and_the_token_works(api: ApiHarness) -> None:
    r = await api.client.post(
        "/auth/register", json={"username": "ed", "password": PASSWORD, "role": "editor"}
    )
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    me = await api.client.get("/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["name"] == "ed" and me.json()["role"] == "editor"
    # A lower role may not register anyone.
    editor = {"Authorization": f"Bearer {token}"}
    refused = await api.client.post(
        "/auth/register",
        headers=editor,
        json={"username": "x", "password": PASSWORD, "role": "viewer"},
    )
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    taken = await api.client.post(
        "/auth/register", json={"username": "ed", "password": PASSWORD, "role": "viewer"}
    )
    assert taken.status_code == 409


async def test_open_first_registration_opens_for_one_user_only(
    db: tuple[str, str], tmp_path: Path
) -> None:
    async with started(db, tmp_path / "root", open_first_registration=True) as harness:
        async with anonymous(harness) as c:
            body = {"username": "first", "password": PASSWORD, "role": "admin"}
            first = await c.post("/auth/register", json=body)
            assert first.status_code == 201, first.text
            second = await c.post("/auth/register", json={**body, "username": "second"})
            assert second.status_code == 401
            short = await c.post("/auth/login", json={"username": "first", "password": "x"})
            assert short.status_code == 401 and short.json()["status"] == 401
