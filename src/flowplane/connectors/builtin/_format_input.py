"""What the format connectors (JSON, YAML, CSV, XML, Markdown) share: text input, errors, cells."""

from __future__ import annotations

import json
from typing import Any

from flowplane.connectors.builtin._schemas import prop
from flowplane.errors import ConnectorError

MAX_TEXT_CHARS = 10_000_000
TEXT = prop("string", "The text to parse.", maxLength=MAX_TEXT_CHARS)


def invalid(kind: str, exc: Exception) -> ConnectorError:
    """Return the (not retryable) error for input that is not valid ``kind``."""
    return ConnectorError(f"invalid {kind}: {exc}"[:500], retryable=False)


def cell_text(value: Any) -> str:
    """Return a value as the text of a CSV cell or XML node (JSON for lists and objects)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
