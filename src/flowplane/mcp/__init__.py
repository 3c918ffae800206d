"""Flowplane over the Model Context Protocol: agents build, run, watch and repair workflows.

A face like the HTTP API: the tools (:mod:`flowplane.mcp.tools`), resources and prompts
(:mod:`flowplane.mcp.server`) are written once against :class:`Backend`
(:mod:`flowplane.mcp.backend`), which the services implement inside ``flowplane serve``
(``/mcp``, :mod:`flowplane.api.mcp_backend`) and the Python client implements for
``flowplane mcp --server`` (:class:`ClientBackend`). See ``docs/mcp.md``.
"""

from __future__ import annotations

from flowplane.mcp.backend import Backend, BackendProvider
from flowplane.mcp.remote import ClientBackend
from flowplane.mcp.server import HttpEndpoint, build_server, http_endpoint, run_stdio
from flowplane.mcp.tools import TOOL_NAMES

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
