"""A ``flowplane serve`` set up for the Smithers Gateway tests (Python and Node clients).

One server per backend (SQLite, PostgreSQL), with the stored workflows Smithers' tests
register in code (``basic``, ``approval``, ``github-wait``) and a viewer and an executor key.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from serve_support import Serve, serving

from conftest import POSTGRES_URL, drop_schema, require_postgres

BASIC = """\
name: basic
nodes:
  - {id: task1, type: util.set, params: {value: "{{ input.value | default(1) }}"}}
"""
APPROVAL = """\
name: approval
nodes:
  - {id: pick-plan, type: control.approval, params: {title: "Pick a plan"}}
  - {id: record, type: util.set, params: {value: recorded}}
"""
WAIT = """\
name: github-wait
nodes:
  - {id: wait, type: wait.signal, params: {name: github.comment.created, correlation_id: "42"}}
  - {id: after, type: util.set, params: {value: "{{ nodes.wait.output }}"}}
"""


@dataclass
class Gateway:
    """A served Flowplane and the keys the ported tests use."""

    server: Serve
    viewer: str
    executor: str
    workflows: dict[str, str]

    @property
    def ws_url(self) -> str:
        return self.server.url.replace("http://", "ws://")

    def http(self, key: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {key or self.server.key}"}
        return httpx.AsyncClient(base_url=self.server.url, headers=headers, timeout=30)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """One ``flowplane serve`` per backend, with the workflows and keys of the tests."""
    base = tmp_path_factory.mktemp(f"gateway-{request.param}")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    if request.param == "sqlite":
        url, args = f"sqlite:///{base / 'fp.db'}", ()
    else:
        require_postgres()
        url, args = POSTGRES_URL, ("--database-schema", schema)
    env = {"FLOWPLANE_WS_HEARTBEAT_MS": "100"}
    try:
        with (
            serving(base, url, *args, env=env) as server,
            httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as c,
        ):
            workflows = {}
            for doc in (BASIC, APPROVAL, WAIT):
                made = c.post("/v1/workflows", content=doc, headers={"Content-Type": "text/yaml"})
                assert made.status_code == 201, made.text
                workflows[made.json()["name"]] = made.json()["id"]
            keys = {}
            for role in ("viewer", "executor"):
                made = c.post("/v1/auth/tokens", json={"name": f"user:{role}", "role": role})
                assert made.status_code == 201, made.text
                keys[role] = made.json()["secret"]
            yield Gateway(server, keys["viewer"], keys["executor"], workflows)
    finally:
        if request.param == "postgres":
            drop_schema(schema)
