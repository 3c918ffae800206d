"""The SSE encoder: message format, keep-alives, end of stream, Last-Event-ID parsing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from flowplane.api.sse import format_event, parse_last_event_id, stream_events


def test_format_event() -> None:
    event = {"type": "NodeLog", "runId": "r", "seq": 7, "timestampMs": 1, "message": "a\nb"}
    text = format_event(event).decode()
    assert text.startswith("id: 7\nevent: NodeLog\ndata: ") and text.endswith("\n\n")
    data = text.split("data: ", 1)[1].strip()
    assert json.loads(data) == event and "\n" not in data
    named = format_event(event, "smithers").decode()
    assert named.startswith("id: 7\nevent: smithers\ndata: ") and named.endswith("\n\n")


def test_parse_last_event_id() -> None:
    assert parse_last_event_id(None) == 0
    assert parse_last_event_id(" 12 ") == 12
    assert parse_last_event_id("abc") == 0
    assert parse_last_event_id("-3") == 0


async def test_keepalive_then_events_then_close() -> None:
    async def source() -> AsyncIterator[dict[str, Any]]:
        await asyncio.sleep(0.12)
        yield {"type": "RunStarted", "seq": 1}
        yield {"type": "RunFinished", "seq": 2}

    chunks = [c async for c in stream_events(source(), keepalive_seconds=0.05)]
    assert chunks[0].startswith(b"retry: ")
    assert b": keep-alive\n\n" in chunks
    # Events already queued together may share one chunk (one write for a burst).
    assert b"".join(c for c in chunks if c.startswith(b"id:")) == format_event(
        {"type": "RunStarted", "seq": 1}
    ) + format_event({"type": "RunFinished", "seq": 2})


async def test_bounded_buffer_applies_backpressure() -> None:
    produced = 0

    async def source() -> AsyncIterator[dict[str, Any]]:
        nonlocal produced
        for seq in range(1, 1000):
            produced = seq
            yield {"type": "NodeLog", "seq": seq}

    stream = stream_events(source(), buffer=4)
    assert (await anext(stream)).startswith(b"retry: ")
    await anext(stream)
    await asyncio.sleep(0.05)
    # The producer waits for the reader instead of buffering everything: at most the
    # buffer, one coalesced chunk already taken from it, and the event it is putting.
    assert produced <= 4 + 4 + 1
    await stream.aclose()
