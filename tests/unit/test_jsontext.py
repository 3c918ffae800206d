"""flowplane.jsontext: the same text and the same errors as json.dumps, quicker."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from flowplane import jsontext

VALUES: list[Any] = [
    {"a": 1, "b": [1.5, float("inf"), None, "é", {"c": True}]},
    [],
    {},
    {1: "int key", None: "none key", 2.5: "float key"},
    [[[[[]]]]],
    {"big": 2**80, "neg": -0.0, "nan": float("nan")},
    {"seq": 7, "type": "NodeFinished", "output": {"text": 'quote " and \\ and \n'}},
]


@pytest.mark.parametrize("value", VALUES)
def test_dumps_matches_json_dumps(value: Any) -> None:
    assert jsontext.dumps(value) == json.dumps(value)


@pytest.mark.parametrize("value", [*VALUES, {"at": dt.date(2026, 1, 2), "set": {1}}])
def test_compact_matches_json_dumps_compact(value: Any) -> None:
    expected = json.dumps(value, separators=(",", ":"), default=str)
    assert jsontext.compact(value) == expected


def test_errors_are_json_dumps_errors() -> None:
    cycle: list[Any] = []
    cycle.append(cycle)
    for encode in (jsontext.dumps, jsontext.compact):
        with pytest.raises(ValueError, match="Circular reference"):
            encode(cycle)
    with pytest.raises(TypeError, match="not JSON serializable"):
        jsontext.dumps({"a": object()})
    # The encoders still work after a failure.
    assert jsontext.dumps({"a": [1]}) == '{"a": [1]}'
    assert jsontext.compact({"a": [1]}) == '{"a":[1]}'
