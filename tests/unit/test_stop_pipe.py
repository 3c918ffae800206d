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
