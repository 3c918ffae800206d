"""The connector catalogue: what nodes can do, searched and read (viewer).

The HTTP routes (``/v1/connectors``) and ``flowplane connectors list|show`` read it; the
manifests come from the process's :class:`~flowplane.connectors.registry.Registry`.
"""

from __future__ import annotations

from flowplane.connectors.base import Manifest
from flowplane.connectors.registry import Registry
from flowplane.services.caller import Caller

__all__ = ["ConnectorCatalog"]


class ConnectorCatalog:
    """Search and read the connector manifests of one registry."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def search(
        self, caller: Caller, *, category: str | None = None, q: str | None = None
    ) -> list[Manifest]:
        """Manifests matching ``category`` and every word of ``q``, sorted by type."""
        caller.require("viewer")
        words = [w.lower() for w in (q or "").split() if w]
        found = []
        for manifest in self.registry.manifests():
            if category and manifest.category != category:
                continue
            text = f"{manifest.type} {manifest.name} {manifest.description}".lower()
            if all(word in text for word in words):
                found.append(manifest)
        return sorted(found, key=lambda m: m.type)

    def categories(self, caller: Caller) -> dict[str, int]:
        """Each category with how many connectors it holds, by name."""
        caller.require("viewer")
        return dict(sorted(self.registry.categories().items()))

    def get(self, caller: Caller, type_: str) -> Manifest:
        """One connector's manifest.

        Raises:
            ConnectorNotFound: no such type (its message lists close matches).
        """
        caller.require("viewer")
        return self.registry.get(type_).manifest
