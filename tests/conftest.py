"""Shared fixtures: every backend-sensitive test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

POSTGRES_URL = os.environ.get(
    "FLOWPLANE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
BACKENDS = ["sqlite", "postgres"]


def postgres_available() -> bool:
    """Whether the test PostgreSQL answers."""
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


_PG_OK: bool | None = None


def require_postgres() -> None:
    """Skip (locally) or fail (in CI) when PostgreSQL is missing."""
    global _PG_OK
    if _PG_OK is None:
        _PG_OK = postgres_available()
    if not _PG_OK:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI but {POSTGRES_URL} does not answer")
        pytest.skip("PostgreSQL not available")


def drop_schema(schema: str) -> None:
    """Drop a test schema."""
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """``(database_url, schema)`` for a fresh, empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'flowplane.db'}", "flowplane"
        return
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    try:
        yield POSTGRES_URL, schema
    finally:
        drop_schema(schema)


@pytest.fixture
async def store(db: tuple[str, str]) -> AsyncIterator[object]:
    """An open, migrated store on each backend."""
    from flowplane.store.base import Store

    url, schema = db
    s = await Store.open(url, schema=schema)
    try:
        yield s
    finally:
        await s.close()
