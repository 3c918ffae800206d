"""The KV store: API, compare-and-set, TTL, ``kv.*`` connectors in a real run, concurrency."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from api_support import ApiHarness, api_fixture, started  # noqa: F401  (the api fixture)

from flowplane.errors import KVValueNotNumeric, VersionMismatch
from flowplane.services.caller import Caller
from flowplane.services.kv import KVService, StoreKV
from flowplane.store.audit import Actor
from flowplane.store.base import Store

WRITERS = 16
ROUNDS = 5
ALICE = Actor("alice", "user")
SYSTEM = Caller.system()


async def test_api_crud_versions_and_cas(api: ApiHarness) -> None:
    c = api.client
    r = await c.put("/v1/kv/default/config/limits", json={"value": {"max": 3}})
    assert r.status_code == 201 and r.headers["etag"] == '"1"'
    body = r.json()
    assert body["key"] == "config/limits" and body["value"] == {"max": 3} and body["version"] == 1
    assert r.headers["x-request-id"]

    r = await c.get("/v1/kv/default/config/limits")
    assert r.status_code == 200 and r.json()["value"] == {"max": 3} and r.headers["etag"] == '"1"'

    r = await c.put("/v1/kv/default/config/limits", json={"value": 4}, headers={"If-Match": '"9"'})
    assert r.status_code == 412 and r.json()["code"] == "version_mismatch"
    assert r.json()["current"] == 1
    r = await c.put("/v1/kv/default/config/limits", json={"value": 4}, headers={"If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["version"] == 2

    r = await c.put(
        "/v1/kv/default/config/limits", json={"value": 5}, headers={"If-None-Match": "*"}
    )
    assert r.status_code == 412 and r.json()["current"] == 2
    r = await c.put("/v1/kv/default/fresh", json={"value": "x"}, headers={"If-None-Match": "*"})
    assert r.status_code == 201
    r = await c.put("/v1/kv/default/absent", json={"value": 1}, headers={"If-Match": '"1"'})
    assert r.status_code == 412 and r.json()["current"] == 0

    r = await c.delete("/v1/kv/default/config/limits", headers={"If-Match": '"1"'})
    assert r.status_code == 412
    assert (await c.delete("/v1/kv/default/config/limits")).status_code == 204
    r = await c.get("/v1/kv/default/config/limits")
    assert r.status_code == 404 and r.json()["code"] == "kv_key_not_found"
    assert (await c.delete("/v1/kv/default/config/limits")).status_code == 404

    for body in ({"value": None}, {"value": 1, "ttlSeconds": 0}, {"value": 1, "other": 2}, {}):
        assert (await c.put("/v1/kv/default/k", json=body)).status_code == 400, body
    assert (await c.put("/v1/kv/Bad NS/k", json={"value": 1})).status_code in (400, 404)


async def test_api_list_prefix_pagination_and_ttl(api: ApiHarness) -> None:
    c = api.client
    for key in ("a/1", "a/2", "a/3", "a_x", "b/1"):
        assert (await c.put(f"/v1/kv/ns1/{key}", json={"value": key})).status_code == 201
    await c.put("/v1/kv/ns2/a/9", json={"value": 0})
    page = (await c.get("/v1/kv/ns1", params={"prefix": "a/", "limit": 2})).json()
    assert [i["key"] for i in page["items"]] == ["a/1", "a/2"] and page["nextCursor"] == "a/2"
    rest = (await c.get("/v1/kv/ns1", params={"prefix": "a/", "cursor": page["nextCursor"]})).json()
    assert [i["key"] for i in rest["items"]] == ["a/3"] and rest["nextCursor"] is None
    # "_" in a prefix is literal, not a LIKE wildcard.
    assert [i["key"] for i in (await c.get("/v1/kv/ns1?prefix=a_")).json()["items"]] == ["a_x"]

    # A TTL long enough for the read before it to be in time on a loaded machine.
    r = await c.put("/v1/kv/ns1/short", json={"value": 1, "ttlSeconds": 1.0})
    expires_ms = r.json()["expiresAtMs"]
    assert expires_ms is not None
    assert (await c.get("/v1/kv/ns1/short")).status_code == 200
    await asyncio.sleep(max(0.0, expires_ms / 1000 - time.time()) + 0.05)
    assert (await c.get("/v1/kv/ns1/short")).status_code == 404
    assert "short" not in [i["key"] for i in (await c.get("/v1/kv/ns1")).json()["items"]]
    r = await c.put("/v1/kv/ns1/short", json={"value": 2})
    assert r.status_code == 201 and r.json()["version"] == 2  # versions continue after expiry
    assert r.json()["expiresAtMs"] is None


async def test_api_roles_and_namespaces(api: ApiHarness) -> None:
    await api.client.put("/v1/kv/team-b/secret-plan", json={"value": 1})
    viewer = await api.key("viewer", namespaces=["team-a"])
    editor = await api.key("editor", namespaces=["team-a"])
    async with api.client_for(viewer) as as_viewer:
        assert (await as_viewer.get("/v1/kv/team-a")).status_code == 200
        assert (await as_viewer.put("/v1/kv/team-a/k", json={"value": 1})).status_code == 403
        assert (await as_viewer.get("/v1/kv/team-b/secret-plan")).status_code == 404
        assert (await as_viewer.get("/v1/kv/team-b")).status_code == 404
    async with api.client_for(editor) as as_editor:
        assert (await as_editor.put("/v1/kv/team-a/k", json={"value": 1})).status_code == 201
        assert (await as_editor.put("/v1/kv/team-b/k", json={"value": 1})).status_code == 404
        assert (await as_editor.delete("/v1/kv/team-b/secret-plan")).status_code == 404
    async with api.client_for(None) as anonymous:
        assert (await anonymous.get("/v1/kv/team-a")).status_code == 401


async def test_mutations_are_audited(api: ApiHarness) -> None:
    c = api.client
    r = await c.put("/v1/kv/default/n", json={"value": 1}, headers={"X-Request-Id": "req-kv-1"})
    assert r.headers["x-request-id"] == "req-kv-1"
    await c.delete("/v1/kv/default/n")
    items = (await c.get("/v1/audit", params={"targetType": "kv"})).json()["items"]
    assert [(i["action"], i["beforeVersion"], i["afterVersion"]) for i in items] == [
        ("kv.delete", 1, None),
        ("kv.set", None, 1),
    ]
    assert items[1]["requestId"] == "req-kv-1" and items[1]["actorKind"] == "api_key"
    assert all(i["details"] is None or "value" not in i["details"] for i in items)


async def test_connectors_in_a_real_run(db: tuple[str, str], tmp_path: Path) -> None:
    async with started(db, tmp_path / "root", workers=1) as api:
        await api.client.put("/v1/kv/shop/greeting", json={"value": {"text": "hi"}})
        doc = {
            "name": "kv-flow",
            "namespace": "shop",
            "nodes": [
                {"id": "read", "type": "kv.get", "params": {"key": "greeting"}},
                {"id": "miss", "type": "kv.get", "params": {"key": "nope", "default": 7}},
                {
                    "id": "write",
                    "type": "kv.set",
                    "params": {"key": "copy", "value": "{{ nodes.read.output.value }}"},
                },
                {"id": "inc1", "type": "kv.increment", "params": {"key": "hits"}},
                {"id": "inc2", "type": "kv.increment", "params": {"key": "hits", "amount": 4}},
                {"id": "drop", "type": "kv.delete", "params": {"key": "greeting"}},
            ],
        }
        services = api.services
        started_run = await services.runs.start(Caller.system(), doc)
        run = await services.runs.wait(Caller.system(), started_run.run.id, timeout=30)
        assert run.status == "finished", run
        nodes = {n.node_id: n.output for n in await services.runs.nodes(Caller.system(), run.id)}
        assert nodes["read"] == {"value": {"text": "hi"}, "found": True}
        assert nodes["miss"] == {"value": 7, "found": False}
        assert nodes["inc2"] == {"value": 5}
        assert nodes["drop"] == {"deleted": True}
        assert (await api.client.get("/v1/kv/shop/copy")).json()["value"] == {"text": "hi"}
        assert (await api.client.get("/v1/kv/shop/hits")).json()["value"] == 5
        assert (await api.client.get("/v1/kv/shop/greeting")).status_code == 404
        audit = (await api.client.get("/v1/audit", params={"namespace": "shop"})).json()
        kinds = {(i["action"], i["actorKind"]) for i in audit["items"]}
        assert ("kv.increment", "workflow") in kinds and ("kv.set", "api_key") in kinds


@contextlib.asynccontextmanager
async def _stores(db: tuple[str, str]) -> AsyncIterator[list[Store]]:
    """Two stores on one database, like two processes (PostgreSQL: 16 write threads)."""
    url, schema = db
    first = await Store.open(url, schema=schema)
    second = await Store.open(url, schema=schema, migrate=False)
    try:
        yield [first, second]
    finally:
        await second.close()
        await first.close()


async def test_cas_no_lost_updates_16_writers(db: tuple[str, str]) -> None:
    async with _stores(db) as stores:
        services = [KVService(s) for s in stores]
        await services[0].put(SYSTEM, "default", "counter", 0, actor=ALICE)
        conflicts = 0

        async def writer(index: int) -> None:
            nonlocal conflicts
            kv = services[index % len(services)]
            for _ in range(ROUNDS):
                while True:
                    entry = await kv.get(SYSTEM, "default", "counter")
                    try:
                        await kv.put(
                            SYSTEM,
                            "default",
                            "counter",
                            entry.value + 1,
                            if_match=entry.version,
                            actor=ALICE,
                        )
                        break
                    except VersionMismatch as exc:
                        assert exc.extra["current"] >= entry.version + 1
                        conflicts += 1

        await asyncio.gather(*(writer(i) for i in range(WRITERS)))
        entry = await services[1].get(SYSTEM, "default", "counter")
        assert entry.value == WRITERS * ROUNDS
        assert entry.version == WRITERS * ROUNDS + 1


async def test_increment_no_lost_updates_16_writers(db: tuple[str, str]) -> None:
    async with _stores(db) as stores:
        accessors = [StoreKV(KVService(s), "default") for s in stores]
        start = time.monotonic()

        async def writer(index: int) -> None:
            kv = accessors[index % len(accessors)]
            for _ in range(ROUNDS):
                await kv.increment("hits")  # the first ones race to create the key

        await asyncio.gather(*(writer(i) for i in range(WRITERS)))
        entry = await KVService(stores[0]).get(SYSTEM, "default", "hits")
        assert entry.value == WRITERS * ROUNDS and entry.version == WRITERS * ROUNDS
        assert time.monotonic() - start < 30
        # Fractions add up too, and a non-number refuses to be incremented.
        assert await accessors[0].increment("hits", -0.5) == WRITERS * ROUNDS - 0.5
        await accessors[0].set("word", "abc")
        with pytest.raises(KVValueNotNumeric):
            await accessors[1].increment("word")
