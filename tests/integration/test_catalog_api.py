"""The connector catalogue over HTTP."""

from __future__ import annotations

import json

from api_support import ApiHarness, api_fixture  # noqa: F401


async def test_summary_lists_every_connector_compactly(api: ApiHarness) -> None:
    viewer = await api.key("viewer")
    async with api.client_for(viewer) as client:
        r = await client.get("/v1/connectors", params={"detail": "summary"})
    assert r.status_code == 200
    body = r.json()
    assert body["count"] >= 85 and len(body["items"]) == body["count"]
    assert set(body["items"][0]) == {"type", "name", "category", "description"}
    assert len(json.dumps(body["items"], separators=(",", ":"))) < 24_000


async def test_full_detail_category_and_query_filters(api: ApiHarness) -> None:
    r = await api.client.get("/v1/connectors", params={"detail": "full", "category": "http"})
    items = r.json()["items"]
    assert items and all(i["category"] == "http" for i in items)
    assert {"inputSchema", "outputSchema", "secrets", "examples", "kind"} <= set(items[0])
    r = await api.client.get("/v1/connectors", params={"q": "jmespath"})
    assert [i["type"] for i in r.json()["items"]] == ["data.transform"]


async def test_categories_and_one_connector(api: ApiHarness) -> None:
    r = await api.client.get("/v1/connectors/categories")
    categories = {c["name"]: c["count"] for c in r.json()}
    assert categories["data"] >= 20 and "http" in categories
    r = await api.client.get("/v1/connectors/http.request")
    assert r.status_code == 200 and r.json()["inputSchema"]["required"] == ["url"]
    r = await api.client.get("/v1/connectors/util.lgo")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "util.log" in r.json()["suggestions"]


async def test_catalog_needs_a_token(api: ApiHarness) -> None:
    async with api.client_for(None) as anonymous:
        r = await anonymous.get("/v1/connectors")
    assert r.status_code == 401
