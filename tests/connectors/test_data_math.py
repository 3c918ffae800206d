"""data_math: arithmetic, statistics, rounding, number parsing and formatting."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import pytest
from connector_kit import assert_manifests, make_ctx

from flowplane.connectors.builtin import data_math as m
from flowplane.errors import ConnectorError


@pytest.fixture
def ctx(tmp_path: Path) -> Any:
    return make_ctx(tmp_path)


def test_manifests() -> None:
    assert_manifests(m, minimum=8)


@pytest.mark.parametrize(
    ("params", "result"),
    [
        ({"op": "add", "a": 1, "b": "2.5"}, 3.5),
        ({"op": "divide", "a": 10, "b": 4}, 2.5),
        ({"op": "floor_divide", "a": 7, "b": 2}, 3),
        ({"op": "mod", "a": -7, "b": 3}, 2),
        ({"op": "power", "a": 2, "b": 10}, 1024),
        ({"op": "log", "a": 8, "b": 2}, 3),
        ({"op": "sqrt", "a": 16}, 4),
        ({"op": "sign", "a": -3}, -1),
        ({"op": "max", "a": 1, "b": 2}, 2),
    ],
)
async def test_math(ctx: Any, params: dict[str, Any], result: float) -> None:
    assert (await m.math_op(params, ctx))["result"] == pytest.approx(result)


@pytest.mark.parametrize(
    "params",
    [
        {"op": "divide", "a": 1, "b": 0},
        {"op": "add", "a": 1},
        {"op": "sqrt", "a": -1},
        {"op": "ln", "a": 0},
        {"op": "power", "a": 10, "b": 5000},
        {"op": "add", "a": "abc", "b": 1},
        {"op": "add", "a": True, "b": 1},
        {"op": "exp", "a": 10_000},
    ],
)
async def test_math_errors(ctx: Any, params: dict[str, Any]) -> None:
    with pytest.raises(ConnectorError) as err:
        await m.math_op(params, ctx)
    assert not err.value.retryable


async def test_stats(ctx: Any) -> None:
    out = await m.stats({"values": [3, 1, 4, 1, 5, 9, "2"], "percentiles": [50, 90]}, ctx)
    assert out["count"] == 7 and out["sum"] == 25 and out["min"] == 1 and out["max"] == 9
    assert out["median"] == 3 and out["range"] == 8
    assert out["mean"] == pytest.approx(25 / 7)
    assert out["percentiles"] == {"p50": 3, "p90": pytest.approx(6.6)}
    assert out["stdev"] == pytest.approx(statistics.stdev([3, 1, 4, 1, 5, 9, 2]))
    empty = await m.stats({"values": []}, ctx)
    assert empty["count"] == 0 and empty["mean"] is None
    single = await m.stats({"values": [5]}, ctx)
    assert single["stdev"] == 0


async def test_round(ctx: Any) -> None:
    assert (await m.round_number({"value": 2.345, "decimals": 2}, ctx)) == {"result": 2.35}
    assert (await m.round_number({"value": [0.5, 1.5, 2.5], "mode": "half_even"}, ctx)) == {
        "result": [0, 2, 2]
    }
    assert (await m.round_number({"value": 1234, "decimals": -2}, ctx)) == {"result": 1200}
    assert (await m.round_number({"value": -1.1, "mode": "floor"}, ctx)) == {"result": -2}


async def test_parse_and_format(ctx: Any) -> None:
    assert (await m.parse_number({"text": "$1,234.50"}, ctx)) == {
        "value": 1234.5,
        "is_integer": False,
    }
    assert (await m.parse_number({"text": "1.234,5", "decimal_separator": ","}, ctx))[
        "value"
    ] == 1234.5
    assert (await m.parse_number({"text": "45%"}, ctx))["value"] == 0.45
    with pytest.raises(ConnectorError):
        await m.parse_number({"text": "n/a"}, ctx)
    out = await m.format_number({"value": 1234567.891, "prefix": "$"}, ctx)
    assert out == {"text": "$1,234,567.89"}
    eu = await m.format_number(
        {
            "value": 1234.5,
            "thousands": ".",
            "decimal_separator": ",",
            "decimals": 1,
            "suffix": " €",
        },
        ctx,
    )
    assert eu == {"text": "1.234,5 €"}
    assert (await m.format_number({"value": 0.256, "percent": True, "decimals": 1}, ctx)) == {
        "text": "25.6%"
    }


async def test_clamp_percentage_range(ctx: Any) -> None:
    assert (await m.clamp({"value": 120, "min": 0, "max": 100}, ctx)) == {
        "result": 100,
        "clamped": True,
    }
    with pytest.raises(ConnectorError):
        await m.clamp({"value": 1, "min": 5, "max": 0}, ctx)
    assert (await m.percentage({"mode": "of_total", "a": 25, "b": 200}, ctx)) == {"percent": 12.5}
    assert (await m.percentage({"mode": "change", "a": 80, "b": 100}, ctx)) == {"percent": 25}
    assert (await m.percentage({"mode": "of_total", "a": 1, "b": 0}, ctx)) == {"percent": None}
    assert (await m.number_range({"start": 0, "stop": 1, "step": 0.25}, ctx))["items"] == [
        0,
        0.25,
        0.5,
        0.75,
    ]
    assert (await m.number_range({"stop": -3, "step": -1}, ctx))["items"] == [0, -1, -2]
    with pytest.raises(ConnectorError):
        await m.number_range({"stop": 10**9}, ctx)
