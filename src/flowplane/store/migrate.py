"""Alembic migrations, run programmatically (``flowplane db upgrade`` and on start-up)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

if TYPE_CHECKING:
    from flowplane.store.base import Store

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
ADVISORY_LOCK_ID = 0x466C6F77  # "Flow"


def alembic_config(connection: sa.Connection | None = None, schema: str | None = None) -> Config:
    """Return an Alembic config pointing at the bundled migrations.

    Args:
        connection: the connection to migrate over.
        schema: the PostgreSQL schema that holds the store (and its version table).
    """
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    cfg.attributes["schema"] = schema
    return cfg


def _schema(store: Store) -> str | None:
    return getattr(store, "schema", None) if store.dialect == "postgresql" else None


def upgrade(store: Store, revision: str = "head") -> None:
    """Upgrade ``store``'s database to ``revision`` (serialised across processes)."""
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
    """Return the newest migration's revision id."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(store: Store) -> str | None:
    """Return the revision the database is at."""
    with store.engine.connect() as conn:
        opts = {"version_table_schema": _schema(store)}
        return MigrationContext.configure(conn, opts=opts).get_current_revision()
