"""The audit log: one row per mutation, written inside the mutation's own transaction.

Services name who acts (``caller.actor``, or :func:`flowplane.services.context.current_actor`
for work without a caller) *before* they enter a store transaction, and
``record(tx, actor=who, ...)`` writes the row::

    who = caller.actor

    def fn(tx: Tx) -> None:
        ...  # the change
        audit.record(tx, actor=who, action="kv.set", namespace=ns, target_type="kv", ...)

    await store.transact(fn)

Details never hold secret values: keys that usually carry one (``value``, ``password``,
``token``, ...) are replaced with ``[REDACTED]``, and callers may pass a redactor for the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from flowplane.security.redaction import redact_keys
from flowplane.store import schema as t
from flowplane.store.prepared import Prepared
from flowplane.store.records import AuditRecord
from flowplane.store.tx import Tx

_INSERT_AUDIT = Prepared(t.audit.insert())

SENSITIVE_DETAIL_KEYS = frozenset(
    {
        "value",
        "values",
        "password",
        "secret",
        "token",
        "api_key",
        "apikey",
        "key_hash",
        "plaintext",
        "authorization",
        "envelope",
    }
)
MAX_DETAIL_STRING_CHARS = 1000


@dataclass(frozen=True)
class Actor:
    """Who performs a mutation.

    Attributes:
        name: a display name (API key name, username, ``scheduler``, ...).
        kind: ``api_key``, ``user``, ``workflow``, ``cli`` or ``system``.
        id: the API key id or user id, when there is one.
        request_id: the HTTP request the mutation belongs to, when there is one.
    """

    name: str
    kind: str
    id: str | None = None
    request_id: str | None = None


SYSTEM = Actor(name="system", kind="system")


def record(
    tx: Tx,
    *,
    actor: Actor | str,
    action: str,
    namespace: str | None,
    target_type: str,
    target_id: str,
    actor_kind: str | None = None,
    before_version: int | None = None,
    after_version: int | None = None,
    request_id: str | None = None,
    details: dict[str, Any] | None = None,
    redact: Callable[[Any], Any] | None = None,
) -> None:
    """Append an audit entry in the caller's transaction.

    Args:
        tx: the transaction making the change (the entry commits or rolls back with it).
        actor: an :class:`Actor`, or a name (then give ``actor_kind``).
        action: ``<target type>.<verb>``, e.g. ``credential.create``, ``kv.set``.
        namespace: the namespace of the target (``None`` for global objects).
        target_type: ``credential``, ``kv``, ``workflow``, ``run``, ``api_key``, ...
        target_id: the target's id (or key).
        actor_kind: the kind when ``actor`` is a name.
        before_version: the target's version before the change (``None``: it did not exist).
        after_version: the version after the change (``None``: it no longer exists).
        request_id: the HTTP request id (default: the actor's).
        details: small JSON data about the change; never a secret value.
        redact: applied to ``details`` after the built-in scrubbing (e.g. a ``Redactor``).
    """
    if isinstance(actor, Actor):
        who = actor
        if actor_kind is not None:
            who = Actor(who.name, actor_kind, who.id, who.request_id)
    else:
        who = Actor(actor, actor_kind or "system")
    clean = scrub(details) if details else None
    if clean is not None and redact is not None:
        clean = redact(clean)
    # Queued: on PostgreSQL it travels with the transaction's next statement or COMMIT;
    # held back to be written with the others when the transaction coalesces inserts.
    row = {
        "ts_ms": tx.now_ms,
        "actor": who.name[:128],
        "actor_kind": who.kind[:16],
        "actor_id": who.id,
        "action": action[:64],
        "namespace": namespace,
        "target_type": target_type[:32],
        "target_id": target_id[:600],
        "before_version": before_version,
        "after_version": after_version,
        "request_id": request_id or who.request_id,
        "details": clean,
    }
    if not tx.queue_insert(_INSERT_AUDIT, row):
        _INSERT_AUDIT.defer(tx.conn, row)


def scrub(value: Any) -> Any:
    """Return ``value`` with sensitive-looking keys redacted and long strings cut."""
    return redact_keys(value, SENSITIVE_DETAIL_KEYS, MAX_DETAIL_STRING_CHARS)


@dataclass(frozen=True)
class AuditFilter:
    """Which audit entries to read; every given field must match.

    Attributes:
        namespaces: only these namespaces (``None``: all, global entries included).
        actor: the actor name or id.
        action: an exact action, or a prefix ending with ``.`` or ``*`` (``kv.``, ``kv*``).
        target_type: the target type.
        target_id: the target id.
        request_id: the request id.
        since_ms: entries at or after this time.
        until_ms: entries before this time.
    """

    namespaces: Sequence[str] | None = None
    actor: str | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    request_id: str | None = None
    since_ms: int | None = None
    until_ms: int | None = None


def list_entries(
    tx: Tx,
    where: AuditFilter = AuditFilter(),
    *,
    before_id: int | None = None,
    limit: int = 100,
) -> list[AuditRecord]:
    """Return audit entries, newest first, matching ``where``.

    Args:
        tx: a read transaction.
        where: the filter.
        before_id: the pagination cursor: entries with a smaller id.
        limit: the page size.
    """
    c = t.audit.c
    query = sa.select(t.audit)
    if where.namespaces is not None:
        query = query.where(c.namespace.in_(list(where.namespaces)))
    if where.actor is not None:
        query = query.where(sa.or_(c.actor == where.actor, c.actor_id == where.actor))
    if where.action is not None:
        if where.action.endswith(("*", ".")):
            prefix = where.action.rstrip("*")
            query = query.where(c.action.like(_escape_like(prefix) + "%", escape="\\"))
        else:
            query = query.where(c.action == where.action)
    exact = {
        c.target_type: where.target_type,
        c.target_id: where.target_id,
        c.request_id: where.request_id,
    }
    for column, wanted in exact.items():
        if wanted is not None:
            query = query.where(column == wanted)
    if where.since_ms is not None:
        query = query.where(c.ts_ms >= where.since_ms)
    if where.until_ms is not None:
        query = query.where(c.ts_ms < where.until_ms)
    if before_id is not None:
        query = query.where(c.id < before_id)
    query = query.order_by(c.id.desc()).limit(limit)
    return tx.records(AuditRecord, query)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
