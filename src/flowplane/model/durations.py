"""Duration strings: ``500ms``, ``30s``, ``5m``, ``2h``, ``1d`` (and plain numbers of seconds)."""

from __future__ import annotations

import re

from flowplane.errors import DurationInvalid

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
MAX_DURATION_SECONDS = 366 * 86400.0


def parse_duration(value: str | int | float) -> float:
    """Return ``value`` in seconds.

    Args:
        value: a number of seconds, or a string like ``"1.5s"`` or ``"2h"``.

    Raises:
        DurationInvalid: the string is not a duration, is negative or is over a year.
    """
    if isinstance(value, bool):
        raise DurationInvalid(f"invalid duration {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _PATTERN.match(value)
        if match is None:
            raise DurationInvalid(
                f"invalid duration {value!r}: use a number with a unit, e.g. 500ms, 30s, 5m, 2h, 1d"
            )
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]
    if seconds < 0 or seconds > MAX_DURATION_SECONDS:
        raise DurationInvalid(f"duration {value!r} is out of range (0 to 366d)")
    return seconds


def format_duration(seconds: float) -> str:
    """Return a short human form of ``seconds`` (``1.5s``, ``250ms``, ``2m``)."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
