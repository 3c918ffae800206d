"""Flowplane over the Model Context Protocol: agents build, run, watch and repair workflows.

A face like the HTTP API: the tools (:mod:`flowplane.mcp.tools`), resources and prompts
(:mod:`flowplane.mcp.server`) are written once against :class:`Backend`
(:mod:`flowplane.mcp.backend`), which the services implement inside ``flowplane serve``
(``/mcp``, :mod:`flowplane.api.mcp_backend`) and the Python client implements for
``flowplane mcp --server`` (:class:`ClientBackend`). See ``docs/mcp.md``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from flowplane.mcp.backend import Backend, BackendProvider

if TYPE_CHECKING:
    from flowplane.mcp.remote import ClientBackend
    from flowplane.mcp.server import HttpEndpoint, build_server, http_endpoint, run_stdio
    from flowplane.mcp.tools import TOOL_NAMES

# The MCP SDK is imported when one of these is first asked for (PEP 562), not with the
# package: `flowplane serve` imports flowplane.mcp.backend and builds its server on the
# first /mcp request.
_LAZY = {
    "ClientBackend": "flowplane.mcp.remote",
    "HttpEndpoint": "flowplane.mcp.server",
    "build_server": "flowplane.mcp.server",
    "http_endpoint": "flowplane.mcp.server",
    "run_stdio": "flowplane.mcp.server",
    "TOOL_NAMES": "flowplane.mcp.tools",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module), name)


__all__ = [
    "TOOL_NAMES",
    "Backend",
    "BackendProvider",
    "ClientBackend",
    "HttpEndpoint",
    "build_server",
    "http_endpoint",
    "run_stdio",
]
