"""The :class:`~flowplane.services.caller.Caller` a request hands to the services."""

from __future__ import annotations

from dataclasses import replace

from flowplane.api.context import current_request_id
from flowplane.services.caller import Caller

__all__ = ["of_request"]


def of_request(caller: Caller) -> Caller:
    """``caller`` (as authenticated by ``require``) with the current request's id.

    The services name the request in the audit entries they write; outside an HTTP request
    (a WebSocket frame) there is none and the caller is returned as it is.
    """
    request_id = current_request_id()
    if request_id is None or caller.request_id == request_id:
        return caller
    return replace(caller, request_id=request_id)
