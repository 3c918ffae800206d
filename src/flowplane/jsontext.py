"""JSON text of dicts and lists, as :func:`json.dumps` writes it, quicker.

``json.dumps`` with any argument but the defaults builds a ``JSONEncoder`` (and a fresh
dict for its circular-reference check) per call, which costs as much as encoding a small
payload; these functions keep the same C encoder, built once. Any failure (a value that
cannot be encoded; a cycle, which hits the recursion limit here) is left to
``json.dumps``, so errors are its own.

A leaf module (it imports nothing of Flowplane), so every layer may use it.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable
from typing import Any

_make: Any = getattr(json.encoder, "c_make_encoder", None)


def _encoder(default: Any, key_separator: str, item_separator: str) -> Any:
    if _make is None:
        return None
    return _make(
        None,  # no circular-reference check: a cycle fails, then json.dumps reports it
        default,
        json.encoder.encode_basestring_ascii,
        None,  # indent
        key_separator,
        item_separator,
        False,  # sort_keys
        False,  # skipkeys
        True,  # allow_nan
    )


_DEFAULT = _encoder(json.JSONEncoder().default, ": ", ", ")
_COMPACT = _encoder(str, ":", ",")


def dumps(value: Any) -> str:
    """``json.dumps(value)``."""
    return _encode(_DEFAULT, value, json.dumps)


def compact(value: Any) -> str:
    """``json.dumps(value, separators=(",", ":"), default=str)``."""
    return _encode(_COMPACT, value, _compact)


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def _encode(encoder: Any, value: Any, fallback: Callable[[Any], str]) -> str:
    if encoder is not None:
        try:
            return "".join(encoder(value, 0))
        except Exception:
            pass
    return fallback(value)
