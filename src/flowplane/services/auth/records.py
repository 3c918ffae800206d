"""The records the auth services hand out, and the rules on roles and namespaces they share."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flowplane.errors import InvalidInput
from flowplane.model.document import NAMESPACE_PATTERN
from flowplane.services.caller import Caller
from flowplane.services.context import current_actor
from flowplane.store.audit import Actor
from flowplane.store.records import ApiKeyRecord, UserRecord
from flowplane.store.tx import now_ms

ROLES = ("viewer", "executor", "editor", "admin")
JWT_SECRET_NAME = "jwt_secret"
BOOTSTRAP_MARKER = "bootstrap_admin_key"
LAST_USED_RESOLUTION_MS = 60_000
KEY_CACHE_SECONDS = 2.0
"""How long a process reuses a key lookup: a revocation made by another process takes effect
within this time (at once in the process that revoked it)."""
BAD_CREDENTIALS = "invalid or expired credentials"


@dataclass(frozen=True)
class ApiKeyInfo:
    """An API key as stored (never the key itself)."""

    id: str
    name: str
    prefix: str
    role: str
    namespaces: tuple[str, ...] | None
    rate_limit_per_minute: int | None
    expires_at_ms: int | None
    created_at_ms: int
    last_used_at_ms: int | None
    revoked_at_ms: int | None
    created_by: str | None

    @classmethod
    def from_row(cls, row: ApiKeyRecord) -> ApiKeyInfo:
        """Build from an ``api_keys`` row."""
        return cls(
            id=row.id,
            name=row.name,
            prefix=row.prefix,
            role=row.role,
            namespaces=namespaces_of(row.namespaces),
            rate_limit_per_minute=row.rate_limit_per_minute,
            expires_at_ms=row.expires_at_ms,
            created_at_ms=row.created_at_ms,
            last_used_at_ms=row.last_used_at_ms,
            revoked_at_ms=row.revoked_at_ms,
            created_by=row.created_by,
        )

    def active(self, at_ms: int | None = None) -> bool:
        """Whether the key is neither revoked nor expired at ``at_ms`` (default: now)."""
        at_ms = now_ms() if at_ms is None else at_ms
        if self.revoked_at_ms is not None:
            return False
        return self.expires_at_ms is None or self.expires_at_ms > at_ms


@dataclass(frozen=True)
class UserInfo:
    """A user as stored (never the password hash)."""

    id: str
    username: str
    role: str
    namespaces: tuple[str, ...] | None
    disabled: bool
    token_version: int
    created_at_ms: int
    updated_at_ms: int
    password_changed_at_ms: int
    created_by: str | None

    @classmethod
    def from_row(cls, row: UserRecord) -> UserInfo:
        """Build from a ``users`` row."""
        return cls(
            id=row.id,
            username=row.username,
            role=row.role,
            namespaces=namespaces_of(row.namespaces),
            disabled=bool(row.disabled),
            token_version=int(row.token_version),
            created_at_ms=row.created_at_ms,
            updated_at_ms=row.updated_at_ms,
            password_changed_at_ms=row.password_changed_at_ms,
            created_by=row.created_by,
        )


@dataclass(frozen=True)
class CreatedKey:
    """A new key: ``secret`` is the ``fp_...`` key, shown once and never stored."""

    info: ApiKeyInfo
    secret: str


@dataclass(frozen=True)
class LoginToken:
    """A signed login token and its expiry."""

    token: str
    expires_at_ms: int
    user: UserInfo

    def expires_in_seconds(self) -> int:
        """Whole seconds from now until the token expires (0 once it has)."""
        return max(0, (self.expires_at_ms - now_ms()) // 1000)


LOCAL = Caller.system("cli")
"""The caller of local administration (the CLI): every right, every namespace."""


def covers(caller: Caller, namespaces: Sequence[str] | None) -> bool:
    """Whether every namespace in ``namespaces`` (``None`` = all) is visible to ``caller``.

    A namespace-restricted caller can only grant (and only see) keys and users confined to
    namespaces it sees itself, so a tenant admin cannot mint a global key.
    """
    if caller.namespaces is None:
        return True
    return namespaces is not None and set(namespaces) <= set(caller.namespaces)


def actor_of(caller: Caller) -> Actor:
    """Who the audit log names: the caller, or the process itself for local administration."""
    return current_actor() if caller is LOCAL else caller.actor


def namespaces_of(value: Any) -> tuple[str, ...] | None:
    """A stored namespaces column as a tuple (``None``: all)."""
    return None if value is None else tuple(str(v) for v in value)


def check_role(role: str) -> str:
    """``role`` when it is a known role; ``InvalidInput`` otherwise."""
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    return role


def check_namespaces(namespaces: Sequence[str] | None) -> list[str] | None:
    """Sorted, deduplicated, valid namespaces (``None``: all); ``InvalidInput`` otherwise."""
    if namespaces is None:
        return None
    cleaned = sorted(set(namespaces))
    if not cleaned:
        raise InvalidInput("namespaces must be null (all) or a non-empty list")
    for ns in cleaned:
        if not re.fullmatch(NAMESPACE_PATTERN, ns):
            raise InvalidInput(f"invalid namespace {ns!r}")
    return cleaned
