"""The browser's pages: the web UI at ``/`` and Swagger UI at ``/docs``.

Both are static files shipped inside the package (``flowplane/ui/static/``, built from
``ui/`` by esbuild; see docs/ui.md), so a pip-installed server needs no Node.js. They are
open routes (the security gate lists them): a page cannot send a header before the user
signs in. The UI then calls the ``/v1`` API with the user's own token, so it can do
nothing the API would not let that user do.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response

from flowplane.errors import NotFound

STATIC = Path(__file__).resolve().parent.parent.parent / "ui" / "static"
"""The built UI (index.html, app.js, style.css, favicon.svg, swagger/)."""
ASSET_NAME = re.compile(r"(swagger/)?[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".map": "application/json",
}
_HEADERS = {
    # Revalidate every load (the names carry no hash), and keep other sites from framing.
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)

router = APIRouter(include_in_schema=False)


def _file(name: str) -> FileResponse:
    path = STATIC / name
    if not ASSET_NAME.fullmatch(name) or not path.is_file():
        raise HTTPException(404, f"no UI asset {name!r}")
    media = _TYPES.get(path.suffix, "application/octet-stream")
    return FileResponse(path, media_type=media, headers=_HEADERS)


@router.get("/")
async def index(request: Request) -> FileResponse:
    """The web UI (one page; its views are addressed by the URL fragment).

    Only for a browser (``Accept`` names ``text/html``): an API client asking for ``/``
    gets the 404 ``NOT_FOUND`` that Smithers' server answers there.
    """
    if "text/html" not in request.headers.get("accept", ""):
        raise NotFound("Route not found")
    response = _file("index.html")
    response.headers["Content-Security-Policy"] = _CSP
    return response


@router.get("/ui/{name:path}")
async def asset(name: str) -> FileResponse:
    """A file of the built UI."""
    return _file(name)


@router.get("/docs")
async def swagger() -> HTMLResponse:
    """Swagger UI over ``/openapi.json``, from the package's own copy (no CDN)."""
    page = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Flowplane API",
        swagger_js_url="/ui/swagger/swagger-ui-bundle.js",
        swagger_css_url="/ui/swagger/swagger-ui.css",
        swagger_favicon_url="/ui/favicon.svg",
        swagger_ui_parameters={"persistAuthorization": True, "docExpansion": "none"},
    )
    return HTMLResponse(page.body, headers={**_HEADERS, "X-Frame-Options": "DENY"})


@router.head("/")
async def index_head() -> Response:
    """``HEAD /`` (load balancers probe it)."""
    return Response(media_type="text/html; charset=utf-8", headers=_HEADERS)
