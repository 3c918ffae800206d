"""The browser's pages over HTTP: the web UI at ``/``, its files under ``/ui/``, Swagger UI at
``/docs`` and ``/openapi.json`` are open (a page cannot send a header before sign-in); the
API stays closed, and nothing outside the built UI folder is served."""

from __future__ import annotations

from api_support import ApiHarness, api_fixture  # noqa: F401  (the api fixture)


async def test_the_ui_and_its_files_are_served_without_credentials(api: ApiHarness) -> None:
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    async with api.client_for(None) as anon:
        index = await anon.get("/", headers=browser)
        assert index.status_code == 200
        assert index.headers["content-type"].startswith("text/html")
        assert '<script src="/ui/app.js">' in index.text
        assert "script-src 'self'" in index.headers["content-security-policy"]
        assert index.headers["x-frame-options"] == "DENY"
        for path, media in (
            ("/ui/app.js", "text/javascript"),
            ("/ui/style.css", "text/css"),
            ("/ui/favicon.svg", "image/svg+xml"),
            ("/ui/swagger/swagger-ui-bundle.js", "text/javascript"),
            ("/ui/swagger/swagger-ui.css", "text/css"),
        ):
            r = await anon.get(path)
            assert r.status_code == 200, path
            assert r.headers["content-type"].startswith(media), path
        assert (await anon.head("/", headers=browser)).status_code == 200
        # An API client (no text/html in Accept) gets Smithers' 404 at /, not the page.
        api_client = await anon.get("/", headers={"Accept": "application/json"})
        assert api_client.status_code == 404
        assert api_client.json()["error"]["code"] == "NOT_FOUND"
        assert (await anon.get("/ui/nope.js")).status_code == 404


async def test_nothing_else_opens(api: ApiHarness) -> None:
    async with api.client_for(None) as anon:
        for path in (
            # (httpx resolves "../" itself; encoded dots and slashes reach the server as sent.)
            "/ui/%2e%2e/api/app.py",
            "/ui/..%2f..%2fpyproject.toml",
            "/ui/swagger/%2e%2e%2fapp.js",
            "/ui/static/app.js",
            "/ui/",
            "/docs/",
            "/metrics",
            "/v1/runs",
            "/v1/auth/me",
        ):
            r = await anon.get(anon.base_url.copy_with(raw_path=path.encode()))
            assert r.status_code == 401, path
        assert (await anon.post("/")).status_code == 401
        assert (await anon.post("/docs")).status_code == 401


async def test_swagger_ui_opens_and_offers_an_api_key(api: ApiHarness) -> None:
    async with api.client_for(None) as anon:
        docs = await anon.get("/docs")
        assert docs.status_code == 200
        assert "/ui/swagger/swagger-ui-bundle.js" in docs.text
        assert "/openapi.json" in docs.text
        assert "cdn" not in docs.text.lower()  # the package's own copy: works offline
        document = (await anon.get("/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["apiKeyHeader"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    assert "/" not in document["paths"] and "/docs" not in document["paths"]
    me = document["paths"]["/v1/auth/me"]["get"]
    assert {"apiKeyHeader": []} in me["security"]
