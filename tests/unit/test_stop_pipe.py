"""The listener thread's wake-up pipe: a cleared pipe never keeps ``poll`` returning."""

from __future__ import annotations

import os
import select

from flowplane.store.postgres import _StopPipe


def readable(pipe: _StopPipe) -> bool:
    poller = select.poll()
    poller.register(pipe.fileno(), select.POLLIN)
    return bool(poller.poll(0))


def test_set_then_clear() -> None:
    pipe = _StopPipe()
    try:
        assert not readable(pipe) and not pipe.is_set()
        pipe.set()
        pipe.set()  # once set, no second byte
        assert readable(pipe) and pipe.is_set()
        pipe.clear()
        assert not readable(pipe) and not pipe.is_set()
        pipe.set()  # and it can be set again
        assert readable(pipe)
    finally:
        pipe.close()


def test_clear_drains_a_byte_written_after_the_flag_was_cleared() -> None:
    # A set() racing clear(): its flag cleared, its byte written after: still drained.
    pipe = _StopPipe()
    try:
        os.write(pipe._write, b"x")
        assert readable(pipe) and not pipe.is_set()
        pipe.clear()
        assert not readable(pipe)
    finally:
        pipe.close()


def test_set_after_close_writes_nothing() -> None:
    pipe = _StopPipe()
    pipe.close()
    assert pipe.fileno() == -1
    pipe.set()  # its old descriptor number may belong to another file by now
    pipe.clear()


def test_channel_names_fit_postgresql() -> None:
    from flowplane.store.postgres import MAX_CHANNEL_BYTES, channel_name

    assert channel_name("flowplane") == "flowplane_flowplane"
    assert channel_name("flowplane", "_events") == "flowplane_flowplane_events"
    long_a, long_b = "a" * 62 + "b", "a" * 62 + "c"
    names = {channel_name(s, suffix) for s in (long_a, long_b) for suffix in ("", "_events")}
    assert len(names) == 4
    assert all(len(name.encode()) <= MAX_CHANNEL_BYTES for name in names)
    assert all(name.endswith("_events") for name in names if "events" in name)
