"""Dotted paths (``a.b.0.c``) into JSON data: get, test and set."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowplane.errors import ConnectorError

MAX_PATH_DEPTH = 64

_MISSING = object()


def split_path(path: str | list[str | int]) -> list[str | int]:
    """Split a dotted path (``a.b.0.c``) into keys; lists are taken as already split."""
    if isinstance(path, list):
        parts: list[str | int] = list(path)
    elif path == "":
        parts = []
    else:
        parts = list(path.split("."))
    if len(parts) > MAX_PATH_DEPTH:
        raise ConnectorError(f"path is deeper than {MAX_PATH_DEPTH} levels", retryable=False)
    return parts


def get_path(data: Any, path: str | list[str | int], default: Any = None) -> Any:
    """Return the value at ``path`` in ``data`` (dicts by key, lists by index), or ``default``."""
    current = data
    for part in split_path(path):
        if isinstance(current, Mapping):
            if str(part) not in current:
                return default
            current = current[str(part)]
        elif isinstance(current, list):
            try:
                current = current[int(part)]
            except (ValueError, IndexError):
                return default
        else:
            return default
    return current


def has_path(data: Any, path: str | list[str | int]) -> bool:
    """Whether ``path`` exists in ``data``."""
    return get_path(data, path, _MISSING) is not _MISSING


def set_path(data: Any, path: str | list[str | int], value: Any) -> Any:
    """Set ``value`` at ``path`` in ``data`` in place (creating dicts); return ``data``."""
    parts = split_path(path)
    if not parts:
        return value
    current = data
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if isinstance(current, list):
            try:
                position = int(part)
                if last:
                    current[position] = value
                else:
                    current = current[position]
            except (ValueError, IndexError) as exc:
                raise ConnectorError(f"bad list index {part!r} in path", retryable=False) from exc
        elif isinstance(current, dict):
            key = str(part)
            if last:
                current[key] = value
            else:
                if not isinstance(current.get(key), dict | list):
                    current[key] = {}
                current = current[key]
        else:
            raise ConnectorError(f"cannot set {part!r} inside a scalar", retryable=False)
    return data
