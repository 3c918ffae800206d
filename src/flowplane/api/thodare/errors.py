"""thodare's error bodies for ``/api/*``: ``{"error": "<name>", ...}`` instead of problem+json.

Every error is still raised and rendered once, as Flowplane's problem document (the
routes, the security gate's 401 and 429, a 404 for a path no route serves); this
layer (:func:`rewriting_send`, in the API's edge middleware) rewrites that document for
thodare's paths only. The stable ``code`` stays, and
the problem's extension members ride along (``current`` on a 412, ``retryAfterMs`` on a
429, ``errors`` on a 400), so ``{error: "version_mismatch", current: 3}`` is what a thodare
client reads. ``/api/v1/*`` belongs to another surface (workflowdev) and is left alone, as
is every other path (``/v1`` keeps its problem+json).
"""

from __future__ import annotations

import json
from typing import Any

from flowplane.api.problems import PROBLEM_TYPE

__all__ = ["is_thodare_path", "rewriting_send", "thodare_error"]

_ERROR_NAMES = {
    "validation_error": "invalid_body",
    "bad_request": "invalid_body",
    "unsupported_media_type": "invalid_body",
    "document_invalid": "invalid_body",
    "invalid_json": "invalid_body",
}
"""Flowplane codes with another name in thodare; a 404 is always ``not_found``."""
_DROPPED = ("type", "title", "detail")


def is_thodare_path(path: str) -> bool:
    """``/api/...`` except workflowdev's ``/api/v1`` and everything under it."""
    return path.startswith("/api/") and not (path == "/api/v1" or path.startswith("/api/v1/"))


def thodare_error(problem: dict[str, Any]) -> dict[str, Any]:
    """A problem document as thodare's error body (``error`` first, ``code`` kept)."""
    code = str(problem.get("code") or "error")
    name = "not_found" if problem.get("status") == 404 else _ERROR_NAMES.get(code, code)
    body: dict[str, Any] = {"error": name, "message": problem.get("detail"), "code": code}
    for key, value in problem.items():
        if key not in _DROPPED and key not in body:
            body[key] = value
    return body


def rewriting_send(send: Any) -> Any:
    """Wrap ``send`` so that a problem document is sent as thodare's error body (for a
    request on one of thodare's paths; :class:`flowplane.api.edge.EdgeMiddleware` calls it)."""
    start: dict[str, Any] | None = None
    chunks: list[bytes] = []

    async def rewrite(message: dict[str, Any]) -> None:
        nonlocal start
        if message["type"] == "http.response.start":
            headers = dict(message.get("headers") or [])
            if headers.get(b"content-type", b"").startswith(PROBLEM_TYPE.encode()):
                start = message
                return
            await send(message)
            return
        if start is None or message["type"] != "http.response.body":
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body"):
            return
        await _send_rewritten(send, start, b"".join(chunks))

    return rewrite


async def _send_rewritten(send: Any, start: dict[str, Any], raw: bytes) -> None:
    try:
        problem = json.loads(raw)
        body = json.dumps(thodare_error(problem), separators=(",", ":")).encode()
    except (ValueError, AttributeError):
        body = raw
    headers = [
        (k, v)
        for k, v in start.get("headers") or []
        if k.lower() not in (b"content-type", b"content-length")
    ]
    headers += [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({**start, "headers": headers})
    await send({"type": "http.response.body", "body": body})
