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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` go first, spread over the pytest-xdist workers.

    The work-stealing scheduler gives each worker a contiguous share of the collection and
    lets idle workers take from the end of the others' shares: a slow test late in the
    collection (the schemathesis runs take minutes) would end the whole run alone on one
    worker. Here each share starts with its part of the slow tests (dealt round-robin), so
    they run beside each other from the start and the quick tests fill in around them."""
    slow = [item for item in items if item.get_closest_marker("slow") is not None]
    if not slow:
        return
    rest = [item for item in items if item.get_closest_marker("slow") is None]
    workerinput = getattr(config, "workerinput", None)
    workers = int(workerinput["workercount"]) if workerinput is not None else 1
    ordered: list[pytest.Item] = []
    left = len(items)
    for share in range(workers):
        size = left // (workers - share)  # the scheduler's first split, in its order
        left -= size
        firsts = slow[share::workers]
        ordered += firsts
        taken = max(0, size - len(firsts))
        ordered += rest[:taken]
        rest = rest[taken:]
    ordered += rest
    items[:] = ordered
