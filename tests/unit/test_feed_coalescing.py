"""When the event feed's tail may read again (``feed.next_read_at``): one read per
coalescing interval counted from the last read's start, and a rest after a long hand-out."""

from __future__ import annotations

import pytest

from flowplane.services.feed import (
    COALESCE_MAX_SECONDS,
    COALESCE_PER_SUBSCRIBER_SECONDS,
    HANDOUT_REST,
    next_read_at,
)


def test_a_quiet_feed_with_no_subscribers_reads_at_once() -> None:
    assert next_read_at(10.0, 10.001, 0.0, 0) == 10.001


def test_the_interval_counts_from_the_start_of_the_last_read() -> None:
    # 1,000 subscribers: a 20 ms interval. A read that began at 10.0 and handed out for
    # 12 ms lets the next one begin at 10.020, not 20 ms after it ended (10.032).
    at = next_read_at(10.0, 10.012, 0.012, 1000)
    assert at == pytest.approx(10.0 + COALESCE_MAX_SECONDS)
    assert at < 10.012 + COALESCE_MAX_SECONDS


def test_the_interval_grows_with_the_subscribers_up_to_its_cap() -> None:
    assert next_read_at(10.0, 10.0, 0.0, 10) == pytest.approx(
        10.0 + 10 * COALESCE_PER_SUBSCRIBER_SECONDS
    )
    assert next_read_at(10.0, 10.0, 0.0, 50_000) == pytest.approx(10.0 + COALESCE_MAX_SECONDS)


def test_a_hand_out_longer_than_the_interval_is_followed_by_a_rest() -> None:
    # 40 ms of writes to the sockets: the rest of the process gets its share of the loop
    # before the next read, whatever the interval says.
    at = next_read_at(10.0, 10.045, 0.040, 1000)
    assert at == pytest.approx(10.045 + 0.040 * HANDOUT_REST)
    assert at > 10.0 + COALESCE_MAX_SECONDS


def test_time_spent_waiting_for_the_table_is_no_hand_out() -> None:
    # A read that waited 30 ms on the database but handed out for 1 ms: the interval
    # (counted from its start) has passed, so the next read may begin when it ended.
    assert next_read_at(10.0, 10.031, 0.001, 1000) == pytest.approx(10.031 + 0.001 * HANDOUT_REST)
