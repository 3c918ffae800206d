"""API keys: creating, listing, revoking, and recognising them on each request.

Unknown, revoked, expired and malformed keys all fail with the same ``Unauthorized``
message, and every comparison is constant-time.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence

from flowplane.errors import InvalidInput, NotFound, Unauthorized
from flowplane.ids import new_id
from flowplane.security import tokens
from flowplane.services.auth.records import (
    BAD_CREDENTIALS,
    BOOTSTRAP_MARKER,
    KEY_CACHE_SECONDS,
    LAST_USED_RESOLUTION_MS,
    ApiKeyInfo,
    CreatedKey,
    actor_of,
    check_namespaces,
    check_role,
    covers,
)
from flowplane.services.caller import Caller
from flowplane.store import audit
from flowplane.store import auth_queries as q
from flowplane.store.base import Store
from flowplane.store.records import ApiKeyRecord
from flowplane.store.tx import Row, Tx, now_ms

_log = logging.getLogger("flowplane.auth")


class ApiKeys:
    """The API-key half of :class:`~flowplane.services.auth.AuthService`."""

    store: Store
    _key_rows: dict[str, tuple[float, list[ApiKeyRecord]]]
    """prefix -> (monotonic time read, candidate rows); see ``KEY_CACHE_SECONDS``."""

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
    ) -> ApiKeyRecord:
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
        return ApiKeyRecord.from_row(row)

    async def create_api_key(
        self,
        *,
        name: str,
        role: str,
        namespaces: Sequence[str] | None = None,
        expires_at_ms: int | None = None,
        expires_in_seconds: int | None = None,
        rate_limit_per_minute: int | None = None,
        caller: Caller,
    ) -> CreatedKey:
        """Create a key; the returned ``secret`` is the only time the key is visible.

        Give at most one of ``expires_at_ms`` and ``expires_in_seconds`` (from now).

        Raises:
            InvalidInput: bad role, namespace, expiry or limit, or ``caller`` may not grant
                those namespaces (tenant isolation).
        """
        caller.require("admin")
        if expires_at_ms is not None and expires_in_seconds is not None:
            raise InvalidInput("give expiresAtMs or expiresInSeconds, not both")
        if expires_in_seconds is not None:
            expires_at_ms = now_ms() + expires_in_seconds * 1000
        check_role(role)
        allowed = check_namespaces(namespaces)
        if not covers(caller, allowed):
            raise InvalidInput("you can only grant namespaces you can see yourself")
        if expires_at_ms is not None and expires_at_ms <= now_ms():
            raise InvalidInput("expiresAtMs is in the past")
        if rate_limit_per_minute is not None and rate_limit_per_minute < 0:
            raise InvalidInput("rateLimitPerMinute must be >= 0")
        generated = tokens.generate_api_key()
        who = actor_of(caller)

        def insert(tx: Tx) -> ApiKeyRecord:
            return self._insert_key(
                tx,
                name=name,
                prefix=generated.prefix,
                key_hash=generated.key_hash,
                role=role,
                namespaces=allowed,
                expires_at_ms=expires_at_ms,
                rate_limit=rate_limit_per_minute,
                created_by=caller.name,
                actor=who,
            )

        row = await self.store.transact(insert)
        _log.info("API key %s (%s, %s) created by %s", row.id, name, role, caller.name)
        return CreatedKey(info=ApiKeyInfo.from_row(row), secret=generated.key)

    async def list_api_keys(
        self, *, include_revoked: bool = False, caller: Caller
    ) -> list[ApiKeyInfo]:
        """Keys visible to ``caller``, oldest first."""
        caller.require("admin")
        rows = await self.store.read(
            lambda tx: q.list_api_keys(tx, include_revoked=include_revoked)
        )
        keys = [ApiKeyInfo.from_row(r) for r in rows]
        return [k for k in keys if covers(caller, k.namespaces)]

    async def get_api_key(self, key_id: str, *, caller: Caller) -> ApiKeyInfo:
        """One key; ``NotFound`` when absent or outside ``caller``'s namespaces."""
        caller.require("admin")
        row = await self.store.read(lambda tx: q.get_api_key(tx, key_id))
        if row is None:
            raise NotFound("API key not found")
        info = ApiKeyInfo.from_row(row)
        if not covers(caller, info.namespaces):
            raise NotFound("API key not found")
        return info

    async def revoke_api_key(self, key_id: str, *, caller: Caller) -> ApiKeyInfo:
        """Revoke a key (idempotent); it stops working at once in this process and within
        :data:`KEY_CACHE_SECONDS` in others."""
        caller.require("admin")
        await self.get_api_key(key_id, caller=caller)
        self._key_rows.clear()
        who = actor_of(caller)

        def revoke(tx: Tx) -> ApiKeyRecord | None:
            row = q.get_api_key(tx, key_id)
            if row is not None and row.revoked_at_ms is None:
                q.update_api_key(tx, key_id, revoked_at_ms=tx.now_ms)
                row = q.get_api_key(tx, key_id)
                audit.record(
                    tx,
                    actor=who,
                    action="api_key.revoke",
                    namespace=None,
                    target_type="api_key",
                    target_id=key_id,
                    details={"name": row.name if row is not None else None},
                )
            return row

        row = await self.store.transact(revoke)
        if row is None:
            raise NotFound("API key not found")
        _log.info("API key %s revoked by %s", key_id, caller.name)
        return ApiKeyInfo.from_row(row)

    async def authenticate_key(self, key: str) -> ApiKeyInfo:
        """Return the active key matching ``key``; ``Unauthorized`` otherwise."""
        if not tokens.looks_like_api_key(key):
            raise Unauthorized(BAD_CREDENTIALS)
        prefix = tokens.key_prefix(key)
        cached = self._key_rows.get(prefix)
        if cached is not None and time.monotonic() - cached[0] < KEY_CACHE_SECONDS:
            rows = cached[1]
        else:
            rows = await self.store.read(lambda tx: q.api_keys_by_prefix(tx, prefix))
            if len(self._key_rows) > 10_000:
                self._key_rows.clear()
            self._key_rows[prefix] = (time.monotonic(), rows)
        match: ApiKeyRecord | None = None
        for row in rows:
            # Every candidate is compared, in constant time, whatever matched before.
            if tokens.key_matches(key, row.key_hash):
                match = row
        if match is None:
            raise Unauthorized(BAD_CREDENTIALS)
        info = ApiKeyInfo.from_row(match)
        at = now_ms()
        if not info.active(at):
            raise Unauthorized(BAD_CREDENTIALS)
        if info.last_used_at_ms is None or at - info.last_used_at_ms > LAST_USED_RESOLUTION_MS:
            # One write per key per minute at most, not one per request.
            await self.store.transact(lambda tx: q.update_api_key(tx, info.id, last_used_at_ms=at))
            # The cached record says so too: the next request within the minute writes nothing.
            used = dataclasses.replace(match, last_used_at_ms=at)
            self._key_rows[prefix] = (
                self._key_rows.get(prefix, (time.monotonic(), []))[0],
                [used if r is match else r for r in rows],
            )
        return info
