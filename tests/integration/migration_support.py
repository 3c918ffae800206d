"""Migration tests' set-up: a store at an old revision, and the way back down."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import sqlalchemy as sa
from alembic import command

from flowplane.store import migrate
from flowplane.store.base import Store


@contextlib.asynccontextmanager
async def store_at(db: tuple[str, str], revision: str) -> AsyncIterator[Store]:
    """An open store on a fresh database migrated only up to ``revision``."""
    url, schema = db
    store = await Store.open(url, schema=schema, migrate=False)
    try:
        if store.dialect == "postgresql":
            with store.engine.begin() as conn:
                conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        migrate.upgrade(store, revision)
        yield store
    finally:
        await store.close()


def downgrade(store: Store, schema: str, revision: str) -> None:
    """Run the migrations down to ``revision``."""
    with store.engine.connect() as conn:
        command.downgrade(
            migrate.alembic_config(conn, schema if store.dialect == "postgresql" else None),
            revision,
        )
        conn.commit()


def indexes(store: Store, table: str) -> set[str]:
    """The names of ``table``'s indexes as the database has them."""
    with store.engine.connect() as conn:
        return {index["name"] or "" for index in sa.inspect(conn).get_indexes(table)}
