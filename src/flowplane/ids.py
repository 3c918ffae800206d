"""Ids and the clock: time-ordered ids for every stored object, milliseconds since the epoch.

A leaf module (it imports nothing of Flowplane), so every layer may use it.
"""

from __future__ import annotations

import os
import threading
import time

_last_id: list[int] = [0, 0]
_id_lock = threading.Lock()


def new_id() -> str:
    """Return a new time-ordered id (UUIDv7 layout), increasing within a process."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10)) >> 6  # 74 random bits
    with _id_lock:
        if ms <= _last_id[0]:
            # Same millisecond (or a clock step back): keep ids ordered by creation.
            ms, rand = _last_id[0], (_last_id[1] + 1) & ((1 << 74) - 1)
        _last_id[0], _last_id[1] = ms, rand
    value = (
        (ms << 80) | (0x7 << 76) | ((rand >> 62) << 64) | (0b10 << 62) | (rand & ((1 << 62) - 1))
    )
    # str(uuid.UUID(int=value)), without building the UUID.
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def now_ms() -> int:
    """Milliseconds since the epoch."""
    return int(time.time() * 1000)
