"""Helpers for the runs API and client tests: a started app with keys per role.

The app runs its lifespan (store, embedded worker, auth) in-process and requests go through
``httpx.ASGITransport``; or it is served by uvicorn in a thread for the sync client. One API
key per role is created through the auth service (see :data:`KEY_SPECS`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from flowplane.api.app import create_app
from flowplane.services.auth import LOCAL
from flowplane.settings import Settings

VIEWER, EXECUTOR, ADMIN, OTHER_NS = "viewer", "executor", "admin", "other-ns"
KEY_SPECS: dict[str, tuple[str, str, list[str] | None]] = {
    VIEWER: ("viewer-key", "viewer", None),
    EXECUTOR: ("exec-key", "executor", None),
    ADMIN: ("admin-key", "admin", None),
    OTHER_NS: ("other-key", "admin", ["other"]),
}
"""Test keys: ``{handle: (key name, role, namespaces)}``."""


async def create_keys(app: FastAPI) -> dict[str, str]:
    """Create one API key per :data:`KEY_SPECS` entry; return ``{handle: secret}``."""
    auth = app.state.services.auth
    keys: dict[str, str] = {}
    for handle, (name, role, namespaces) in KEY_SPECS.items():
        created = await auth.create_api_key(
            caller=LOCAL, name=name, role=role, namespaces=namespaces
        )
        keys[handle] = created.secret
    return keys


def fast_settings(db: tuple[str, str], root: Path, **overrides: Any) -> Settings:
    """Settings for an in-test server: short intervals, the given database and root."""
    url, schema = db
    values: dict[str, Any] = {
        "database_url": url,
        "database_schema": schema,
        "root": root,
        "poll_interval_seconds": 0.2,
        "reaper_interval_seconds": 0.5,
        "lease_seconds": 5.0,
        "worker_concurrency": 8,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class Api:
    """A started app and an async HTTP client for it."""

    app: FastAPI
    http: httpx.AsyncClient
    root: Path
    keys: dict[str, str]

    def headers(self, key: str = EXECUTOR) -> dict[str, str]:
        """Authorization headers for the key ``key`` (a :data:`KEY_SPECS` handle)."""
        return {"Authorization": f"Bearer {self.keys[key]}"}

    async def wait_status(
        self, run_id: str, *statuses: str, timeout: float = 15.0
    ) -> dict[str, Any]:
        """Poll ``GET /v1/runs/{id}`` until the run has one of ``statuses``."""
        deadline = time.monotonic() + timeout
        while True:
            response = await self.http.get(f"/v1/runs/{run_id}", headers=self.headers(VIEWER))
            body: dict[str, Any] = response.json()
            if body.get("status") in statuses:
                return body
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} stayed {body.get('status')}, want {statuses}")
            await asyncio.sleep(0.05)

    async def dispatch_file(self, name: str, text: str, run_input: Any = None) -> str:
        """Write ``text`` as ``name`` under the root and start it; return the run id."""
        (self.root / name).write_text(text)
        response = await self.http.post(
            "/v1/runs",
            json={"workflowPath": name, "input": run_input},
            headers=self.headers(),
        )
        assert response.status_code == 200, response.text
        run_id: str = response.json()["runId"]
        return run_id


@contextlib.asynccontextmanager
async def started_api(db: tuple[str, str], root: Path) -> AsyncIterator[Api]:
    """Start the app (store, one embedded worker) and yield a client for it."""
    app = create_app(fast_settings(db, root), workers=1)
    async with app.router.lifespan_context(app):
        keys = await create_keys(app)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://flowplane") as http:
            yield Api(app, http, root, keys)


def free_port() -> int:
    """Return a free TCP port on localhost."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def served(
    db: tuple[str, str], root: Path, **overrides: Any
) -> Iterator[tuple[str, dict[str, str]]]:
    """Serve the app with uvicorn in a thread; yield its base URL and the test keys
    (``overrides``: more settings)."""
    app = create_app(fast_settings(db, root, **overrides), workers=1)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not (server.started and hasattr(app.state, "services")):
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    keys = asyncio.run(create_keys(app))
    try:
        yield f"http://127.0.0.1:{port}", keys
    finally:
        server.should_exit = True
        thread.join(20)


APPROVAL_WORKFLOW = """
name: needs-approval
nodes:
  - id: ask
    type: control.approval
    params: {title: "Ship it?"}
  - id: done
    type: util.set
    params: {value: shipped}
"""

LOG_WORKFLOW = """
name: three-logs
inputs:
  type: object
  properties: {who: {type: string}}
nodes:
  - {id: a, type: util.log, params: {message: "hello {{ input.who }}"}}
  - {id: b, type: util.log, params: {message: "second"}}
  - {id: c, type: util.set, params: {value: {greeted: "{{ input.who }}"}}}
"""

SIGNAL_WORKFLOW = """
name: waits-signal
nodes:
  - {id: wait, type: wait.signal, params: {name: paid}}
  - {id: after, type: util.set, params: {value: "{{ nodes.wait.output.payload }}"}}
"""

FLAKY_WORKFLOW = """
name: flaky
nodes:
  - {id: first, type: util.set, params: {value: 1}}
  - id: flaky
    type: util.fail
    params: {fail_times: 1, retryable: false}
  - {id: last, type: util.set, params: {value: "{{ nodes.flaky.output.attempt }}"}}
"""
