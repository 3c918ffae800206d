"""Records of the key-value store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flowplane.store.records.base import Record

__all__ = ["KVRecord"]


@dataclass(frozen=True)
class KVRecord(Record):
    """One live entry of a namespace's key-value store."""

    namespace: str
    key: str
    value: Any
    version: int
    created_at_ms: int
    updated_at_ms: int
    expires_at_ms: int | None = None
    updated_by: str | None = None
