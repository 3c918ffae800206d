"""Records of users and API keys (hashes only; a key's plaintext is never stored)."""

from __future__ import annotations

from dataclasses import dataclass

from flowplane.store.records.base import Record

__all__ = ["ApiKeyRecord", "UserRecord"]


@dataclass(frozen=True)
class UserRecord(Record):
    """A user who signs in with a password."""

    id: str
    username: str
    password_hash: str
    role: str
    created_at_ms: int
    updated_at_ms: int
    password_changed_at_ms: int
    namespaces: list[str] | None = None
    token_version: int = 1
    disabled: bool = False
    created_by: str | None = None


@dataclass(frozen=True)
class ApiKeyRecord(Record):
    """An API key: its prefix and hash, role, namespaces and limits."""

    id: str
    name: str
    prefix: str
    key_hash: str
    role: str
    created_at_ms: int
    namespaces: list[str] | None = None
    rate_limit_per_minute: int | None = None
    expires_at_ms: int | None = None
    last_used_at_ms: int | None = None
    revoked_at_ms: int | None = None
    created_by: str | None = None
