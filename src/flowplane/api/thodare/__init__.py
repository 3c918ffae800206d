"""The @thodare/api surface: its route table under ``/api/*``, over the services.

A thin face (see ``docs/surfaces/thodare.md``): ``routes`` (the route table), ``wire``
(thodare's EditOps, workflows and runs translated to Flowplane's and back) and ``errors``
(problem documents rewritten as thodare's ``{error, ...}`` bodies on its paths only).
"""

from __future__ import annotations

from flowplane.api.thodare.routes import router

__all__ = ["router"]
