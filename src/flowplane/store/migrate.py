"""Alembic migrations, run programmatically (``flowplane db upgrade`` and on start-up)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    from alembic.config import Config

    from flowplane.store.base import Store

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
ADVISORY_LOCK_ID = 0x466C6F77  # "Flow"
LATEST_REVISION = "0011"
"""The newest migration's revision (:func:`head_revision` reads it from the scripts; a
test holds the two equal). A database already there is not handed to Alembic at start-up:
importing Alembic and loading the scripts took ~0.4 s of every process's start."""
VERSION_TABLE = "alembic_version"


def alembic_config(connection: sa.Connection | None = None, schema: str | None = None) -> Config:
    """Return an Alembic config pointing at the bundled migrations.

    Args:
        connection: the connection to migrate over.
        schema: the PostgreSQL schema that holds the store (and its version table).
    """
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    cfg.attributes["schema"] = schema
    return cfg


def _schema(store: Store) -> str | None:
    return getattr(store, "schema", None) if store.dialect == "postgresql" else None


def upgrade(store: Store, revision: str = "head") -> None:
    """Upgrade ``store``'s database to ``revision`` (serialised across processes); to the
    head, nothing to do (no Alembic) when it is already at :data:`LATEST_REVISION`."""
    if revision == "head" and current_revision(store) == LATEST_REVISION:
        return
    from alembic import command

    with store.engine.connect() as conn:
        if store.dialect == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_LOCK_ID})
            conn.commit()
        try:
            command.upgrade(alembic_config(conn, _schema(store)), revision)
            conn.commit()
        finally:
            if store.dialect == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_ID})
                conn.commit()


def head_revision() -> str | None:
    """Return the newest migration's revision id, as the migration scripts say."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(store: Store) -> str | None:
    """Return the revision the database is at (``None``: not migrated yet)."""
    with store.engine.connect() as conn:
        version = version_of(conn, _schema(store))
        conn.rollback()
        return version


def version_of(conn: sa.Connection, schema: str | None = None) -> str | None:
    """The revision in Alembic's version table over ``conn`` (``None``: no table, or no
    row), read as Alembic reads it, without importing Alembic. ``schema``: the table's
    schema (PostgreSQL), else the connection's search path."""
    table = sa.table(VERSION_TABLE, sa.column("version_num", sa.String), schema=schema)
    if not sa.inspect(conn).has_table(VERSION_TABLE, schema=schema):
        return None
    versions = list(conn.execute(sa.select(table.c.version_num)).scalars())
    if len(versions) > 1:
        raise RuntimeError(f"the database has several migration heads: {versions}")
    return versions[0] if versions else None
