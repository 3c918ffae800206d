"""Alembic environment: uses the connection the store hands over."""

from __future__ import annotations

from alembic import context

from flowplane.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reached by the plain alembic CLI
    raise RuntimeError("run migrations through `flowplane db upgrade`")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    # The version table lives in the store's own schema. Without this, a schema that has
    # none yet would find another installation's table through the search path (`public`).
    version_table_schema=context.config.attributes.get("schema"),
)
with context.begin_transaction():
    context.run_migrations()
