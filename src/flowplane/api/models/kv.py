"""Wire models of ``/v1/kv``: the body of a write and the entries read back."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from flowplane.api.models.common import iso
from flowplane.client.models import WireModel
from flowplane.services.kv import (
    MAX_TTL_SECONDS,
    KVEntry,
)


class KVPut(BaseModel):
    """``PUT /v1/kv/{namespace}/{key}``."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")
    value: Any = Field(description="Any JSON value but null.")
    ttl_seconds: float | None = Field(
        default=None, gt=0, le=MAX_TTL_SECONDS, description="Expire after this many seconds."
    )


class KVEntryOut(WireModel):
    """An entry."""

    namespace: str
    key: str
    value: Any
    version: int = Field(description="1 at creation, +1 on every write; the ETag.")
    expires_at_ms: int | None = None
    expires_at: str | None = None
    created_at_ms: int
    updated_at_ms: int
    updated_at: str | None = None


class KVList(WireModel):
    """A page of entries, ordered by key."""

    items: list[KVEntryOut]
    next_cursor: str | None = None


def entry_model(entry: KVEntry) -> KVEntryOut:
    """The wire form of an entry."""
    return KVEntryOut(
        namespace=entry.namespace,
        key=entry.key,
        value=entry.value,
        version=entry.version,
        expires_at_ms=entry.expires_at_ms,
        expires_at=iso(entry.expires_at_ms),
        created_at_ms=entry.created_at_ms,
        updated_at_ms=entry.updated_at_ms,
        updated_at=iso(entry.updated_at_ms),
    )
