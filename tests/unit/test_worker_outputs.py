"""Node outputs: plain JSON values kept as they are, others converted, oversized refused."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowplane.engine import outputs
from flowplane.errors import ConnectorError

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)


@given(json_values)
def test_bound_is_an_upper_bound_of_the_json_length(value: Any) -> None:
    assert outputs.json_bound(value) >= len(json.dumps(value, default=str))


@pytest.mark.parametrize(
    "value",
    ["\U0001f600" * 50, '"\\\n\x00' * 40, {"\u00e9\U0001f600": ["\x01", -(2**63) + 1]}, -1e-308],
)
def test_bound_holds_for_escapes_and_extremes(value: Any) -> None:
    assert outputs.json_bound(value) >= len(json.dumps(value))


def test_plain_output_is_returned_as_is() -> None:
    output = {"a": [1, 2.5, "x", None, True], "b": {}}
    assert outputs.normalise_output(output) is output


def test_other_values_go_through_json() -> None:
    assert outputs.normalise_output({"t": (1, 2)}) == {"t": [1, 2]}
    assert outputs.normalise_output({1: "x"}) == {"1": "x"}
    big = 2**80
    assert outputs.normalise_output([big]) == [big]


def test_oversized_output_is_refused() -> None:
    with pytest.raises(ConnectorError, match="byte limit"):
        outputs.normalise_output("x" * (outputs.MAX_OUTPUT_BYTES + 1))
    # Escapes count: under the limit in characters, over it as JSON text.
    with pytest.raises(ConnectorError, match="byte limit"):
        outputs.normalise_output(["\x01" * (outputs.MAX_OUTPUT_BYTES // 6 + 1)])
    # Large but within the limit: kept.
    fits = "y" * (outputs.MAX_OUTPUT_BYTES - 10)
    assert outputs.normalise_output(fits) is fits
