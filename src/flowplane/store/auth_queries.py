"""Queries on ``users``, ``api_keys`` and ``server_secrets``: small functions taking a ``Tx``."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from flowplane.store import schema as t
from flowplane.store.records import ApiKeyRecord, UserRecord
from flowplane.store.tx import Tx

# --- API keys ----------------------------------------------------------------------------


def insert_api_key(tx: Tx, values: dict[str, Any]) -> None:
    """Insert an API key row."""
    tx.conn.execute(t.api_keys.insert().values(**values))


def api_keys_by_prefix(tx: Tx, prefix: str) -> list[ApiKeyRecord]:
    """Return the key rows whose clear-text prefix is ``prefix`` (normally one)."""
    query = sa.select(t.api_keys).where(t.api_keys.c.prefix == prefix).limit(16)
    return tx.records(ApiKeyRecord, query)


def api_key_by_hash(tx: Tx, key_hash: str) -> ApiKeyRecord | None:
    """Return the key row with ``key_hash``."""
    return tx.one(ApiKeyRecord, sa.select(t.api_keys).where(t.api_keys.c.key_hash == key_hash))


def get_api_key(tx: Tx, key_id: str) -> ApiKeyRecord | None:
    """Return one key row."""
    return tx.one(ApiKeyRecord, sa.select(t.api_keys).where(t.api_keys.c.id == key_id))


def list_api_keys(tx: Tx, *, include_revoked: bool = False) -> list[ApiKeyRecord]:
    """Return key rows, oldest first."""
    c = t.api_keys.c
    query = sa.select(t.api_keys).order_by(c.created_at_ms, c.id)
    if not include_revoked:
        query = query.where(c.revoked_at_ms.is_(None))
    return tx.records(ApiKeyRecord, query)


def count_api_keys(tx: Tx) -> int:
    """Number of key rows, revoked ones included."""
    return int(tx.conn.execute(sa.select(sa.func.count()).select_from(t.api_keys)).scalar() or 0)


def update_api_key(tx: Tx, key_id: str, **values: Any) -> bool:
    """Update one key row; return whether it existed."""
    res = tx.conn.execute(t.api_keys.update().where(t.api_keys.c.id == key_id).values(**values))
    return bool(res.rowcount)


# --- users ---------------------------------------------------------------------------------


def insert_user(tx: Tx, values: dict[str, Any]) -> None:
    """Insert a user row."""
    tx.conn.execute(t.users.insert().values(**values))


def get_user(tx: Tx, user_id: str) -> UserRecord | None:
    """Return one user row by id."""
    return tx.one(UserRecord, sa.select(t.users).where(t.users.c.id == user_id))


def user_by_name(tx: Tx, username: str) -> UserRecord | None:
    """Return one user row by username."""
    return tx.one(UserRecord, sa.select(t.users).where(t.users.c.username == username))


def list_users(tx: Tx) -> list[UserRecord]:
    """Return every user row, by username."""
    query = sa.select(t.users).order_by(t.users.c.username)
    return tx.records(UserRecord, query)


def update_user(tx: Tx, user_id: str, **values: Any) -> bool:
    """Update one user row; return whether it existed."""
    values.setdefault("updated_at_ms", tx.now_ms)
    res = tx.conn.execute(t.users.update().where(t.users.c.id == user_id).values(**values))
    return bool(res.rowcount)


def delete_user(tx: Tx, user_id: str) -> bool:
    """Delete one user row; return whether it existed."""
    res = tx.conn.execute(t.users.delete().where(t.users.c.id == user_id))
    return bool(res.rowcount)


# --- server secrets ---------------------------------------------------------------------------


def get_secret(tx: Tx, name: str) -> str | None:
    """Return a server secret or marker."""
    value = tx.conn.execute(
        sa.select(t.server_secrets.c.value).where(t.server_secrets.c.name == name)
    ).scalar()
    return str(value) if value is not None else None


def put_secret(tx: Tx, name: str, value: str) -> None:
    """Insert a server secret (a concurrent insert of the same name fails the transaction)."""
    tx.conn.execute(
        t.server_secrets.insert().values(name=name, value=value, created_at_ms=tx.now_ms)
    )
