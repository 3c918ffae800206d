"""Shared event pages: what the event feed reads once and hands to many subscribers.

A :class:`FeedEvent` is an event's wire body (a ``dict``) that also carries its JSON text,
encoded once when it was read (off the event loop for replays): a hundred subscribers of
one event cost one encoding, and a stream writes the same bytes to every socket.

A :class:`PageCache` keeps recent *full* replay pages. A full page read after ``lo`` holds
every matching event with ``lo < seq <= hi`` (``hi`` its last event): ``seq`` is allocated
in commit order, so once ``hi`` is visible every lower ``seq`` is, and the page stays
complete. A subscriber whose cursor falls inside a cached page of its filter takes the rest
of the page instead of reading: subscribers that reconnect from nearby ``Last-Event-ID``\\ s
after a mass reconnect fall into step after one page and then share every page. Short pages
(the reader has caught up) are never cached: what follows them is live. The cache is
bounded in bytes (the events' JSON); an event deleted by retention after its page was cached
may still be served from it, exactly as if it had been read a moment earlier.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from flowplane.jsontext import compact

__all__ = ["FeedEvent", "PageCache", "feed_event", "feed_events"]


class FeedEvent(dict[str, Any]):
    """An event's wire body plus ``json``, its compact JSON text encoded once, and
    ``frames``: renderings of it a transport caches for its other subscribers (an SSE
    message per event name)."""

    __slots__ = ("frames", "json")
    json: bytes
    frames: dict[str | None, bytes]


def feed_event(payload: dict[str, Any]) -> FeedEvent:
    """Wrap ``payload`` and encode it (as :func:`json.dumps` with compact separators)."""
    event = FeedEvent(payload)
    event.json = compact(payload).encode()
    event.frames = {}
    return event


def feed_events(payloads: Iterable[dict[str, Any]]) -> list[FeedEvent]:
    """:func:`feed_event` of each payload."""
    return [feed_event(payload) for payload in payloads]


@dataclass
class _Page:
    lo: int
    events: list[FeedEvent]
    seqs: list[int] = field(default_factory=list)
    size: int = 0

    @property
    def hi(self) -> int:
        return self.seqs[-1]


class PageCache:
    """Recent full replay pages per filter, at most ``max_bytes`` of event JSON in all."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self.hits = 0
        self._pages: OrderedDict[tuple[Hashable, int], _Page] = OrderedDict()
        self._starts: dict[Hashable, list[int]] = {}

    def add(self, key: Hashable, lo: int, events: list[FeedEvent]) -> None:
        """Keep a full page: every ``key`` event with ``lo < seq <= events[-1]['seq']``."""
        if not events or (key, lo) in self._pages:
            return
        size = sum(len(event.json) for event in events)
        if size > self.max_bytes // 4:
            return  # one page may not push everything else out
        page = _Page(lo, events, [event["seq"] for event in events], size)
        self._pages[(key, lo)] = page
        bisect.insort(self._starts.setdefault(key, []), lo)
        self.size += size
        while self.size > self.max_bytes:
            (old_key, old_lo), old = self._pages.popitem(last=False)
            self.size -= old.size
            starts = self._starts[old_key]
            del starts[bisect.bisect_left(starts, old_lo)]
            if not starts:
                del self._starts[old_key]

    def after(self, key: Hashable, cursor: int) -> list[FeedEvent] | None:
        """The events of a cached page covering ``cursor`` with ``seq > cursor`` (the
        page's rest, complete up to its last event), or ``None`` when none covers it."""
        starts = self._starts.get(key)
        if not starts:
            return None
        index = bisect.bisect_right(starts, cursor) - 1
        # Pages of one key may overlap (read from different cursors): try the nearest
        # starts at or below the cursor.
        for lo in reversed(starts[max(0, index - 3) : index + 1]):
            page = self._pages[(key, lo)]
            if lo <= cursor < page.hi:
                self._pages.move_to_end((key, lo))
                self.hits += 1
                return page.events[bisect.bisect_right(page.seqs, cursor) :]
        return None
