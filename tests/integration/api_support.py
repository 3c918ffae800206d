"""The in-process API harness: a started app, an admin key, and keys for any role.

Use it from a test module (the ``db`` fixture makes it run on SQLite and PostgreSQL)::

    from api_support import ApiHarness, api_fixture  # noqa: F401  (the ``api`` fixture)

    async def test_something(api: ApiHarness) -> None:
        r = await api.client.get("/v1/auth/me")                 # sent with the admin key
        viewer = await api.key("viewer", namespaces=["team-a"])  # an ``fp_...`` key
        r = await api.client.get("/v1/workflows", headers=api.auth(viewer))
        async with api.client_for(viewer) as as_viewer:         # a client with that key
            r = await as_viewer.get("/v1/workflows")
        services = api.services                                 # store, auth, runs, ...

``api_with_worker_fixture`` is the same with one embedded worker (runs progress). Or build
one yourself with other settings: ``async with started(db, tmp_path, workers=1,
max_body_bytes=4096) as api: ...``.

What it does: ``create_app`` with settings for tests (the given database, no embedded
worker unless asked, generous rate limits, ``FLOWPLANE_ADMIN_KEY`` set so the first-start
admin key is known and nothing is printed), runs the app's lifespan around an
``httpx.AsyncClient`` over ``httpx.ASGITransport`` (which does not run it by itself),
and hands out keys created through :class:`flowplane.services.auth.AuthService`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from flowplane.api.app import create_app
from flowplane.security import passwords
from flowplane.security.tokens import generate_api_key
from flowplane.services.auth import LOCAL
from flowplane.services.container import Services
from flowplane.settings import Settings

ROLES = ("viewer", "executor", "editor", "admin")
# Argon2 at production cost takes ~0.5 s per hash on a shared CI core.
passwords.use_cheap_hashing()
BASE_URL = "http://flowplane.test"


def harness_settings(db: tuple[str, str], root: Path, **overrides: Any) -> Settings:
    """Settings for an in-test app on ``db`` with ``root`` as its workflow folder."""
    url, schema = db
    values: dict[str, Any] = {
        "database_url": url,
        "database_schema": schema,
        "root": root,
        "data_dir": root / "data",
        "workers": 0,
        "poll_interval_seconds": 0.2,
        "reaper_interval_seconds": 0.5,
        "lease_seconds": 5.0,
        "admin_key": generate_api_key().key,
        "rate_limit_per_minute": dict.fromkeys(ROLES, 100_000),
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class ApiHarness:
    """A started app.

    Attributes:
        app: the FastAPI app (lifespan running).
        client: an ``httpx.AsyncClient`` sending the admin key by default (override per
            request with ``headers=api.auth(other_key)``; ``api.client_for(None)`` sends
            no credentials).
        admin_key: the bootstrap admin key.
        settings: the app's settings.
        root: the server root folder (``workflowPath`` files go here).
    """

    app: FastAPI
    client: httpx.AsyncClient
    admin_key: str
    settings: Settings
    root: Path
    _keys: dict[tuple[str, tuple[str, ...] | None], str] = field(default_factory=dict)

    @property
    def services(self) -> Services:
        """The app's services (store, auth, runs, workflows, ...)."""
        services: Services = self.app.state.services
        return services

    @staticmethod
    def auth(key: str) -> dict[str, str]:
        """``Authorization`` headers for ``key`` (an API key or a login token)."""
        return {"Authorization": f"Bearer {key}"}

    async def key(
        self,
        role: str,
        namespaces: Sequence[str] | None = None,
        *,
        name: str | None = None,
        rate_limit_per_minute: int | None = None,
        fresh: bool = False,
    ) -> str:
        """An API key with ``role`` and ``namespaces`` (cached per pair unless ``fresh``)."""
        ident = (role, tuple(sorted(namespaces)) if namespaces is not None else None)
        if not fresh and rate_limit_per_minute is None and ident in self._keys:
            return self._keys[ident]
        created = await self.services.auth.create_api_key(
            caller=LOCAL,
            name=name or f"test-{role}-{'-'.join(ident[1] or ('all',))}",
            role=role,
            namespaces=namespaces,
            rate_limit_per_minute=rate_limit_per_minute,
        )
        if not fresh and rate_limit_per_minute is None:
            self._keys[ident] = created.secret
        return created.secret

    @contextlib.asynccontextmanager
    async def client_for(self, key: str | None) -> AsyncIterator[httpx.AsyncClient]:
        """A client sending ``key`` (``None``: no credentials at all)."""
        headers = self.auth(key) if key is not None else {}
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url=BASE_URL, headers=headers
        ) as client:
            yield client

    async def user(
        self,
        username: str,
        role: str,
        namespaces: Sequence[str] | None = None,
        password: str = "correct horse battery",
    ) -> str:
        """Create a user and return a login token for it."""
        await self.services.auth.create_user(
            caller=LOCAL, username=username, password=password, role=role, namespaces=namespaces
        )
        result = await self.services.auth.login(username, password)
        return result.token


@contextlib.asynccontextmanager
async def started(
    db: tuple[str, str], root: Path, *, workers: int = 0, **overrides: Any
) -> AsyncIterator[ApiHarness]:
    """Start an app on ``db`` (``overrides`` go to :func:`harness_settings`)."""
    root.mkdir(parents=True, exist_ok=True)
    settings = harness_settings(db, root, workers=workers, **overrides)
    app = create_app(settings)
    assert settings.admin_key is not None
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url=BASE_URL,
            headers={"Authorization": f"Bearer {settings.admin_key}"},
        ) as client:
            yield ApiHarness(app, client, settings.admin_key, settings, root)


@pytest.fixture(name="api")
async def api_fixture(db: tuple[str, str], tmp_path: Path) -> AsyncIterator[ApiHarness]:
    """A started app (no embedded worker) on each backend, with an admin key."""
    async with started(db, tmp_path / "root") as harness:
        yield harness


@pytest.fixture(name="api_with_worker")
async def api_with_worker_fixture(db: tuple[str, str], tmp_path: Path) -> AsyncIterator[ApiHarness]:
    """Like ``api`` with one embedded worker, for tests that need runs to progress."""
    async with started(db, tmp_path / "root", workers=1) as harness:
        yield harness


# Older spelling: ``from api_support import api`` (ruff then reports F811 on test arguments
# named ``api``; import ``api_fixture`` instead).
api = api_fixture
