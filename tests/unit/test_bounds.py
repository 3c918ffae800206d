"""The bounded integer types and time checks of :mod:`flowplane.model.bounds`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import BaseModel, ValidationError

from flowplane.errors import InvalidInput
from flowplane.model.bounds import (
    INT32_MAX,
    INT64_MAX,
    MAX_EPOCH_MS,
    EpochMs,
    Iteration,
    Seq,
    Version,
    check_epoch_ms,
    epoch_ms,
)


class Numbers(BaseModel):
    seq: Seq = 0
    ms: EpochMs = 0
    iteration: Iteration = 0
    version: Version = 1


@pytest.mark.parametrize(
    ("field", "good", "bad"),
    [
        ("seq", [0, INT64_MAX], [-1, INT64_MAX + 1]),
        ("ms", [0, MAX_EPOCH_MS], [-1, MAX_EPOCH_MS + 1, 10**15]),
        ("iteration", [0, INT32_MAX], [-1, INT32_MAX + 1]),
        ("version", [1, INT32_MAX], [0, INT32_MAX + 1]),
    ],
)
def test_types_hold_their_range(field: str, good: list[int], bad: list[int]) -> None:
    for value in good:
        assert getattr(Numbers.model_validate({field: value}), field) == value
    for value in bad:
        with pytest.raises(ValidationError):
            Numbers.model_validate({field: value})


def test_the_last_ms_is_the_end_of_year_9999() -> None:
    end = datetime(9999, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC)
    assert epoch_ms(end, "t") == MAX_EPOCH_MS
    assert epoch_ms(datetime(1970, 1, 1, tzinfo=UTC), "t") == 0


def test_times_outside_1970_to_9999_are_invalid_input() -> None:
    # 9999-12-31 23:00 at UTC-12 is in year 10000 in UTC: refused, without an overflow.
    late = datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-12)))
    early = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))
    for moment in (late, early, datetime(1969, 12, 31, 23, 59, tzinfo=UTC)):
        with pytest.raises(InvalidInput, match="between 1970"):
            epoch_ms(moment, "startAt")
    for value in (-1, MAX_EPOCH_MS + 1, 2**63):
        with pytest.raises(InvalidInput, match="createdAfter"):
            check_epoch_ms(value, "createdAfter")
