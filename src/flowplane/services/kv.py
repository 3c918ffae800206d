"""KVService: the namespace key-value store, for the API and for ``kv.*`` connectors.

Every entry has a ``version`` (1 on creation, +1 on each write) used for compare-and-set:
a write with ``if_match=N`` happens only while the entry is at version ``N`` (412
``version_mismatch`` with ``current`` otherwise; ``current`` is 0 when the key is absent).
Increments lock the row and add in the same transaction, so concurrent increments on
PostgreSQL or SQLite never lose an update. Every write appends an audit entry in its own
transaction.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from operator import attrgetter
from typing import Any

from flowplane.errors import (
    InvalidInput,
    KVKeyNotFound,
    KVValueNotNumeric,
    PayloadTooLarge,
    VersionMismatch,
)
from flowplane.services.caller import Caller
from flowplane.services.context import current_actor
from flowplane.services.paging import Page, paginate
from flowplane.store import audit
from flowplane.store import kv_queries as q
from flowplane.store.base import Store
from flowplane.store.records import KVRecord
from flowplane.store.tx import Row, Tx

MAX_KEY_CHARS = 512
MAX_VALUE_BYTES = 256 * 1024
MAX_TTL_SECONDS = 10 * 365 * 86400
MAX_LIST_LIMIT = 1000
_KEY_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f]")
WORKFLOW_ACTOR = audit.Actor(name="workflow", kind="workflow")
WORKFLOW = Caller.system("workflow")
"""The caller of a workflow's own KV access: any namespace its run is in (the audit log
names :data:`WORKFLOW_ACTOR` or the accessor's actor instead)."""


KVEntry = KVRecord
"""One live entry (the store's record)."""


KVPage = Page[KVEntry]
"""One page of a listing; ``next_cursor`` (the last key) is ``None`` on the last page."""


def check_key(key: str) -> str:
    """Return ``key`` if it is a valid key (1-512 characters, no control characters)."""
    if not key or len(key) > MAX_KEY_CHARS or _KEY_FORBIDDEN.search(key):
        raise InvalidInput(f"a key is 1-{MAX_KEY_CHARS} characters without control characters")
    return key


def check_value(value: Any) -> Any:
    """Return ``value`` if it is storable JSON (not null, at most 256 KiB)."""
    if value is None:
        raise InvalidInput("null cannot be stored; delete the key instead")
    try:
        size = len(json.dumps(value, allow_nan=False, separators=(",", ":")).encode())
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"the value is not JSON: {exc}") from None
    if size > MAX_VALUE_BYTES:
        raise PayloadTooLarge(f"a value is at most {MAX_VALUE_BYTES} bytes of JSON, got {size}")
    return value


