"""data_time: parse, format, add, diff, convert and truncate with zoneinfo."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from connector_kit import assert_manifests, make_ctx

from flowplane.connectors.builtin import data_time as m
from flowplane.errors import ConnectorError


@pytest.fixture
def ctx(tmp_path: Path) -> Any:
    return make_ctx(tmp_path)


def test_manifests() -> None:
    assert_manifests(m, minimum=7)


async def test_now(ctx: Any) -> None:
    out = await m.time_now({"timezone": "Asia/Tokyo"}, ctx)
    assert out["timezone"] == "Asia/Tokyo" and out["iso"].endswith("+09:00")
    assert abs(out["timestamp"] - dt.datetime.now(dt.UTC).timestamp()) < 5
    with pytest.raises(ConnectorError, match="unknown time zone"):
        await m.time_now({"timezone": "Mars/Olympus"}, ctx)


async def test_parse(ctx: Any) -> None:
    out = await m.time_parse({"value": "2024-05-01T10:00:00Z"}, ctx)
    assert out["iso"] == "2024-05-01T10:00:00+00:00" and out["weekday"] == "Wednesday"
    assert out["timestamp_ms"] == 1714557600000
    local = await m.time_parse(
        {"value": "01/05/2024 09:30", "format": "%d/%m/%Y %H:%M", "timezone": "Europe/Paris"}, ctx
    )
    assert local["iso"] == "2024-05-01T09:30:00+02:00"
    assert (await m.time_parse({"value": 0}, ctx))["iso"] == "1970-01-01T00:00:00+00:00"
    for bad in ("yesterday", True):
        with pytest.raises(ConnectorError):
            await m.time_parse({"value": bad}, ctx)


async def test_format_and_convert(ctx: Any) -> None:
    out = await m.time_format(
        {
            "value": "2024-05-01T10:00:00Z",
            "format": "%Y-%m-%d %H:%M %Z",
            "timezone": "America/New_York",
        },
        ctx,
    )
    assert out == {"text": "2024-05-01 06:00 EDT"}
    tokyo = await m.time_convert({"value": "2024-05-01T10:00:00Z", "to": "Asia/Tokyo"}, ctx)
    assert tokyo["hour"] == 19 and tokyo["date"] == "2024-05-01"
    naive = await m.time_convert(
        {"value": "2024-01-01T12:00:00", "from": "Europe/Paris", "to": "UTC"}, ctx
    )
    assert naive["hour"] == 11


async def test_add(ctx: Any) -> None:
    out = await m.time_add({"value": "2024-01-31T12:00:00Z", "months": 1}, ctx)
    assert out["date"] == "2024-02-29"
    back = await m.time_add({"value": "2024-05-01", "days": 7, "subtract": True}, ctx)
    assert back["date"] == "2024-04-24"
    # A day across the DST change keeps the local wall-clock hour.
    dst = await m.time_add(
        {"value": "2024-03-30T12:00:00+01:00", "days": 1, "timezone": "Europe/Paris"}, ctx
    )
    assert dst["iso"] == "2024-03-31T12:00:00+02:00"
    with pytest.raises(ConnectorError, match="whole"):
        await m.time_add({"value": "2024-01-01", "months": 1.5}, ctx)


async def test_diff(ctx: Any) -> None:
    out = await m.time_diff({"start": "2024-01-01T00:00:00Z", "end": "2024-03-15T06:30:00Z"}, ctx)
    assert out["days"] == pytest.approx(74.2708, abs=1e-3) and out["months"] == 2
    assert out["human"] == "74d 6h 30m"
    neg = await m.time_diff({"start": "2024-02-01", "end": "2024-01-01"}, ctx)
    assert neg["months"] == -1 and neg["human"].startswith("-")


async def test_truncate(ctx: Any) -> None:
    month = await m.time_truncate({"value": "2024-05-15T10:42:00Z", "unit": "month"}, ctx)
    assert month["iso"] == "2024-05-01T00:00:00+00:00"
    week = await m.time_truncate({"value": "2024-05-15T10:42:00Z", "unit": "week"}, ctx)
    assert week["date"] == "2024-05-13"
    end = await m.time_truncate(
        {"value": "2024-05-15T10:42:00Z", "unit": "day", "timezone": "Europe/Paris", "end": True},
        ctx,
    )
    assert end["iso"] == "2024-05-15T23:59:59.999999+02:00"
    year_end = await m.time_truncate({"value": "2024-05-15", "unit": "year", "end": True}, ctx)
    assert year_end["date"] == "2024-12-31"
