"""Headers every JSON answer carries: ``Cache-Control: no-store`` and ``nosniff``.

Smithers' server sends both on each JSON (and plain-text) answer, errors included, so no
proxy or browser keeps a run's state or an error, and no browser sniffs a JSON body into
something it would execute. :class:`NoStoreMiddleware` adds them to every such response of
``flowplane serve`` and of serve mode, unless a route set its own ``Cache-Control``.
"""

from __future__ import annotations

from typing import Any

CACHE_CONTROL = (b"cache-control", b"no-store")
NOSNIFF = (b"x-content-type-options", b"nosniff")


def _is_json_or_text(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"text/plain" or media == b"application/json" or media.endswith(b"+json")


def add_no_store(headers: list[tuple[bytes, bytes]]) -> None:
    """Append :data:`CACHE_CONTROL` and :data:`NOSNIFF` to a JSON or plain-text answer's
    raw ``headers`` (in place), unless it set its own."""
    content_type = b""
    cache_control = nosniff = False
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"content-type":
            content_type = value
        elif lowered == b"cache-control":
            cache_control = True
        elif lowered == b"x-content-type-options":
            nosniff = True
    if _is_json_or_text(content_type):
        if not cache_control:
            headers.append(CACHE_CONTROL)
        if not nosniff:
            headers.append(NOSNIFF)


class NoStoreMiddleware:
    """Plain ASGI middleware adding :data:`CACHE_CONTROL` and :data:`NOSNIFF` to JSON and
    plain-text answers (event streams keep their own ``no-cache``). The API's own stack does
    the same in :class:`flowplane.api.edge.EdgeMiddleware`; this one is serve mode's."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                add_no_store(headers)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
