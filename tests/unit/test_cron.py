"""Cron expressions: validation messages, macros, seconds, DST gap and fold, slot planning."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from flowplane.errors import InvalidCron, InvalidTimezone
from flowplane.model.cron import (
    CronSpec,
    first_slot,
    from_ms,
    parse_cron,
    plan_slots,
    to_ms,
)


def ms(text: str) -> int:
    return to_ms(datetime.fromisoformat(text).astimezone(UTC))


def slots(spec: CronSpec, after: str, count: int) -> list[str]:
    """The next ``count`` slots after ``after``, as UTC ISO strings."""
    return [
        from_ms(s).strftime("%Y-%m-%dT%H:%M:%SZ")
        for s in itertools.islice(spec.iter_slots(ms(after)), count)
    ]


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "it is empty"),
        ("* * *", "expected 5 fields"),
        ("* * * * * * *", "got 7"),
        ("61 * * * *", "minute value 61 is out of range 0-59"),
        ("0 24 * * *", "hour value 24 is out of range 0-23"),
        ("0 0 0 * *", "day-of-month value 0 is out of range 1-31"),
        ("0 0 1 13 *", "month value 13 is out of range 1-12"),
        ("0 0 * * 8", "day-of-week value 8 is out of range 0-7"),
        ("5-1 * * * *", "minute range 5-1 is reversed"),
        ("*/0 * * * *", "minute step 0 must be between 1 and 60"),
        ("0 0 * foo *", "month field has invalid value 'foo'"),
        ("H * * * *", "minute field has invalid value 'H'"),
        ("? * * * *", "'?' is only allowed in the day-of-month and day-of-week fields"),
        ("0 0 31 2 *", "it never fires"),
        ("@every 5m", "unknown macro"),
        ("@reboot", "unknown macro"),
        ("60 * * * * *", "second value 60 is out of range 0-59"),
    ],
)
def test_invalid_expressions_have_precise_messages(expression: str, message: str) -> None:
    with pytest.raises(InvalidCron) as info:
        parse_cron(expression)
    assert message in info.value.detail
    assert info.value.code == "invalid_cron"
    assert info.value.status == 400


def test_unknown_timezone() -> None:
    with pytest.raises(InvalidTimezone) as info:
        parse_cron("* * * * *", "Mars/Olympus_Mons")
    assert "Mars/Olympus_Mons" in info.value.detail
    with pytest.raises(InvalidTimezone):
        parse_cron("* * * * *", "../../etc/passwd")


@pytest.mark.parametrize(
    ("macro", "expected"),
    [
        ("@hourly", ["2024-01-01T01:00:00Z", "2024-01-01T02:00:00Z"]),
        ("@daily", ["2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z"]),
        ("@midnight", ["2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z"]),
        ("@weekly", ["2024-01-07T00:00:00Z", "2024-01-14T00:00:00Z"]),
        ("@monthly", ["2024-02-01T00:00:00Z", "2024-03-01T00:00:00Z"]),
        ("@yearly", ["2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z"]),
        ("@ANNUALLY", ["2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z"]),
    ],
)
def test_macros(macro: str, expected: list[str]) -> None:
    assert slots(parse_cron(macro), "2024-01-01T00:00:00+00:00", 2) == expected


def test_names_lists_ranges_and_steps() -> None:
    spec = parse_cron("0 9 * * MON-FRI", "UTC")
    # 2024-01-05 is a Friday: next are Monday and Tuesday.
    assert slots(spec, "2024-01-05T10:00:00+00:00", 2) == [
        "2024-01-08T09:00:00Z",
        "2024-01-09T09:00:00Z",
    ]
    assert slots(parse_cron("0,30 */12 1 jan *"), "2024-01-01T00:00:00+00:00", 3) == [
        "2024-01-01T00:30:00Z",
        "2024-01-01T12:00:00Z",
        "2024-01-01T12:30:00Z",
    ]


def test_six_fields_have_a_leading_seconds_field() -> None:
    spec = parse_cron("*/15 * * * * *")
    assert spec.has_seconds
    assert slots(spec, "2024-01-01T00:00:00+00:00", 3) == [
        "2024-01-01T00:00:15Z",
        "2024-01-01T00:00:30Z",
        "2024-01-01T00:00:45Z",
    ]


def test_time_zone_is_applied() -> None:
    spec = parse_cron("0 8 * * *", "Europe/Paris")
    assert slots(spec, "2024-01-01T00:00:00+00:00", 1) == ["2024-01-01T07:00:00Z"]
    assert slots(spec, "2024-07-01T00:00:00+00:00", 1) == ["2024-07-01T06:00:00Z"]


# --- DST ---------------------------------------------------------------------------------
# Europe/Paris 2024: 31 March 02:00 CET -> 03:00 CEST (gap); 27 October 03:00 CEST -> 02:00
# CET (02:00-02:59 happens twice).


def test_gap_time_fires_once_shifted_by_the_gap() -> None:
    spec = parse_cron("30 2 * * *", "Europe/Paris")
    assert slots(spec, "2024-03-30T12:00:00+00:00", 3) == [
        "2024-03-31T01:30:00Z",  # 02:30 does not exist: fires at 03:30 CEST
        "2024-04-01T00:30:00Z",  # 02:30 CEST
        "2024-04-02T00:30:00Z",
    ]


def test_gap_time_is_found_when_starting_just_after_the_change() -> None:
    spec = parse_cron("30 2 * * *", "Europe/Paris")
    # 03:10 CEST, after the jump but before the shifted 02:30 (03:30 CEST).
    assert slots(spec, "2024-03-31T01:10:00+00:00", 1) == ["2024-03-31T01:30:00Z"]


def test_gap_slots_are_increasing_and_unique() -> None:
    spec = parse_cron("*/30 * * * *", "Europe/Paris")
    assert slots(spec, "2024-03-31T00:10:00+00:00", 5) == [
        "2024-03-31T00:30:00Z",  # 01:30 CET
        "2024-03-31T01:00:00Z",  # 02:00 (gap) == 03:00 CEST: once
        "2024-03-31T01:30:00Z",  # 02:30 (gap) == 03:30 CEST: once
        "2024-03-31T02:00:00Z",
        "2024-03-31T02:30:00Z",
    ]


def test_gap_with_interleaved_hours_new_york() -> None:
    # 10 March 2024: 02:00 EST -> 03:00 EDT.
    spec = parse_cron("*/20 1-3 * * *", "America/New_York")
    assert slots(spec, "2024-03-10T06:00:00+00:00", 5) == [
        "2024-03-10T06:20:00Z",  # 01:20 EST
        "2024-03-10T06:40:00Z",  # 01:40 EST
        "2024-03-10T07:00:00Z",  # 02:00 (gap) / 03:00 EDT
        "2024-03-10T07:20:00Z",
        "2024-03-10T07:40:00Z",
    ]


def test_fold_time_fires_once_at_its_first_occurrence() -> None:
    spec = parse_cron("30 2 * * *", "Europe/Paris")
    assert slots(spec, "2024-10-26T12:00:00+00:00", 2) == [
        "2024-10-27T00:30:00Z",  # 02:30 CEST, the first of the two 02:30s
        "2024-10-28T01:30:00Z",  # 02:30 CET the next day: not 01:30Z on the 27th
    ]


def test_hourly_across_the_fold_does_not_repeat_the_hour() -> None:
    spec = parse_cron("0 * * * *", "Europe/Paris")
    assert slots(spec, "2024-10-26T22:30:00+00:00", 4) == [
        "2024-10-26T23:00:00Z",  # 01:00 CEST
        "2024-10-27T00:00:00Z",  # 02:00 CEST (first)
        "2024-10-27T02:00:00Z",  # 03:00 CET: the second 02:00 (01:00Z) does not fire
        "2024-10-27T03:00:00Z",
    ]


def test_starting_inside_the_second_occurrence_skips_the_repeated_times() -> None:
    spec = parse_cron("*/20 1-2 * * *", "America/New_York")
    # 3 November 2024, 01:30 EST: the second 01:30; 01:40 already fired (as EDT).
    assert slots(spec, "2024-11-03T06:30:00+00:00", 2) == [
        "2024-11-03T07:00:00Z",  # 02:00 EST
        "2024-11-03T07:20:00Z",
    ]


def test_seconds_schedule_through_a_fold_is_strictly_increasing() -> None:
    spec = parse_cron("*/10 * * * * *", "Europe/Paris")
    found = list(itertools.islice(spec.iter_slots(ms("2024-10-27T00:59:00+00:00")), 20))
    assert found == sorted(set(found))
    # 00:59:50Z is 02:59:50 CEST; the next wall time 03:00:00 is CET (02:00Z): an hour later.
    assert from_ms(found[4]) == datetime(2024, 10, 27, 0, 59, 50, tzinfo=UTC)
    assert from_ms(found[5]) == datetime(2024, 10, 27, 2, 0, 0, tzinfo=UTC)


# --- first slot and planning ----------------------------------------------------------------


def test_first_slot_respects_start_and_end() -> None:
    spec = parse_cron("0 * * * *")
    now = ms("2024-01-01T00:10:00+00:00")
    assert first_slot(spec, now_ms=now, start_at_ms=None, end_at_ms=None) == ms(
        "2024-01-01T01:00:00+00:00"
    )
    start = ms("2024-01-02T05:00:00+00:00")
    assert first_slot(spec, now_ms=now, start_at_ms=start, end_at_ms=None) == start
    assert first_slot(spec, now_ms=now, start_at_ms=None, end_at_ms=now + 1000) is None


def plan(catchup: str, next_fire: str, now: str, window_s: int = 3600) -> list[str]:
    spec = parse_cron("*/5 * * * *")
    result = plan_slots(
        spec,
        next_fire_ms=ms(next_fire),
        now_ms=ms(now),
        catchup=catchup,
        window_ms=window_s * 1000,
    )
    return [from_ms(s).strftime("%H:%M") for s in result.fire]


def test_on_time_slot_fires_under_every_policy() -> None:
    for policy in ("skip", "latest", "all"):
        assert plan(
            policy, next_fire="2024-01-01T10:00:00+00:00", now="2024-01-01T10:00:01+00:00"
        ) == ["10:00"]


def test_catchup_policies_after_downtime() -> None:
    # Down from 10:00 to 10:31: slots 10:00 .. 10:30 are due, 10:30 is on time.
    args = ("2024-01-01T10:00:00+00:00", "2024-01-01T10:30:05+00:00")
    assert plan("skip", *args) == ["10:30"]
    assert plan("latest", *args) == ["10:30"]
    assert plan("all", *args) == [f"10:{m:02d}" for m in range(0, 31, 5)]
    # Now nothing is on time: latest fires the newest missed one, skip none.
    late = ("2024-01-01T10:00:00+00:00", "2024-01-01T10:33:00+00:00")
    assert plan("skip", *late) == []
    assert plan("latest", *late) == ["10:30"]
    # The window bounds what is caught up.
    assert plan("all", *late, window_s=900) == ["10:20", "10:25", "10:30"]
    assert plan("latest", *late, window_s=60) == []


def test_plan_counts_expired_and_moves_next_fire() -> None:
    spec = parse_cron("*/5 * * * *")
    result = plan_slots(
        spec,
        next_fire_ms=ms("2024-01-01T10:00:00+00:00"),
        now_ms=ms("2024-01-01T10:33:00+00:00"),
        catchup="skip",
        window_ms=3_600_000,
    )
    assert result.fire == []
    assert result.expired == 7
    assert result.next_fire_ms == ms("2024-01-01T10:35:00+00:00")


def test_plan_all_fires_in_bounded_steps() -> None:
    spec = parse_cron("* * * * *")
    result = plan_slots(
        spec,
        next_fire_ms=ms("2024-01-01T10:00:00+00:00"),
        now_ms=ms("2024-01-01T10:59:30+00:00"),
        catchup="all",
        window_ms=3_600_000,
        fire_limit=10,
    )
    assert len(result.fire) == 10
    assert result.expired == 0
    assert result.next_fire_ms == ms("2024-01-01T10:10:00+00:00")


def test_plan_stops_at_end() -> None:
    spec = parse_cron("* * * * *")
    result = plan_slots(
        spec,
        next_fire_ms=ms("2024-01-01T10:00:00+00:00"),
        now_ms=ms("2024-01-01T10:05:00+00:00"),
        catchup="all",
        window_ms=3_600_000,
        end_at_ms=ms("2024-01-01T10:02:00+00:00"),
    )
    assert [from_ms(s).minute for s in result.fire] == [0, 1, 2]
    assert result.next_fire_ms is None
