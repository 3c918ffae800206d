"""Numbers in and out of JSON: lenient parsing, JSON-safe results."""

from __future__ import annotations

import math
import re
from typing import Any

from flowplane.errors import ConnectorError


def finite(value: float) -> float | int | None:
    """Return ``value`` as a JSON-safe number (None for NaN/infinity, int when integral)."""
    if math.isnan(value) or math.isinf(value):
        return None
    if float(value).is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def to_number(value: Any) -> float:
    """Return ``value`` as a float, accepting numeric strings.

    Raises:
        ConnectorError: (not retryable) the value is not a number.
    """
    if isinstance(value, bool):
        raise ConnectorError(f"expected a number, got {value!r}", retryable=False)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and re.fullmatch(
        r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*", value
    ):
        return float(value)
    raise ConnectorError(f"expected a number, got {value!r}"[:200], retryable=False)
