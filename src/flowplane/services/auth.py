"""AuthService: API keys, users, login tokens, and turning credentials into identities.

Rules that live here rather than in the routes:

- keys and users carry a role (``viewer < executor < editor < admin``) and optionally a
  list of namespaces (``None`` = all);
- a namespace-restricted caller can only grant (and only see) keys and users confined to
  namespaces it can see itself, so a tenant admin cannot mint a global key;
- a login token embeds the user's ``token_version``; changing the password (or disabling
  the user) bumps it, which revokes every token issued before;
- unknown, revoked, expired and malformed credentials all fail with the same
  ``Unauthorized`` message, and every secret comparison is constant-time.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flowplane.engine.transitions import new_id
from flowplane.errors import Conflict, InvalidInput, NotFound, Unauthorized
from flowplane.model.document import NAMESPACE_PATTERN
from flowplane.security import passwords, tokens
from flowplane.services.context import current_actor
from flowplane.settings import Settings
from flowplane.store import audit
from flowplane.store import auth_queries as q
from flowplane.store.base import Store
from flowplane.store.tx import Row, Tx, now_ms

ROLES = ("viewer", "executor", "editor", "admin")
JWT_SECRET_NAME = "jwt_secret"
BOOTSTRAP_MARKER = "bootstrap_admin_key"
LAST_USED_RESOLUTION_MS = 60_000
KEY_CACHE_SECONDS = 2.0
"""How long a process reuses a key lookup: a revocation made by another process takes effect
within this time (at once in the process that revoked it)."""
_BAD_CREDENTIALS = "invalid or expired credentials"
_log = logging.getLogger("flowplane.auth")


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
    def from_row(cls, row: Row) -> ApiKeyInfo:
        """Build from an ``api_keys`` row."""
        return cls(
            id=row["id"],
            name=row["name"],
            prefix=row["prefix"],
            role=row["role"],
            namespaces=_namespaces(row["namespaces"]),
            rate_limit_per_minute=row["rate_limit_per_minute"],
            expires_at_ms=row["expires_at_ms"],
            created_at_ms=row["created_at_ms"],
            last_used_at_ms=row["last_used_at_ms"],
            revoked_at_ms=row["revoked_at_ms"],
            created_by=row["created_by"],
        )

    def active(self, at_ms: int) -> bool:
        """Whether the key is neither revoked nor expired at ``at_ms``."""
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
    def from_row(cls, row: Row) -> UserInfo:
        """Build from a ``users`` row."""
        return cls(
            id=row["id"],
            username=row["username"],
            role=row["role"],
            namespaces=_namespaces(row["namespaces"]),
            disabled=bool(row["disabled"]),
            token_version=int(row["token_version"]),
            created_at_ms=row["created_at_ms"],
            updated_at_ms=row["updated_at_ms"],
            password_changed_at_ms=row["password_changed_at_ms"],
            created_by=row["created_by"],
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


@dataclass(frozen=True)
class Scope:
    """What the caller of an administrative operation may grant and see.

    Attributes:
        name: who acts (stored as ``created_by``).
        namespaces: the caller's namespaces (``None`` = all).
    """

    name: str | None = None
    namespaces: tuple[str, ...] | None = None

    def covers(self, namespaces: Sequence[str] | None) -> bool:
        """Whether every namespace in ``namespaces`` (``None`` = all) is within this scope."""
        if self.namespaces is None:
            return True
        return namespaces is not None and set(namespaces) <= set(self.namespaces)


LOCAL = Scope(name="cli")
"""The scope of local administration (the CLI): everything."""


def _namespaces(value: Any) -> tuple[str, ...] | None:
    return None if value is None else tuple(str(v) for v in value)


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    return role


def _check_namespaces(namespaces: Sequence[str] | None) -> list[str] | None:
    if namespaces is None:
        return None
    cleaned = sorted(set(namespaces))
    if not cleaned:
        raise InvalidInput("namespaces must be null (all) or a non-empty list")
    for ns in cleaned:
        if not re.fullmatch(NAMESPACE_PATTERN, ns):
            raise InvalidInput(f"invalid namespace {ns!r}")
    return cleaned


class AuthService:
    """API keys, users and login tokens over the store.

    Args:
        store: the open store.
        settings: for the token lifetime and the configured JWT secret.
    """

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._jwt_secret: str | None = settings.jwt_secret
        # prefix -> (monotonic time read, candidate rows); see KEY_CACHE_SECONDS.
        self._key_rows: dict[str, tuple[float, list[Row]]] = {}

    # --- start-up ----------------------------------------------------------------------

    async def jwt_secret(self) -> str:
        """The HS256 key: the configured one, or one generated once and kept in the database."""
        if self._jwt_secret is None:

            def load_or_create(tx: Tx) -> str:
                existing = q.get_secret(tx, JWT_SECRET_NAME)
                if existing is not None:
                    return existing
                secret = tokens.generate_jwt_secret()
                q.put_secret(tx, JWT_SECRET_NAME, secret)
                return secret

            self._jwt_secret = tokens.check_jwt_secret(await self.store.transact(load_or_create))
        return self._jwt_secret

    async def bootstrap(self, admin_key: str | None = None) -> str | None:
        """Make sure an admin can get in; return a newly generated key (to print once).

        With ``admin_key`` (``FLOWPLANE_ADMIN_KEY``), that key is created as an admin key if
        it is not stored yet and nothing is returned. Otherwise, when no key has ever
        existed, a random admin key is created and returned; a marker row makes this
        happen once per database even when several processes start together.
        """
        if admin_key is not None:
            if not tokens.looks_like_api_key(admin_key):
                raise ValueError(
                    "FLOWPLANE_ADMIN_KEY must start with 'fp_' and have at least "
                    f"{tokens.MIN_KEY_CHARS} printable characters"
                )
            key_hash = tokens.hash_api_key(admin_key)

            def ensure(tx: Tx) -> None:
                if q.api_key_by_hash(tx, key_hash) is None:
                    self._insert_key(
                        tx,
                        name="admin (FLOWPLANE_ADMIN_KEY)",
                        prefix=tokens.key_prefix(admin_key),
                        key_hash=key_hash,
                        role="admin",
                        namespaces=None,
                        expires_at_ms=None,
                        rate_limit=None,
                        created_by="bootstrap",
                    )
                if q.get_secret(tx, BOOTSTRAP_MARKER) is None:
                    q.put_secret(tx, BOOTSTRAP_MARKER, "FLOWPLANE_ADMIN_KEY")

            await self.store.transact(ensure)
            return None

        def first_key(tx: Tx) -> str | None:
            if q.get_secret(tx, BOOTSTRAP_MARKER) is not None or q.count_api_keys(tx) > 0:
                return None
            generated = tokens.generate_api_key()
            q.put_secret(tx, BOOTSTRAP_MARKER, generated.prefix)
            self._insert_key(
                tx,
                name="admin (first start)",
                prefix=generated.prefix,
                key_hash=generated.key_hash,
                role="admin",
                namespaces=None,
                expires_at_ms=None,
                rate_limit=None,
                created_by="bootstrap",
            )
            return generated.key

        return await self.store.transact(first_key)

    # --- API keys ------------------------------------------------------------------------

    def _insert_key(
        self,
        tx: Tx,
        *,
        name: str,
        prefix: str,
        key_hash: str,
        role: str,
        namespaces: list[str] | None,
        expires_at_ms: int | None,
        rate_limit: int | None,
        created_by: str | None,
        actor: audit.Actor = audit.SYSTEM,
    ) -> Row:
        row: Row = {
            "id": new_id(),
            "name": name,
            "prefix": prefix,
            "key_hash": key_hash,
            "role": role,
            "namespaces": namespaces,
            "rate_limit_per_minute": rate_limit,
            "expires_at_ms": expires_at_ms,
            "created_at_ms": tx.now_ms,
            "last_used_at_ms": None,
            "revoked_at_ms": None,
            "created_by": created_by,
        }
        q.insert_api_key(tx, row)
        audit.record(
            tx,
            actor=actor,
            action="api_key.create",
            namespace=None,
            target_type="api_key",
            target_id=row["id"],
            details={"name": name, "role": role, "namespaces": namespaces},
        )
        return row

    async def create_api_key(
        self,
        *,
        name: str,
        role: str,
        namespaces: Sequence[str] | None = None,
        expires_at_ms: int | None = None,
        rate_limit_per_minute: int | None = None,
        scope: Scope = LOCAL,
    ) -> CreatedKey:
        """Create a key; the returned ``secret`` is the only time the key is visible.

        Raises:
            InvalidInput: bad role, namespace, expiry or limit.
            NotFound: ``scope`` may not grant those namespaces (tenant isolation).
        """
        _check_role(role)
        allowed = _check_namespaces(namespaces)
        if not scope.covers(allowed):
            raise InvalidInput("you can only grant namespaces you can see yourself")
        if expires_at_ms is not None and expires_at_ms <= now_ms():
            raise InvalidInput("expiresAtMs is in the past")
        if rate_limit_per_minute is not None and rate_limit_per_minute < 0:
            raise InvalidInput("rateLimitPerMinute must be >= 0")
        generated = tokens.generate_api_key()
        who = current_actor()

        def insert(tx: Tx) -> Row:
            return self._insert_key(
                tx,
                name=name,
                prefix=generated.prefix,
                key_hash=generated.key_hash,
                role=role,
                namespaces=allowed,
                expires_at_ms=expires_at_ms,
                rate_limit=rate_limit_per_minute,
                created_by=scope.name,
                actor=who,
            )

        row = await self.store.transact(insert)
        _log.info("API key %s (%s, %s) created by %s", row["id"], name, role, scope.name)
        return CreatedKey(info=ApiKeyInfo.from_row(row), secret=generated.key)

    async def list_api_keys(
        self, *, include_revoked: bool = False, scope: Scope = LOCAL
    ) -> list[ApiKeyInfo]:
        """Keys visible to ``scope``, oldest first."""
        rows = await self.store.read(
            lambda tx: q.list_api_keys(tx, include_revoked=include_revoked)
        )
        keys = [ApiKeyInfo.from_row(r) for r in rows]
        return [k for k in keys if scope.covers(k.namespaces)]

    async def get_api_key(self, key_id: str, *, scope: Scope = LOCAL) -> ApiKeyInfo:
        """One key; ``NotFound`` when absent or outside ``scope``."""
        row = await self.store.read(lambda tx: q.get_api_key(tx, key_id))
        if row is None:
            raise NotFound("API key not found")
        info = ApiKeyInfo.from_row(row)
        if not scope.covers(info.namespaces):
            raise NotFound("API key not found")
        return info

    async def revoke_api_key(self, key_id: str, *, scope: Scope = LOCAL) -> ApiKeyInfo:
        """Revoke a key (idempotent); it stops working at once in this process and within
        :data:`KEY_CACHE_SECONDS` in others."""
        await self.get_api_key(key_id, scope=scope)
        self._key_rows.clear()
        who = current_actor()

        def revoke(tx: Tx) -> Row | None:
            row = q.get_api_key(tx, key_id)
            if row is not None and row["revoked_at_ms"] is None:
                q.update_api_key(tx, key_id, revoked_at_ms=tx.now_ms)
                row = q.get_api_key(tx, key_id)
                audit.record(
                    tx,
                    actor=who,
                    action="api_key.revoke",
                    namespace=None,
                    target_type="api_key",
                    target_id=key_id,
                    details={"name": row["name"] if row is not None else None},
                )
            return row

        row = await self.store.transact(revoke)
        if row is None:
            raise NotFound("API key not found")
        _log.info("API key %s revoked by %s", key_id, scope.name)
        return ApiKeyInfo.from_row(row)

    async def authenticate_key(self, key: str) -> ApiKeyInfo:
        """Return the active key matching ``key``; ``Unauthorized`` otherwise."""
        if not tokens.looks_like_api_key(key):
            raise Unauthorized(_BAD_CREDENTIALS)
        prefix = tokens.key_prefix(key)
        cached = self._key_rows.get(prefix)
        if cached is not None and time.monotonic() - cached[0] < KEY_CACHE_SECONDS:
            rows = cached[1]
        else:
            rows = await self.store.read(lambda tx: q.api_keys_by_prefix(tx, prefix))
            if len(self._key_rows) > 10_000:
                self._key_rows.clear()
            self._key_rows[prefix] = (time.monotonic(), rows)
        match: Row | None = None
        for row in rows:
            # Every candidate is compared, in constant time, whatever matched before.
            if tokens.key_matches(key, row["key_hash"]):
                match = row
        if match is None:
            raise Unauthorized(_BAD_CREDENTIALS)
        info = ApiKeyInfo.from_row(match)
        at = now_ms()
        if not info.active(at):
            raise Unauthorized(_BAD_CREDENTIALS)
        if info.last_used_at_ms is None or at - info.last_used_at_ms > LAST_USED_RESOLUTION_MS:
            # One write per key per minute at most, not one per request.
            await self.store.transact(lambda tx: q.update_api_key(tx, info.id, last_used_at_ms=at))
            match["last_used_at_ms"] = at
        return info

    # --- users ---------------------------------------------------------------------------

    async def create_user(
        self,
        *,
        username: str,
        password: str,
        role: str,
        namespaces: Sequence[str] | None = None,
        scope: Scope = LOCAL,
    ) -> UserInfo:
        """Create a user with an Argon2id password hash.

        Raises:
            InvalidInput: bad role, namespace or password.
            Conflict: the username is taken.
        """
        _check_role(role)
        allowed = _check_namespaces(namespaces)
        if not scope.covers(allowed):
            raise InvalidInput("you can only grant namespaces you can see yourself")
        password_hash = passwords.hash_password(password)
        who = current_actor()

        def insert(tx: Tx) -> Row:
            if q.user_by_name(tx, username) is not None:
                raise Conflict(f"user {username!r} already exists")
            row: Row = {
                "id": new_id(),
                "username": username,
                "password_hash": password_hash,
                "role": role,
                "namespaces": allowed,
                "token_version": 1,
                "disabled": False,
                "created_at_ms": tx.now_ms,
                "updated_at_ms": tx.now_ms,
                "password_changed_at_ms": tx.now_ms,
                "created_by": scope.name,
            }
            q.insert_user(tx, row)
            audit.record(
                tx,
                actor=who,
                action="user.create",
                namespace=None,
                target_type="user",
                target_id=row["id"],
                details={"username": username, "role": role, "namespaces": allowed},
            )
            return row

        row = await self.store.transact(insert)
        _log.info("user %s (%s) created by %s", username, role, scope.name)
        return UserInfo.from_row(row)

    async def list_users(self, *, scope: Scope = LOCAL) -> list[UserInfo]:
        """Users visible to ``scope``, by username."""
        users = [UserInfo.from_row(r) for r in await self.store.read(q.list_users)]
        return [u for u in users if scope.covers(u.namespaces)]

    async def get_user(self, user_id: str, *, scope: Scope = LOCAL) -> UserInfo:
        """One user by id; ``NotFound`` when absent or outside ``scope``."""
        row = await self.store.read(lambda tx: q.get_user(tx, user_id))
        if row is None or not scope.covers(_namespaces(row["namespaces"])):
            raise NotFound("user not found")
        return UserInfo.from_row(row)

    async def find_user(self, username: str, *, scope: Scope = LOCAL) -> UserInfo:
        """One user by username; ``NotFound`` when absent or outside ``scope``."""
        row = await self.store.read(lambda tx: q.user_by_name(tx, username))
        if row is None or not scope.covers(_namespaces(row["namespaces"])):
            raise NotFound("user not found")
        return UserInfo.from_row(row)

    async def update_user(
        self,
        user_id: str,
        *,
        role: str | None = None,
        namespaces: Sequence[str] | None = None,
        set_namespaces: bool = False,
        disabled: bool | None = None,
        password: str | None = None,
        scope: Scope = LOCAL,
    ) -> UserInfo:
        """Change a user's role, namespaces (when ``set_namespaces``), state or password.

        A new password or disabling the user bumps ``token_version``: every login token
        issued before stops working.
        """
        await self.get_user(user_id, scope=scope)
        values: dict[str, Any] = {}
        if role is not None:
            values["role"] = _check_role(role)
        if set_namespaces:
            allowed = _check_namespaces(namespaces)
            if not scope.covers(allowed):
                raise InvalidInput("you can only grant namespaces you can see yourself")
            values["namespaces"] = allowed
        if disabled is not None:
            values["disabled"] = disabled
        password_hash = passwords.hash_password(password) if password is not None else None
        who = current_actor()

        def update(tx: Tx) -> Row | None:
            row = q.get_user(tx, user_id)
            if row is None:
                return None
            changes = dict(values)
            if password_hash is not None:
                changes["password_hash"] = password_hash
                changes["password_changed_at_ms"] = tx.now_ms
            if password_hash is not None or disabled:
                changes["token_version"] = int(row["token_version"]) + 1
            if changes:
                q.update_user(tx, user_id, **changes)
                changed = sorted(values) + (["password"] if password_hash is not None else [])
                audit.record(
                    tx,
                    actor=who,
                    action="user.update",
                    namespace=None,
                    target_type="user",
                    target_id=user_id,
                    details={"username": row["username"], "changed": changed},
                )
            return q.get_user(tx, user_id)

        row = await self.store.transact(update)
        if row is None:
            raise NotFound("user not found")
        return UserInfo.from_row(row)

    async def change_password(self, user_id: str, current: str, new: str) -> UserInfo:
        """A user's own password change: checks ``current``, revokes older tokens."""
        row = await self.store.read(lambda tx: q.get_user(tx, user_id))
        if row is None or not passwords.verify_password(row["password_hash"], current):
            raise Unauthorized("the current password is wrong")
        return await self.update_user(user_id, password=new)

    async def delete_user(self, user_id: str, *, scope: Scope = LOCAL) -> None:
        """Delete a user; their tokens stop working."""
        await self.get_user(user_id, scope=scope)
        who = current_actor()

        def remove(tx: Tx) -> bool:
            if not q.delete_user(tx, user_id):
                return False
            audit.record(
                tx,
                actor=who,
                action="user.delete",
                namespace=None,
                target_type="user",
                target_id=user_id,
            )
            return True

        if not await self.store.transact(remove):
            raise NotFound("user not found")

    # --- login tokens --------------------------------------------------------------------

    async def login(self, username: str, password: str) -> LoginToken:
        """Check a password and sign a login token; ``Unauthorized`` on any mismatch."""
        row = await self.store.read(lambda tx: q.user_by_name(tx, username))
        stored = row["password_hash"] if row is not None else None
        # Always verify (against a dummy hash for unknown users): same time either way.
        if not passwords.verify_password(stored, password) or row is None or row["disabled"]:
            raise Unauthorized("invalid username or password")
        user = UserInfo.from_row(row)
        if passwords.needs_rehash(row["password_hash"]):
            new_hash = passwords.hash_password(password)
            await self.store.transact(lambda tx: q.update_user(tx, user.id, password_hash=new_hash))
        token, expires_at_ms = tokens.encode_jwt(
            await self.jwt_secret(),
            subject=user.id,
            ttl_seconds=self.settings.jwt_ttl_seconds,
            claims={"ver": user.token_version},
        )
        return LoginToken(token=token, expires_at_ms=expires_at_ms, user=user)

    async def authenticate_token(self, token: str) -> UserInfo:
        """Return the user of a valid, unrevoked login token; ``Unauthorized`` otherwise."""
        claims = tokens.decode_jwt(await self.jwt_secret(), token)
        row = await self.store.read(lambda tx: q.get_user(tx, claims["sub"]))
        if row is None:
            raise Unauthorized(_BAD_CREDENTIALS)
        user = UserInfo.from_row(row)
        if user.disabled or claims.get("ver") != user.token_version:
            raise Unauthorized("the token was revoked")
        return user
