"""Per-request context: the request id (``X-Request-Id``) and the acting caller.

:class:`flowplane.api.edge.EdgeMiddleware` accepts the caller's ``X-Request-Id`` when it
is a sane token (1-128 of ``A-Z a-z 0-9 . _ : -``), generates one otherwise, exposes it
through the
:data:`request_id` context variable and echoes it on every response, errors included.
The audit log records it with each mutation, so a client can find what its request did.
"""

from __future__ import annotations

import os
import re

from flowplane.services.context import current_request_id, request_id_var, set_actor

__all__ = [
    "HEADER",
    "accept_request_id",
    "current_request_id",
    "new_request_id",
    "request_id",
    "set_actor",
]

HEADER = "x-request-id"
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
