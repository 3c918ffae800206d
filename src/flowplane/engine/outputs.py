"""Node outputs: kept as plain JSON values, refused over :data:`MAX_OUTPUT_BYTES`.

A plain output (only JSON types) that is certainly small enough is handed on as it is, with
no copy and no measure: that is every output of the engine's hot path.
"""

from __future__ import annotations

import json
from typing import Any

from flowplane.errors import ConnectorError

MAX_OUTPUT_BYTES = 4 * 1024 * 1024


def normalise_output(output: Any) -> Any:
    """Return ``output`` as plain JSON values, refusing oversized outputs."""
    try:
        bound = json_bound(output)
        plain = True
    except (_NotPlain, RecursionError):
        bound, plain = -1, False
    if plain and bound <= MAX_OUTPUT_BYTES:
        return output  # plain, and certainly small enough: nothing to copy or measure
    text = json.dumps(output, default=str)
    if len(text) > MAX_OUTPUT_BYTES:
        raise ConnectorError(
            f"node output is {len(text)} bytes, over the {MAX_OUTPUT_BYTES}-byte limit",
            retryable=False,
        )
    # Already plain JSON values: the round trip would only copy them.
    return output if plain else json.loads(text)


# More than any output may be: the JSON text must be measured.
_UNBOUNDED = MAX_OUTPUT_BYTES + 1


class _NotPlain(Exception):
    """A value is not made only of JSON types (see :func:`json_bound`)."""


def json_bound(value: Any) -> int:
    """An upper bound of ``len(json.dumps(value))`` for a value made only of JSON types
    (exact types: no subclasses, tuples or non-string keys, which the JSON round trip would
    change); raises :class:`_NotPlain` for any other value."""
    kind = type(value)
    if kind is str:
        return 12 * len(value) + 2  # at worst a surrogate pair of escapes per character
    if kind is dict:
        size = 2
        for key, item in value.items():
            if type(key) is not str:
                raise _NotPlain
            size += 12 * len(key) + 6 + json_bound(item)
        return size
    if kind is list:
        size = 2
        for item in value:
            size += json_bound(item) + 2
        return size
    if kind is int:
        return 21 if value.bit_length() < 64 else _UNBOUNDED
    if kind is float:
        return 32
    if kind is bool or value is None:
        return 5
    raise _NotPlain
