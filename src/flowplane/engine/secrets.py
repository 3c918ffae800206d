"""Secrets for node runs: where their values come from.

How they are kept out of records is :mod:`flowplane.security.redaction`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Protocol

ENV_PREFIX = "FLOWPLANE_SECRET_"


class SecretsProvider(Protocol):
    """Resolves secret names to values, only inside the worker, when a node runs."""

    async def resolve(self, namespace: str, names: Iterable[str]) -> dict[str, str]:
        """Return the values of ``names`` that exist (missing names are left out)."""
        ...  # pragma: no cover - protocol


class EnvSecrets:
    """Secrets from ``FLOWPLANE_SECRET_<NAME>`` environment variables (local runs)."""

    async def resolve(self, namespace: str, names: Iterable[str]) -> dict[str, str]:
        """Return the values of ``names`` found in the environment."""
        out: dict[str, str] = {}
        for name in names:
            value = os.environ.get(ENV_PREFIX + name)
            if value is not None:
                out[name] = value
        return out
