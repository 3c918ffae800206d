"""Wire helpers the resource modules share: problem responses, timestamps, ETags."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flowplane.api.problems import Problem

__all__ = ["etag", "iso", "parse_if_match", "problems"]


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for problem documents (401 and 403 included)."""
    return {
        status: {
            "model": Problem,
            "content": {"application/problem+json": {}},
            "description": "A problem document (RFC 9457) with a stable `code`.",
        }
        for status in (401, 403, *statuses)
    }


def iso(ms: int | None) -> str | None:
    """ISO-8601 (UTC) of epoch milliseconds."""
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).isoformat().replace("+00:00", "Z")


def etag(version: int) -> str:
    """The ETag of a version."""
    return f'"{version}"'


def parse_if_match(value: str | None) -> int | None:
    """``If-Match`` -> the expected version; a value naming no version never matches (-1)."""
    if value is None or not value.strip():
        return None
    text = value.split(",")[0].strip().removeprefix("W/").strip('"')
    return int(text) if text.isdigit() else -1
