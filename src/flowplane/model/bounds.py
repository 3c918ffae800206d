"""Bounded integers for every number a request carries to the database.

A number that a client sends and that reaches a query (a filter, a cursor, a key, a value
to store) must fit the column it meets: SQLite stores signed 64-bit integers (binding more
raises ``OverflowError``), PostgreSQL refuses a ``bigint`` out of range (22003) and an
``integer`` past 2^31 - 1, and Python's ``datetime`` ends at year 9999. Each face (REST
query, path and body, RPC and WebSocket params, headers, ISO-8601 or millisecond times)
declares its numbers with these types, so an out-of-range value is a 400 problem at the
edge that names the field and its range, never a driver error.

The types are ``Annotated[int, Field(ge=..., le=...)]``: they work as pydantic model fields
and as FastAPI ``Query``/``Path``/``Header`` parameters alike, and put ``minimum`` and
``maximum`` into the OpenAPI document. A parameter may override one bound and keep the
other: ``Annotated[Seq, Query(alias="afterSeq", ge=-1)]`` (a run's stream takes -1 as
"from the start") still stops at 2^63 - 1.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import Field

from flowplane.errors import InvalidInput

__all__ = [
    "INT32_MAX",
    "INT64_MAX",
    "INT64_MIN",
    "MAX_EPOCH_MS",
    "MIN_EPOCH_MS",
    "EpochMs",
    "FrameNo",
    "Int64",
    "Iteration",
    "NonNegativeInt32",
    "NonNegativeInt64",
    "PositiveInt64",
    "Seq",
    "Version",
    "check_epoch_ms",
    "epoch_ms",
    "in_range",
]

INT64_MIN = -(2**63)
"""The smallest signed 64-bit integer (SQLite ``INTEGER``, PostgreSQL ``bigint``)."""
INT64_MAX = 2**63 - 1
"""The largest signed 64-bit integer."""
INT32_MAX = 2**31 - 1
"""The largest PostgreSQL ``integer`` (the columns of versions, iterations, frames)."""
MIN_EPOCH_MS = 0
"""1970-01-01T00:00:00Z: the earliest time a request may name."""
MAX_EPOCH_MS = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z: the latest time Python's ``datetime`` (and so every rendering
of a time) can hold; 10^15 ms (year 33658) is past it."""

Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
"""Any signed 64-bit integer."""
NonNegativeInt64 = Annotated[int, Field(ge=0, le=INT64_MAX)]
"""0 to 2^63 - 1."""
PositiveInt64 = Annotated[int, Field(ge=1, le=INT64_MAX)]
"""1 to 2^63 - 1 (row ids, audit cursors)."""
NonNegativeInt32 = Annotated[int, Field(ge=0, le=INT32_MAX)]
"""0 to 2^31 - 1: the non-negative part of a PostgreSQL ``integer`` column."""
EpochMs = Annotated[int, Field(ge=MIN_EPOCH_MS, le=MAX_EPOCH_MS)]
"""Milliseconds since 1970-01-01T00:00:00Z, up to the end of year 9999."""
Seq = NonNegativeInt64
"""An event sequence number (``afterSeq``, ``Last-Event-ID``)."""
Iteration = NonNegativeInt32
"""A ``foreach`` iteration (0 for a node without ``foreach``)."""
Version = Annotated[int, Field(ge=1, le=INT32_MAX)]
"""A workflow, credential or KV version (1 at creation)."""
FrameNo = NonNegativeInt32
"""A run's frame number (``afterFrameNo``; ``frameNo`` of rewind and fork)."""


def in_range(value: int, low: int = INT64_MIN, high: int = INT64_MAX) -> bool:
    """Whether ``value`` lies in ``low..high`` (by default: a signed 64-bit integer)."""
    return low <= value <= high


def check_epoch_ms(value: int, what: str) -> int:
    """Return ``value`` if it is an :data:`EpochMs`, else refuse it.

    Raises:
        InvalidInput: ``value`` is before 1970 or after year 9999.
    """
    if not in_range(value, MIN_EPOCH_MS, MAX_EPOCH_MS):
        raise InvalidInput(
            f"{what} must be between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z "
            f"({MIN_EPOCH_MS} to {MAX_EPOCH_MS} ms)"
        )
    return value


def epoch_ms(moment: datetime, what: str) -> int:
    """Milliseconds since the epoch of an aware ``moment``, checked as :func:`check_epoch_ms`.

    Raises:
        InvalidInput: ``moment`` is outside 1970..9999 in UTC.
    """
    # A difference of aware datetimes is exact (no float, unlike ``timestamp()``) and cannot
    # overflow, even where an offset carries 9999-12-31 past the end of the year.
    return check_epoch_ms((moment - _EPOCH) // timedelta(milliseconds=1), what)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
