"""SettledRunCache: freshness, drops racing readers, and its memory bound."""

from __future__ import annotations

import pytest

from flowplane.services import run_cache
from flowplane.services.run_cache import SettledRunCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_after_the_ttl() -> None:
    clock = Clock()
    cache = SettledRunCache(2.0, clock=clock)
    assert cache.put("r1", "ns", b"{}", cache.token())
    clock.now += 0.9
    entry = cache.get("r1")
    assert entry is not None and entry.body == b"{}" and entry.namespace == "ns"
    clock.now += 1.0  # past REFRESH_AFTER: one request is to read it anew
    assert cache.get("r1") is None  # (the fast path: it goes to the claiming lookup)
    assert cache.get("r1", claim=True) is None  # this one reads anew ...
    assert cache.get("r1") is entry  # ... while every other is answered from the entry
    assert cache.get("r1", claim=True) is entry  # (claimed once)
    clock.now += 0.1  # never answered past the ttl, refresh or not
    assert cache.get("r1") is None
    assert len(cache) == 0


def test_a_refresh_replaces_the_entry_before_it_expires() -> None:
    clock = Clock()
    cache = SettledRunCache(2.0, clock=clock)
    assert cache.put("r1", "ns", b"old", cache.token())
    clock.now += 1.5
    token = cache.token()
    assert cache.get("r1", claim=True) is None  # claimed: the read starts
    assert cache.put("r1", "ns", b"new", token)  # and stores what it read
    clock.now += 0.9  # the old entry would have expired; the new one is 0.9 s old
    entry = cache.get("r1")
    assert entry is not None and entry.body == b"new" and not entry.refreshing


def test_lists_and_live_runs_are_refreshed_the_same_way() -> None:
    clock = Clock()
    cache = SettledRunCache(2.0, clock=clock)
    cache.caught_up(None, [(0, "")], True)  # (live entries are kept once caught up)
    assert cache.put_list("q", Page(), cache.list_token()) is not None
    assert cache.put_live("r1", "ns", object(), 10, cache.live_token())
    clock.now += 1.5
    assert cache.get_list("q", claim=True) is None and cache.get_list("q") is not None
    assert cache.get_live("r1", claim=True) is None and cache.get_live("r1") is not None
    clock.now += 0.5
    assert cache.get_list("q") is None and cache.get_live("r1") is None


class Page:
    def __init__(self) -> None:
        self.items: list[object] = []


def test_a_reader_that_started_before_a_drop_cannot_store() -> None:
    cache = SettledRunCache(2.0)
    token = cache.token()  # a reader starts
    cache.drop("r1")  # the run changes meanwhile
    assert not cache.put("r1", "ns", b"old", token)
    assert cache.get("r1") is None
    assert cache.put("r1", "ns", b"new", cache.token())
    cache.drop("r1")
    assert cache.get("r1") is None


def test_off_stores_nothing() -> None:
    cache = SettledRunCache(0)
    assert not cache.enabled
    assert not cache.put("r1", "ns", b"{}", cache.token())
    assert cache.get("r1") is None


def test_bounded_oldest_first() -> None:
    cache = SettledRunCache(60.0, max_entries=3)
    for i in range(5):
        cache.put(f"r{i}", "ns", b"{}", cache.token())
    assert len(cache) == 3
    assert [cache.get(f"r{i}") is not None for i in range(5)] == [False, False, True, True, True]


def test_bytes_are_bounded_and_expired_entries_swept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_cache, "MAX_BODY_BYTES", 100)
    monkeypatch.setattr(run_cache, "MAX_TOTAL_BYTES", 250)
    clock = Clock()
    cache = SettledRunCache(10.0, clock=clock)
    assert not cache.put("huge", "ns", b"x" * 101, cache.token())
    for i in range(3):
        assert cache.put(f"r{i}", "ns", b"x" * 100, cache.token())
    assert [cache.get(f"r{i}") is not None for i in range(3)] == [False, True, True]
    clock.now += 11
    cache.put("new", "ns", b"{}", cache.token())
    assert len(cache) == 1  # the expired ones went when the new one came
