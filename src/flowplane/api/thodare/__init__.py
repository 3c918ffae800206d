"""The @thodare/api surface: its route table under ``/api/*``, over the services.

A thin face (see ``docs/surfaces/thodare.md``): ``routes`` (the route table), ``wire``
(thodare's EditOps, workflows and runs translated to Flowplane's and back) and ``errors``
(problem documents rewritten as thodare's ``{error, ...}`` bodies on its paths only).
"""

from __future__ import annotations

from fastapi import FastAPI

from flowplane.api.thodare.errors import ThodareErrorMiddleware
from flowplane.api.thodare.routes import router

__all__ = ["install_errors", "router"]


def install_errors(app: FastAPI) -> None:
    """Add the error-shape middleware (call it after the security gate is installed, so that
    the gate's 401 and 429 are rewritten too). The routes (:data:`router`) are included
    after Flowplane's own: FastAPI tries routes in order, and a health probe or a run poll
    should not try thodare's fifteen patterns first."""
    app.add_middleware(ThodareErrorMiddleware)
