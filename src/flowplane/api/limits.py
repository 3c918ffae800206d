"""Request body limits: size (413) and JSON nesting depth (400), as plain ASGI middleware.

The body is read here, counting the bytes as they stream in, so a client cannot make the
server buffer more than ``max_body_bytes`` whatever its ``Content-Length`` says (a
declared length over the limit is refused before anything is read). The complete body is
then scanned for nesting depth without recursion or parsing; ``json.loads`` and pydantic
only ever see documents at most ``max_json_depth`` deep, so a 100,000-deep array is a
400 ``json_too_deep``, never a ``RecursionError`` and a 500. The body is then replayed
to the application unchanged.
"""

from __future__ import annotations

import re
from typing import Any

from flowplane.api.problems import problem_response

Scope = dict[str, Any]
Message = dict[str, Any]
ASGIApp = Any

# A JSON string (skipped whole, escapes included) or one bracket.
_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
_OPENERS = frozenset(b"[{")


def json_depth_exceeds(body: bytes, max_depth: int) -> bool:
    """Whether ``body`` nests arrays/objects deeper than ``max_depth`` (iterative scan).

    Brackets inside strings do not count. Bodies that do not start with ``[`` or ``{``
    are not JSON containers and are never too deep.
    """
    stripped = body.lstrip()
    if not stripped or stripped[0] not in _OPENERS:
        return False
    if stripped.count(b"[") + stripped.count(b"{") <= max_depth:
        return False
    depth = 0
    for match in _TOKENS.finditer(stripped):
        char = match.group()
        if char in (b"[", b"{"):
            depth += 1
            if depth > max_depth:
                return True
        elif char in (b"]", b"}"):
            depth -= 1
    return False


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes`` (413) and JSON deeper than ``max_depth`` (400).

    Args:
        app: the wrapped ASGI application.
        max_bytes: the largest accepted body.
        max_depth: the deepest accepted JSON nesting.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, max_depth: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        disconnected: Message | None = None
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                disconnected = message
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if json_depth_exceeds(body, self.max_depth):
            response = problem_response(
                400,
                "json_too_deep",
                "JSON nested too deeply",
                f"JSON bodies may nest at most {self.max_depth} levels",
                maxDepth=self.max_depth,
            )
            await response(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                if disconnected is not None:
                    return disconnected
                return {"type": "http.request", "body": body, "more_body": False}
            return dict(await receive())

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Any, send: Any) -> None:
        response = problem_response(
            413,
            "payload_too_large",
            "Payload too large",
            f"request bodies are limited to {self.max_bytes} bytes",
            maxBytes=self.max_bytes,
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
