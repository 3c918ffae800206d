"""Helpers for the runs API and client tests: a started app with keys per role.

The app runs its lifespan (store, embedded worker) in-process; requests go through
``httpx.ASGITransport``. Callers authenticate with the keys in :data:`KEYS`, checked by a
small authenticator so these tests do not depend on how keys are stored.
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
from fastapi import FastAPI, Request

from flowplane.api.app import create_app
from flowplane.api.deps import Principal
from flowplane.errors import Unauthorized
from flowplane.settings import Settings

KEYS: dict[str, Principal] = {
    "fp_test_viewer": Principal("k-viewer", "api_key", "viewer-key", "viewer"),
    "fp_test_executor": Principal("k-exec", "api_key", "exec-key", "executor"),
    "fp_test_admin": Principal("k-admin", "api_key", "admin-key", "admin"),
    "fp_test_other_ns": Principal("k-other", "api_key", "other-key", "admin", ("other",)),
}
VIEWER, EXECUTOR, ADMIN, OTHER_NS = list(KEYS)


class KeyAuthenticator:
    """Accepts the fixed test keys as ``Authorization: Bearer`` or ``X-API-Key``."""

    async def authenticate(self, request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        key = value.strip() if scheme.lower() == "bearer" else request.headers.get("x-api-key")
        principal = KEYS.get(key or "")
        if principal is None:
            raise Unauthorized("invalid API key")
        return principal


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


def install_auth(app: FastAPI) -> None:
    """Use the test keys on a started app."""
    app.state.services.extra["authenticator"] = KeyAuthenticator()


@dataclass
class Api:
    """A started app and an async HTTP client for it."""

    app: FastAPI
    http: httpx.AsyncClient
    root: Path

    def headers(self, key: str = EXECUTOR) -> dict[str, str]:
        """Authorization headers for ``key``."""
        return {"Authorization": f"Bearer {key}"}

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
        assert response.status_code == 201, response.text
        run_id: str = response.json()["runId"]
        return run_id


@contextlib.asynccontextmanager
async def started_api(db: tuple[str, str], root: Path) -> AsyncIterator[Api]:
    """Start the app (store, one embedded worker) and yield a client for it."""
    app = create_app(fast_settings(db, root), workers=1)
    async with app.router.lifespan_context(app):
        install_auth(app)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://flowplane") as http:
            yield Api(app, http, root)


def free_port() -> int:
    """Return a free TCP port on localhost."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def served(db: tuple[str, str], root: Path) -> Iterator[str]:
    """Serve the app with uvicorn in a thread; yield its base URL."""
    app = create_app(fast_settings(db, root), workers=1)
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
    install_auth(app)
    try:
        yield f"http://127.0.0.1:{port}"
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
