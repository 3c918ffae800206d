"""Per-request context: the request id (``X-Request-Id``) and the acting caller.

:class:`RequestIdMiddleware` accepts the caller's ``X-Request-Id`` when it is a sane token
(1-128 of ``A-Z a-z 0-9 . _ : -``), generates one otherwise, exposes it through the
:data:`request_id` context variable and echoes it on every response, errors included.
The audit log records it with each mutation, so a client can find what its request did.
"""

from __future__ import annotations

import contextlib
import os
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flowplane.services.context import (
    actor_var,
    current_request_id,
    request_id_var,
    set_actor,
)

__all__ = [
    "HEADER",
    "RequestIdMiddleware",
    "accept_request_id",
    "current_request_id",
    "new_request_id",
    "request_id",
    "set_actor",
]

HEADER = "x-request-id"
_HEADER_BYTES = HEADER.encode()
_SANE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

request_id = request_id_var
"""The current request's id (``None`` outside a request)."""


def new_request_id() -> str:
    """Return a fresh request id."""
    return f"req_{os.urandom(16).hex()}"


def accept_request_id(value: str | None) -> str:
    """Return ``value`` when it is a sane request id, else a new one."""
    if value is not None and _SANE.match(value):
        return value
    return new_request_id()


class RequestIdMiddleware:
    """Plain ASGI middleware giving every HTTP request an id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming: str | None = None
        for name, value in scope.get("headers", ()):
            if name == _HEADER_BYTES:
                incoming = value.decode("latin-1")
                break
        rid = accept_request_id(incoming)
        token = request_id_var.set(rid)
        actor_token = actor_var.set(None)
        own = (_HEADER_BYTES, rid.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", ()) if h[0].lower() != _HEADER_BYTES]
                headers.append(own)
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            # Another context (a streaming task) cannot reset these; nothing to undo then.
            with contextlib.suppress(ValueError):
                actor_var.reset(actor_token)
                request_id_var.reset(token)