def _expiry(tx: Tx, ttl_seconds: float | None) -> int | None:
    if ttl_seconds is None:
        return None
    if not (0 < ttl_seconds <= MAX_TTL_SECONDS) or math.isnan(ttl_seconds):
        raise InvalidInput(f"ttlSeconds must be in (0, {MAX_TTL_SECONDS}]")
    return tx.now_ms + max(1, round(ttl_seconds * 1000))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class KVService:
    """Read and write namespace key-value entries.

    ``get``, ``list``, ``put`` and ``delete`` take the :class:`Caller` of a surface (role,
    namespace, audit actor); ``find`` and ``increment`` serve only workflows, through
    :class:`StoreKV`, which name their own actor.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    async def get(self, caller: Caller, namespace: str, key: str) -> KVEntry:
        """Return the live entry (viewer; ``KVKeyNotFound`` when absent or expired)."""
        caller.require("viewer")
        caller.check_namespace(namespace, "key")
        entry = await self.store.read(lambda tx: q.get(tx, namespace, key))
        if entry is None:
            raise KVKeyNotFound(f"key {key!r} not found in namespace {namespace!r}")
        return entry

    async def find(self, namespace: str, key: str) -> KVEntry | None:
        """Return the live entry, or ``None``."""
        return await self.store.read(lambda tx: q.get(tx, namespace, key))

    async def list(
        self,
        caller: Caller,
        namespace: str,
        *,
        prefix: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> KVPage:
        """Live entries ordered by key (viewer); pass ``next_cursor`` on for the next page."""
        caller.require("viewer")
        caller.check_namespace(namespace, "namespace")
        limit = max(1, min(limit, MAX_LIST_LIMIT))
        rows = await self.store.read(
            lambda tx: q.listing(tx, namespace, prefix=prefix, after=cursor, limit=limit + 1)
        )
        return paginate(rows, limit, attrgetter("key"))

    async def put(
        self,
        caller: Caller,
        namespace: str,
        key: str,
        value: Any,
        *,
        ttl_seconds: float | None = None,
        if_match: int | None = None,
        if_none_match: bool = False,
        actor: audit.Actor | None = None,
    ) -> tuple[KVEntry, bool]:
        """Create or replace an entry (editor); return it and whether it was created.

        Args:
            caller: who asks (the namespace must be visible to it).
            namespace: the namespace.
            key: the key.
            value: any JSON value but null.
            ttl_seconds: expire after this many seconds (``None``: never; a write without a
                TTL removes an earlier one).
            if_match: only replace the entry at this version (0: only if absent).
            if_none_match: only create (412 when the key exists).
            actor: who the audit log names instead of the caller (a workflow's own actor).
        """
        caller.require("editor")
        caller.check_namespace(namespace, "namespace")
        check_key(key)
        check_value(value)
        who = actor or caller.actor

        def fn(tx: Tx) -> tuple[KVEntry, bool]:
            live, expired = q.lock(tx, namespace, key)
            version = live.version if live is not None else 0
            if (if_none_match and live is not None) or (
                if_match is not None and if_match != version
            ):
                raise VersionMismatch(f"key {key!r} is at version {version}", current=version)
            expires = _expiry(tx, ttl_seconds)
            if live is None:
                row = _first_row(tx, namespace, key, value, expires, expired, who)
                q.insert(tx, row)
            else:
                changes = {
                    "value": value,
                    "version": version + 1,
                    "expires_at_ms": expires,
                    "updated_at_ms": tx.now_ms,
                    "updated_by": who.name[:128],
                }
                q.update(tx, namespace, key, expect_version=version, **changes)
                row = {**live.columns(), **changes}
            audit.record(
                tx,
                actor=who,
                action="kv.set",
                namespace=namespace,
                target_type="kv",
                target_id=key,
                before_version=live.version if live is not None else None,
                after_version=row["version"],
                details={"ttlSeconds": ttl_seconds} if ttl_seconds is not None else None,
            )
            return KVEntry.from_row(row), live is None

        return await self.store.transact(fn)

    async def delete(
        self,
        caller: Caller,
        namespace: str,
        key: str,
        *,
        if_match: int | None = None,
        actor: audit.Actor | None = None,
    ) -> KVEntry:
        """Delete an entry (editor); return what it held.

        With ``if_match``, the entry must be at that version (412 otherwise); ``actor``
        names someone else than the caller in the audit log.

        Raises:
            KVKeyNotFound: there was nothing to delete (or the namespace is not visible).
        """
        caller.require("editor")
        caller.check_namespace(namespace, "key")
        check_key(key)
        who = actor or caller.actor

        def fn(tx: Tx) -> KVEntry | None:
            live, _ = q.lock(tx, namespace, key)
            version = live.version if live is not None else 0
            if if_match is not None and if_match != version:
                raise VersionMismatch(f"key {key!r} is at version {version}", current=version)
            if live is None:
                return None
            q.delete(tx, namespace, key)
            audit.record(
                tx,
                actor=who,
                action="kv.delete",
                namespace=namespace,
                target_type="kv",
                target_id=key,
                before_version=version,
            )
            return live

        entry = await self.store.transact(fn)
        if entry is None:
            raise KVKeyNotFound(f"key {key!r} not found in namespace {namespace!r}")
        return entry

    async def increment(
        self,
        namespace: str,
        key: str,
        amount: float = 1,
        *,
        actor: audit.Actor | None = None,
    ) -> KVEntry:
        """Atomically add ``amount`` to a numeric entry (created at 0); return it.

        The entry's TTL, if any, is kept. Raises ``KVValueNotNumeric`` when the stored value
        is not a number.
        """
        check_key(key)
        if not _is_number(amount) or not math.isfinite(amount):
            raise InvalidInput("amount must be a finite number")
        who = actor or current_actor()

        def fn(tx: Tx) -> KVEntry:
            live, expired = q.lock(tx, namespace, key)
            if live is None:
                row = _first_row(tx, namespace, key, amount, None, expired, who)
                # A concurrent first increment makes this a unique violation: the store
                # retries the whole transaction, which then finds and locks the row.
                q.insert(tx, row)
            else:
                if not _is_number(live.value):
                    raise KVValueNotNumeric(
                        f"key {key!r} holds a {type(live.value).__name__}, not a number"
                    )
                total = live.value + amount
                if not math.isfinite(total):
                    raise InvalidInput("the result is not a finite number")
                changes = {
                    "value": total,
                    "version": live.version + 1,
                    "updated_at_ms": tx.now_ms,
                    "updated_by": who.name[:128],
                }
                q.update(tx, namespace, key, expect_version=live.version, **changes)
                row = {**live.columns(), **changes}
            audit.record(
                tx,
                actor=who,
                action="kv.increment",
                namespace=namespace,
                target_type="kv",
                target_id=key,
                before_version=live.version if live is not None else None,
                after_version=row["version"],
                details={"amount": amount},
            )
            return KVEntry.from_row(row)

        return await self.store.transact(fn)

    async def purge_expired(self) -> int:
        """Delete expired entries (they are already invisible); return how many."""
        return await self.store.transact(q.purge_expired)


def _first_row(
    tx: Tx,
    namespace: str,
    key: str,
    value: Any,
    expires_at_ms: int | None,
    previous: int,
    who: audit.Actor,
) -> Row:
    """A new entry's row; its version continues after an expired one's (``previous``)."""
    return {
        "namespace": namespace,
        "key": key,
        "value": value,
        "version": previous + 1,
        "expires_at_ms": expires_at_ms,
        "created_at_ms": tx.now_ms,
        "updated_at_ms": tx.now_ms,
        "updated_by": who.name[:128],
    }


class StoreKV:
    """The ``KVAccess`` a worker hands to ``kv.*`` connectors: one namespace, one actor."""

    def __init__(
        self, service: KVService, namespace: str, actor: audit.Actor = WORKFLOW_ACTOR
    ) -> None:
        self.service = service
        self.namespace = namespace
        self.actor = actor

    async def get(self, key: str) -> Any:
        """Return the value of ``key`` (``None`` when absent or expired)."""
        entry = await self.service.find(self.namespace, check_key(key))
        return entry.value if entry is not None else None

    async def set(self, key: str, value: Any, ttl_seconds: float | None = None) -> None:
        """Store ``value`` under ``key``."""
        await self.service.put(
            WORKFLOW, self.namespace, key, value, ttl_seconds=ttl_seconds, actor=self.actor
        )

    async def delete(self, key: str) -> bool:
        """Delete ``key``; return whether it existed."""
        try:
            await self.service.delete(WORKFLOW, self.namespace, key, actor=self.actor)
        except KVKeyNotFound:
            return False
        return True

    async def increment(self, key: str, amount: float = 1) -> float:
        """Add ``amount`` to ``key`` atomically; return the new value."""
        entry = await self.service.increment(self.namespace, key, amount, actor=self.actor)
        result: float = entry.value
        return result


def kv_factory(store: Store) -> Callable[[str], StoreKV]:
    """Return the worker's ``kv_factory``: namespace -> :class:`StoreKV`."""
    service = KVService(store)
    return lambda namespace: StoreKV(service, namespace)
