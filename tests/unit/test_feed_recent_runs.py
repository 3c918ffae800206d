"""The event feed's recent runs (:mod:`flowplane.services.feed_runs`): bounded in runs,
events, bytes and age; a run forgotten while a tail read was in flight stays forgotten.
And which ``Accept`` headers ask a start for its run's stream."""

from __future__ import annotations

import time

import pytest

from flowplane.api.run_stream import wants_stream
from flowplane.services.feed_pages import FeedEvent, feed_event
from flowplane.services.feed_runs import RecentRuns


def _event(run_id: str, seq: int, kind: str = "NodeFinished", size: int = 0) -> FeedEvent:
    return feed_event({"runId": run_id, "seq": seq, "type": kind, "output": "x" * size})


def _start(run_id: str, seq: int) -> tuple[str, FeedEvent]:
    return ("default", _event(run_id, seq, "RunStarted"))


def test_events_are_kept_from_a_runs_start() -> None:
    recent = RecentRuns()
    recent.note([("default", _event("r0", 1)), _start("r1", 2), ("default", _event("r1", 3))])
    assert recent.get("r0") is None  # not seen from its start
    entry = recent.get("r1")
    assert entry is not None and [e["seq"] for e in entry.events] == [2, 3]


def test_bytes_are_bounded() -> None:
    recent = RecentRuns(max_bytes=40_000)
    for n in range(5):  # 5 runs of ~9 KB: the oldest goes
        recent.note([_start(f"r{n}", 2 * n), ("default", _event(f"r{n}", 2 * n + 1, size=9_000))])
    assert recent.get("r0") is None and recent.get("r1") is not None
    assert recent.size <= 40_000
    # A run whose events alone pass a quarter of the budget is not kept.
    recent.note([_start("big", 100), ("default", _event("big", 101, size=11_000))])
    assert recent.get("big") is None
    assert recent.size == sum(
        len(e.json)
        for r in ("r1", "r2", "r3", "r4")
        for e in recent.get(r).events  # type: ignore[union-attr]
    )


def test_runs_and_events_are_bounded() -> None:
    recent = RecentRuns(runs=2, events=3)
    recent.note([_start("a", 1), _start("b", 2), _start("c", 3)])
    assert recent.get("a") is None and len(recent) == 2
    recent.note([("default", _event("b", n)) for n in range(4, 7)])
    assert recent.get("b") is None  # a fourth event: forgotten
    assert recent.size == sum(len(e.json) for e in recent.get("c").events)  # type: ignore[union-attr]


def test_entries_expire(monkeypatch: pytest.MonkeyPatch) -> None:
    recent = RecentRuns(ttl_seconds=2.0)
    now = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: now)
    recent.note([_start("r1", 1)])
    assert recent.get("r1") is not None
    monkeypatch.setattr(time, "monotonic", lambda: now + 2.0)
    assert recent.get("r1") is None  # its stream reads the table
    recent.note([_start("r2", 2)])
    assert len(recent) == 1  # the expired entry is dropped
    off = RecentRuns(ttl_seconds=0)
    off.note([_start("r3", 3)])
    assert off.get("r3") is None


def test_a_run_forgotten_during_a_read_is_not_noted() -> None:
    recent = RecentRuns()
    since = recent.forgets  # the tail's read begins (its snapshot has the run)
    recent.forget("r1")  # the run is deleted: the commit hook, another thread
    recent.note([_start("r1", 1), ("default", _event("r1", 2)), _start("r2", 3)], since)
    assert recent.get("r1") is None and recent.get("r2") is not None
    # A later read (begun after the forget) sees the run again if it starts afresh.
    recent.note([_start("r1", 4)], recent.forgets)
    assert recent.get("r1") is not None


@pytest.mark.parametrize(
    ("accept", "wanted"),
    [
        ("text/event-stream", True),
        ("application/json, text/event-stream;q=0.5", True),
        ("TEXT/Event-Stream; charset=utf-8", True),
        ("text/event-stream;q=0", False),
        ("text/event-stream; q=0.0", False),
        ("text/event-stream;Q=0.000", False),
        ("text/event-stream;q=0.001", True),
        ("application/json", False),
        ("*/*", False),
    ],
)
def test_accept_asks_for_the_stream(accept: str, wanted: bool) -> None:
    assert wants_stream([accept]) is wanted
