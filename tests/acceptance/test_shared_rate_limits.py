"""Rate limits across API processes: two real ``flowplane serve`` processes on one
PostgreSQL schema. With ``FLOWPLANE_RATE_LIMIT_STORAGE=redis://...`` a key gets its limit
once, whichever process answers; with the per-process default it gets it once per process."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from serve_support import Serve, new_key, spawn, wait_ready

from conftest import POSTGRES_URL, drop_schema, require_postgres

REDIS_URL = "redis://127.0.0.1:6379/0"
LIMIT = 10


def _redis_available() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=2):
            return True
    except OSError:
        return False


@contextmanager
def _two_servers(tmp_path: Path, env: dict[str, str]) -> Iterator[tuple[Serve, Serve]]:
    require_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    key = new_key()
    args = ("--workers", "0", "--database-schema", schema)
    first = spawn(tmp_path / "a", POSTGRES_URL, *args, key=key, env=env, name="a")
    try:
        wait_ready(first)  # the first one migrates the schema
        second = spawn(tmp_path / "b", POSTGRES_URL, *args, key=key, env=env, name="b")
        try:
            wait_ready(second)
            yield first, second
        finally:
            second.stop()
    finally:
        first.stop()
        drop_schema(schema)


def _allowed(first: Serve, second: Serve) -> int:
    created = httpx.post(
        f"{first.url}/v1/auth/tokens",
        json={"name": "limited", "role": "viewer", "rateLimitPerMinute": LIMIT},
        headers=first.headers,
    )
    assert created.status_code == 201, created.text
    headers = {"Authorization": f"Bearer {created.json()['secret']}"}
    statuses = [
        httpx.get(f"{server.url}/v1/auth/me", headers=headers).status_code
        for _ in range(3 * LIMIT)
        for server in (first, second)
    ]
    assert set(statuses) <= {200, 429}
    return statuses.count(200)


@pytest.mark.slow
def test_redis_counts_a_key_once_across_processes(tmp_path: Path) -> None:
    if not _redis_available():
        pytest.skip("Redis not available at 127.0.0.1:6379")
    env = {"FLOWPLANE_RATE_LIMIT_STORAGE": REDIS_URL}
    with _two_servers(tmp_path, env) as (first, second):
        assert _allowed(first, second) == LIMIT


def test_memory_limits_are_per_process(tmp_path: Path) -> None:
    with _two_servers(tmp_path, {}) as (first, second):
        assert _allowed(first, second) == 2 * LIMIT
