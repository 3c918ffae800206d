"""``/v1/credentials``: write-only values, sealed at rest, namespaces, versions, rotation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from api_support import ApiHarness, started

from flowplane.security.crypto import KeyRing, generate_key, key_id_of
from flowplane.services.credentials import DatabaseSecrets, rotate_key
from flowplane.store import schema as t
from flowplane.store.audit import Actor

VALUE = "tok-9f8e7d6c5b4a"
KEY = generate_key()


@pytest.fixture
async def api(db: tuple[str, str], tmp_path: Path) -> AsyncIterator[ApiHarness]:
    """A started app with a master key."""
    async with started(db, tmp_path / "root", secret_key=KEY) as harness:
        yield harness


async def _rows(api: ApiHarness) -> list[dict[str, Any]]:
    def read(tx: Any) -> list[dict[str, Any]]:
        return [dict(r._mapping) for r in tx.conn.execute(sa.select(t.credentials))]

    return await api.services.store.read(read)


async def test_lifecycle_never_returns_the_value(api: ApiHarness) -> None:
    c = api.client
    r = await c.post(
        "/v1/credentials",
        json={"name": "SHOP_TOKEN", "type": "api_key", "value": VALUE, "description": "shop"},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    cred_id = body["id"]
    assert r.headers["etag"] == '"1"' and r.headers["location"] == f"/v1/credentials/{cred_id}"
    assert body["name"] == "SHOP_TOKEN" and body["namespace"] == "default"
    assert body["type"] == "api_key" and body["version"] == 1 and "value" not in body
    assert body["createdBy"] and body["createdAtMs"] > 0 and body["createdAt"].endswith("Z")

    r = await c.post("/v1/credentials", json={"name": "SHOP_TOKEN", "value": "x" * 8})
    assert r.status_code == 409 and r.json()["code"] == "credential_exists"

    r = await c.get(f"/v1/credentials/{cred_id}")
    assert r.status_code == 200 and r.headers["etag"] == '"1"'
    listing = (await c.get("/v1/credentials")).json()
    assert [i["name"] for i in listing["items"]] == ["SHOP_TOKEN"]

    r = await c.put(
        f"/v1/credentials/{cred_id}", json={"value": VALUE + "-2"}, headers={"If-Match": '"7"'}
    )
    assert r.status_code == 412 and r.json()["current"] == 1
    r = await c.put(
        f"/v1/credentials/{cred_id}", json={"value": VALUE + "-2"}, headers={"If-Match": '"1"'}
    )
    assert r.status_code == 200 and r.json()["version"] == 2 and r.headers["etag"] == '"2"'

    (row,) = await _rows(api)
    assert VALUE not in str(row) and key_id_of(row["envelope"]) == row["key_id"]
    secrets = DatabaseSecrets(api.services.store, KeyRing.parse(KEY))
    assert await secrets.resolve("default", ["SHOP_TOKEN", "NOPE"]) == {"SHOP_TOKEN": VALUE + "-2"}
    assert await secrets.resolve("other", ["SHOP_TOKEN"]) == {}

    for text in (r.text, listing.__repr__(), (await c.get("/v1/audit")).text):
        assert VALUE not in text

    assert (await c.delete(f"/v1/credentials/{cred_id}")).status_code == 204
    r = await c.get(f"/v1/credentials/{cred_id}")
    assert r.status_code == 404 and r.json()["code"] == "credential_not_found"
    assert (await c.delete(f"/v1/credentials/{cred_id}")).status_code == 404


async def test_validation_roles_and_namespaces(api: ApiHarness) -> None:
    c = api.client
    for body in (
        {"name": "bad-name", "value": "v"},
        {"name": "OK", "value": ""},
        {"name": "OK", "value": "v", "secret": "extra"},
        {"name": "OK", "value": "v", "namespace": "Bad NS"},
    ):
        r = await c.post("/v1/credentials", json=body)
        assert r.status_code == 400, body

    editor = await api.key("editor")
    r = await c.post(
        "/v1/credentials", json={"name": "A", "value": VALUE}, headers=api.auth(editor)
    )
    assert r.status_code == 403

    team_admin = await api.key("admin", namespaces=["team-a"])
    r = await c.post(
        "/v1/credentials",
        json={"name": "A", "value": VALUE, "namespace": "team-b"},
        headers=api.auth(team_admin),
    )
    assert r.status_code == 404
    other = (
        await c.post("/v1/credentials", json={"name": "B", "value": VALUE, "namespace": "team-b"})
    ).json()
    mine = await c.post(
        "/v1/credentials",
        json={"name": "A", "value": VALUE, "namespace": "team-a"},
        headers=api.auth(team_admin),
    )
    assert mine.status_code == 201
    for method in ("get", "delete"):
        r = await c.request(method, f"/v1/credentials/{other['id']}", headers=api.auth(team_admin))
        assert r.status_code == 404
    r = await c.put(
        f"/v1/credentials/{other['id']}", json={"value": "zzzz"}, headers=api.auth(team_admin)
    )
    assert r.status_code == 404
    names = [
        i["name"]
        for i in (await c.get("/v1/credentials", headers=api.auth(team_admin))).json()["items"]
    ]
    assert names == ["A"]

    page = (await c.get("/v1/credentials", params={"limit": 1})).json()
    assert len(page["items"]) == 1 and page["nextCursor"]
    rest = (await c.get("/v1/credentials", params={"cursor": page["nextCursor"]})).json()
    assert [i["name"] for i in page["items"] + rest["items"]] == ["A", "B"]


async def test_without_a_secret_key_nothing_is_stored(db: tuple[str, str], tmp_path: Path) -> None:
    # No FLOWPLANE_SECRET_KEY and no master key file in the data folder (only `serve` on
    # SQLite generates one).
    async with started(db, tmp_path / "root", data_dir=tmp_path / "data") as api:
        r = await api.client.post("/v1/credentials", json={"name": "A", "value": VALUE})
        assert r.status_code == 503
        problem = r.json()
        assert (
            problem["code"] == "secret_key_missing" and "FLOWPLANE_SECRET_KEY" in problem["detail"]
        )
        assert VALUE not in r.text
        assert await _rows(api) == []
        assert (await api.client.get("/v1/credentials")).json()["items"] == []


async def test_rotate_key_reencrypts_everything(api: ApiHarness) -> None:
    for i in range(3):
        r = await api.client.post(
            "/v1/credentials", json={"name": f"S{i}", "value": f"{VALUE}-{i}", "namespace": f"n{i}"}
        )
        assert r.status_code == 201
    new_key = generate_key()
    ring = KeyRing.parse(new_key, old=KEY)
    report = await rotate_key(api.services.store, ring, actor=Actor("ops", "cli"))
    assert report.rotated == 3 and report.key_id == ring.current.kid
    assert (await rotate_key(api.services.store, ring, actor=Actor("ops", "cli"))).rotated == 0
    rows = await _rows(api)
    assert {r["key_id"] for r in rows} == {ring.current.kid}
    assert all(key_id_of(r["envelope"]) == ring.current.kid for r in rows)
    # The old key is no longer needed.
    secrets = DatabaseSecrets(api.services.store, KeyRing.parse(new_key))
    assert await secrets.resolve("n1", ["S1"]) == {"S1": f"{VALUE}-1"}
    listing = (await api.client.get("/v1/credentials")).json()["items"]
    assert {i["keyId"] for i in listing} == {ring.current.kid}
    audit = (await api.client.get("/v1/audit", params={"action": "credential.rotate_key"})).json()
    assert len(audit["items"]) == 3 and {i["actor"] for i in audit["items"]} == {"ops"}


async def test_env_fallback(api: ApiHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWPLANE_SECRET_FROM_ENV", "env-value")
    await api.client.post("/v1/credentials", json={"name": "FROM_ENV", "value": "db-value"})
    secrets = DatabaseSecrets(api.services.store, KeyRing.parse(KEY))
    assert await secrets.resolve("default", ["FROM_ENV"]) == {"FROM_ENV": "db-value"}
    assert await secrets.resolve("elsewhere", ["FROM_ENV"]) == {"FROM_ENV": "env-value"}
