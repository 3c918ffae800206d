"""Ids: time-ordered UUIDv7 strings, increasing within a process even in one millisecond."""

from __future__ import annotations

import time
import uuid

from flowplane.ids import new_id, now_ms


def test_ids_are_uuid7_and_increase_within_a_millisecond() -> None:
    ids = [new_id() for _ in range(2000)]  # many share a millisecond
    parsed = [uuid.UUID(i) for i in ids]
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in parsed)
    # The canonical form: lower-case hex, hyphens at 8-4-4-4-12.
    assert all(str(u) == i for u, i in zip(parsed, ids, strict=True))
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_id_carries_its_creation_time() -> None:
    before = now_ms()
    created = uuid.UUID(new_id()).int >> 80
    assert before <= created <= int(time.time() * 1000) + 1000
