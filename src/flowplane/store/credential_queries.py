"""Credential rows: small named operations over the ``credentials`` table.

Rows hold an envelope (``security/crypto.py``), never a plaintext value; decryption happens
in :mod:`flowplane.services.credentials`, only for the worker and key rotation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from flowplane.store import schema as t
from flowplane.store.records import CredentialPolicyRecord, CredentialRecord
from flowplane.store.tx import Tx


def get(tx: Tx, credential_id: str, *, for_update: bool = False) -> CredentialRecord | None:
    """Return one credential (with its envelope), optionally locked."""
    query = sa.select(t.credentials).where(t.credentials.c.id == credential_id)
    if for_update and tx.dialect == "postgresql":
        query = query.with_for_update()
    return tx.one(CredentialRecord, query)


def by_name(tx: Tx, namespace: str, name: str) -> CredentialRecord | None:
    """Return the credential ``name`` of ``namespace``."""
    c = t.credentials.c
    return tx.one(
        CredentialRecord, sa.select(t.credentials).where(c.namespace == namespace, c.name == name)
    )


def by_names(tx: Tx, namespace: str, names: Iterable[str]) -> list[CredentialRecord]:
    """Return the credentials of ``namespace`` among ``names``."""
    wanted = sorted(set(names))
    if not wanted:
        return []
    c = t.credentials.c
    query = sa.select(t.credentials).where(c.namespace == namespace, c.name.in_(wanted))
    return tx.records(CredentialRecord, query)


def policies(tx: Tx, namespace: str, names: Iterable[str]) -> list[CredentialPolicyRecord]:
    """Return the name and use-policy columns of the credentials of ``namespace`` among
    ``names`` (no envelope: the engine checks a policy before it decrypts anything)."""
    wanted = sorted(set(names))
    if not wanted:
        return []
    c = t.credentials.c
    query = sa.select(c.name, c.allowed_workflows, c.allowed_connectors, c.template_use).where(
        c.namespace == namespace, c.name.in_(wanted)
    )
    return tx.records(CredentialPolicyRecord, query)


def insert(tx: Tx, values: dict[str, Any]) -> None:
    """Insert a credential row."""
    tx.conn.execute(t.credentials.insert().values(**values))


def update(tx: Tx, credential_id: str, *, expect_version: int, **values: Any) -> bool:
    """Update a credential if its version is still ``expect_version``; return whether it did."""
    c = t.credentials.c
    res = tx.conn.execute(
        t.credentials.update()
        .where(c.id == credential_id, c.version == expect_version)
        .values(**values)
    )
    return bool(res.rowcount)


def delete(tx: Tx, credential_id: str) -> bool:
    """Delete a credential; return whether it existed."""
    res = tx.conn.execute(t.credentials.delete().where(t.credentials.c.id == credential_id))
    return bool(res.rowcount)


def listing(
    tx: Tx,
    *,
    namespaces: Sequence[str] | None,
    after: tuple[str, str] | None = None,
    limit: int = 100,
) -> list[CredentialRecord]:
    """Return credentials ordered by (namespace, name), after the cursor, without envelopes."""
    c = t.credentials.c
    query = sa.select(*[col for col in t.credentials.c if col.name != "envelope"])
    if namespaces is not None:
        query = query.where(c.namespace.in_(list(namespaces)))
    if after is not None:
        ns, name = after
        query = query.where(sa.or_(c.namespace > ns, sa.and_(c.namespace == ns, c.name > name)))
    query = query.order_by(c.namespace, c.name).limit(limit)
    return tx.records(CredentialRecord, query)


def ids_needing_rotation(tx: Tx, current_kid: str, limit: int = 500) -> list[str]:
    """Return ids of credentials sealed under another key than ``current_kid``."""
    c = t.credentials.c
    query = sa.select(c.id).where(c.key_id != current_kid).order_by(c.id).limit(limit)
    return [r[0] for r in tx.conn.execute(query)]


def count_by_key(tx: Tx) -> dict[str, int]:
    """Return ``{key id: number of credentials}``."""
    c = t.credentials.c
    query = sa.select(c.key_id, sa.func.count()).group_by(c.key_id)
    return {str(kid): int(n) for kid, n in tx.conn.execute(query)}
