"""The authorization matrix: every route × every role × own and foreign namespace.

Routes are enumerated from the app itself, so a route added tomorrow is checked tomorrow:

1. every route either declares ``require(role)`` or is one of the gate's open routes;
2. without credentials (or with a bad one) every non-open route answers 401;
3. each role below the route's role gets 403, each role at or above it never 401/403/5xx;
4. objects created in namespace ``team-a`` answer 404 to an admin of ``team-b`` on every
   route that names them (or, when the request is refused before any lookup, exactly what
   a missing object gets), and never appear in ``team-b``'s listings;
5. a key of ``team-a`` with just the required role reads its own objects (GET routes).

Objects are made through the API (:data:`PROVIDERS`); a path parameter without a provider
gets a dummy value and the route is only checked for 1-3.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import ApiHarness, started

from flowplane.api.deps import ROLE_RANK, api_routes
from flowplane.api.security import is_open

ROLES = ("viewer", "executor", "editor", "admin")
OWN, FOREIGN = "team-a", "team-b"
DUMMY = "no-such-id"
FIXED_PARAMS = {"node_id": "ask", "version": "1", "name": "go", "type": "util.log", "key": "k1"}
NAMESPACED_PARAMS = {
    "workflow_id",
    "run_id",
    "credential_id",
    "schedule_id",
    "trigger_id",
    "user_id",
    "token_id",
    "namespace",
}
STREAMING = re.compile(r"/events$")  # SSE: would stream forever on a live run

Provider = Callable[[httpx.AsyncClient, dict[str, str]], Awaitable[str | None]]


def _id(r: httpx.Response, *path: str) -> str | None:
    if not r.is_success:
        return None
    value: Any = r.json()
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return value if isinstance(value, str) else None


async def make_workflow(c: httpx.AsyncClient, made: dict[str, str]) -> str | None:
    doc = {
        "name": "wf-a",
        "namespace": OWN,
        "nodes": [{"id": "ask", "type": "control.approval", "params": {"title": "ok?"}}],
    }
    return _id(await c.post("/v1/workflows", json=doc), "id")


async def make_run(c: httpx.AsyncClient, made: dict[str, str]) -> str | None:
    if "workflow_id" not in made:
        return None
    return _id(await c.post("/v1/runs", json={"workflowId": made["workflow_id"]}), "runId")


async def make_credential(c: httpx.AsyncClient, made: dict[str, str]) -> str | None:
    body = {"namespace": OWN, "name": "TOKEN_A", "type": "secret", "value": "s3cret"}
    return _id(await c.post("/v1/credentials", json=body), "id")


async def make_schedule(c: httpx.AsyncClient, made: dict[str, str]) -> str | None:
    if "workflow_id" not in made:
        return None
    body = {"workflowId": made["workflow_id"], "cron": "0 8 * * *"}
    return _id(await c.post("/v1/schedules", json=body), "id")


async def make_trigger(c: httpx.AsyncClient, made: dict[str, str]) -> str | None:
    if "workflow_id" not in made:
        return None
    body = {"workflowId": made["workflow_id"], "key": "hook-a"}
    return _id(await c.post("/v1/triggers", json=body), "id")


async def make_kv(c: httpx.AsyncClient, made: dict[str, str]) -> str | None:
    r = await c.put(f"/v1/kv/{OWN}/k1", json={"value": 1})
    return OWN if r.is_success else None


async def make_user(c: httpx.AsyncClient, made: dict[str, str]) -> str | None:
    body = {
        "username": "alice",
        "password": "long enough pw",
        "role": "viewer",
        "namespaces": [OWN],
    }
    return _id(await c.post("/v1/auth/users", json=body), "id")


async def make_token(c: httpx.AsyncClient, made: dict[str, str]) -> str | None:
    body = {"name": "a", "role": "viewer", "namespaces": [OWN]}
    return _id(await c.post("/v1/auth/tokens", json=body), "token", "id")


PROVIDERS: dict[str, Provider] = {
    "workflow_id": make_workflow,
    "run_id": make_run,
    "credential_id": make_credential,
    "schedule_id": make_schedule,
    "trigger_id": make_trigger,
    "namespace": make_kv,
    "user_id": make_user,
    "token_id": make_token,
}
"""Path parameter -> how to create an object of ``team-a`` and return its id."""


def params_of(path: str) -> list[str]:
    return re.findall(r"{(\w+)(?::\w+)?}", path)


def fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"{(\w+)(?::\w+)?}", lambda m: values.get(m.group(1), DUMMY), path)


BODIES: dict[tuple[str, str], Any] = {
    ("PUT", "/v1/kv/{namespace}/{key}"): {"value": 2},
    ("POST", "/v1/workflows/{workflow_id}/operations"): {"ops": []},
    ("POST", "/v1/runs/{run_id}/rewind"): {"frameNo": 1},
    ("PUT", "/v1/workflows/{workflow_id}"): {
        "name": "wf-a",
        "nodes": [{"id": "x", "type": "util.log", "params": {"message": "hi"}}],
    },
}
"""Valid bodies where ``{}`` would be refused before the object is looked up."""
HEADERS: dict[tuple[str, str], dict[str, str]] = {
    ("PUT", "/v1/workflows/{workflow_id}"): {"If-Match": '"1"'},
}
Route = tuple[str, str, str | None]


@pytest.fixture
async def api(db: tuple[str, str], tmp_path: Path) -> AsyncIterator[ApiHarness]:
    """The harness with a master key, so credentials can be created."""
    master = base64.b64encode(os.urandom(32)).decode()
    async with started(db, tmp_path / "root", secret_key=master) as harness:
        yield harness


async def call(
    c: httpx.AsyncClient, method: str, url: str, key: str | None, template: str = ""
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {"Authorization": ""}
    headers.update(HEADERS.get((method, template), {}))
    body = BODIES.get((method, template), {}) if method in ("POST", "PUT", "PATCH") else None
    return await c.request(method, url, json=body, headers=headers)


class Matrix:
    """The checks, collecting every failure rather than stopping at the first."""

    def __init__(self, api: ApiHarness, routes: list[Route]) -> None:
        self.api = api
        self.c = api.client
        self.routes = routes
        self.made: dict[str, str] = {}
        self.failures: list[str] = []

    def expect(self, ok: bool, what: str, r: httpx.Response) -> None:
        if not ok:
            self.failures.append(f"{what}: got {r.status_code} {r.text[:160]}")

    async def provide(self) -> None:
        for param, provider in PROVIDERS.items():
            value = await provider(self.c, self.made)
            if value is not None:
                self.made[param] = value

    def targets(self, path: str) -> list[str] | None:
        """The namespaced params of ``path`` when all have real objects, else ``None``."""
        namespaced = [p for p in params_of(path) if p in NAMESPACED_PARAMS]
        if namespaced and all(p in self.made for p in namespaced):
            return namespaced
        return None

    async def roles(self) -> None:
        keys = {role: await self.api.key(role) for role in ROLES}
        dummies = {**FIXED_PARAMS, "namespace": "no-such-ns"}
        for method, path, role in self.routes:
            url = fill(path, dummies)
            if role is None:
                if not is_open(method, url.encode()):
                    self.failures.append(f"{method} {path}: no require(...), not an open route")
                continue
            for key in (None, "fp_" + "0" * 60, "Bearer-nothing"):
                r = await call(self.c, method, url, key)
                self.expect(r.status_code == 401, f"{method} {path} with {key!r}", r)
            for caller in ROLES:
                r = await call(self.c, method, url, keys[caller])
                if ROLE_RANK[caller] < ROLE_RANK[role]:
                    self.expect(r.status_code == 403, f"{method} {path} as {caller}", r)
                else:
                    ok = r.status_code not in (401, 403) and r.status_code < 500
                    self.expect(ok, f"{method} {path} as {caller}", r)

    async def foreign(self) -> None:
        intruder = await self.api.key("admin", [FOREIGN])
        values = {**FIXED_PARAMS, **self.made}
        dummies = {**FIXED_PARAMS, "namespace": "no-such-ns"}
        for method, path, role in self.routes:
            if role is not None and self.targets(path):
                r = await call(self.c, method, fill(path, values), intruder, path)
                if r.status_code in (400, 428):
                    # Refused before the lookup: fine if a missing object gets the same.
                    missing = await call(self.c, method, fill(path, dummies), intruder, path)
                    if missing.status_code == r.status_code:
                        continue
                self.expect(r.status_code == 404, f"{method} {path} from {FOREIGN}", r)
        hidden = set(self.made.values()) - {OWN}
        for method, path, role in self.routes:
            if method != "GET" or params_of(path) or role is None or path == "/metrics":
                continue
            r = await call(self.c, method, path, intruder)
            leaked = [s for s in hidden if s in r.text]
            self.expect(not leaked, f"GET {path} from {FOREIGN} lists {leaked}", r)

    async def own(self) -> None:
        values = {**FIXED_PARAMS, **self.made}
        for method, path, role in self.routes:
            if method != "GET" or role is None or STREAMING.search(path):
                continue
            names = params_of(path)
            if not self.targets(path) or any(
                p not in self.made and p not in FIXED_PARAMS for p in names
            ):
                continue
            r = await call(self.c, method, fill(path, values), await self.api.key(role, [OWN]))
            self.expect(r.status_code == 200, f"{method} {path} from {OWN} as {role}", r)


async def test_authorization_matrix(api: ApiHarness) -> None:
    routes: list[Route] = [
        (method, info.path, info.role)
        for info in api_routes(api.app)
        for method in sorted(info.methods)
        if method != "HEAD"
    ]
    assert len(routes) > 20
    matrix = Matrix(api, routes)
    await matrix.provide()
    # The auth routes are ours: their objects must exist; the rest are best effort.
    assert {"user_id", "token_id", "workflow_id"} <= set(matrix.made), matrix.made
    await matrix.roles()
    await matrix.foreign()
    await matrix.own()
    assert not matrix.failures, "\n".join(matrix.failures)
