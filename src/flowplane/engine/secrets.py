"""Secrets for node runs: where values come from, and how they are kept out of records."""

from __future__ import annotations

import base64
import os
import urllib.parse
from collections.abc import Iterable
from typing import Any, Protocol

REDACTED = "[REDACTED]"
ENV_PREFIX = "FLOWPLANE_SECRET_"
MIN_REDACT_LENGTH = 4


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


class Redactor:
    """Replaces secret values (plain, base64 and URL-encoded) with ``[REDACTED]``."""

    def __init__(self, values: Iterable[str]) -> None:
        forms: set[str] = set()
        for value in values:
            if len(value) < MIN_REDACT_LENGTH:
                continue
            raw = value.encode()
            forms.update(
                {
                    value,
                    base64.b64encode(raw).decode(),
                    base64.b64encode(raw).decode().rstrip("="),
                    base64.urlsafe_b64encode(raw).decode().rstrip("="),
                    urllib.parse.quote(value, safe=""),
                    # Jinja's urlencode filter and URLs keep "/" (quote's default).
                    urllib.parse.quote(value),
                    urllib.parse.quote_plus(value),
                }
            )
        # Longest first, so a value containing another is replaced whole.
        self._forms = sorted(
            (f for f in forms if len(f) >= MIN_REDACT_LENGTH), key=len, reverse=True
        )

    def text(self, text: str) -> str:
        """Return ``text`` with every secret form replaced."""
        for form in self._forms:
            if form in text:
                text = text.replace(form, REDACTED)
        return text

    def value(self, value: Any) -> Any:
        """Return ``value`` (JSON-like) with secrets replaced in every string."""
        if not self._forms:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value
