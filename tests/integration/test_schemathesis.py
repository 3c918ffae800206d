"""Schemathesis against the exact OpenAPI document, with an admin key and a viewer key.

The app is served by uvicorn on a free port (real HTTP, real lifespan, SQLite); every
operation of ``/openapi.json`` gets a few generated requests, schema-valid and
schema-invalid, and every response must be no 5xx and conform to the document: status
code, content type, headers and body schema. Examples are few (the suite runs on two
shared cores); set ``FLOWPLANE_SCHEMATHESIS_EXAMPLES`` for a deeper local run.
"""

from __future__ import annotations

import base64
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from api_support import harness_settings
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from flowplane.api.app import create_app
from flowplane.security.tokens import generate_api_key

EXAMPLES = int(os.environ.get("FLOWPLANE_SCHEMATHESIS_EXAMPLES", "3"))
STREAMING = {"/v1/runs/{run_id}/events", "/v1/events"}  # SSE: held open while live
CHECKS: list[Callable[..., Any]] = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@dataclass
class Served:
    """A served app: its base URL, OpenAPI document and keys."""

    url: str
    document: dict[str, Any]
    keys: dict[str, str]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    admin = generate_api_key().key
    db = (f"sqlite:///{tmp_path / 'flowplane.db'}", "flowplane")
    master = base64.b64encode(os.urandom(32)).decode()  # credentials need a master key
    app = create_app(harness_settings(db, tmp_path / "root", admin_key=admin, secret_key=master))
    (tmp_path / "root").mkdir()
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="schemathesis-server", daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    try:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin}"}) as c:
            document = c.get("/openapi.json").raise_for_status().json()
            viewer = c.post("/v1/auth/tokens", json={"name": "st-viewer", "role": "viewer"})
        keys = {"admin": admin, "viewer": viewer.raise_for_status().json()["secret"]}
        yield Served(url, document, keys)
    finally:
        server.should_exit = True
        thread.join(30)


def fuzz(served: Served, role: str, modes: tuple[GenerationMode, ...]) -> list[str]:
    """Run every operation; return one line per operation that failed a check."""
    schema = schemathesis.openapi.from_dict(served.document)
    headers = {"Authorization": f"Bearer {served.keys[role]}"}
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    for operation in operations:
        if operation.path in STREAMING:
            continue
        for mode in modes:

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case: Any) -> None:
                response = case.call(base_url=served.url, headers=headers, timeout=10)
                case.validate_response(response, checks=CHECKS)

            try:
                check()
            except Unsatisfiable:
                continue  # nothing to make invalid (no parameters, no body)
            except Exception as exc:  # collected: one report for the whole API
                parts = exc.exceptions if isinstance(exc, ExceptionGroup) else (exc,)
                first = "\n".join(str(e) for e in parts).strip().splitlines()[:12]
                failures.append(f"{operation.label} [{mode.value}]: " + "\n    ".join(first))
    return failures


@pytest.mark.parametrize(
    ("role", "modes"),
    [
        pytest.param("admin", (GenerationMode.POSITIVE, GenerationMode.NEGATIVE), id="admin"),
        # A viewer is refused (403) before validation on most writes: valid data suffices.
        pytest.param("viewer", (GenerationMode.POSITIVE,), id="viewer"),
    ],
)
@pytest.mark.timeout(400)
def test_openapi_conformance(served: Served, role: str, modes: tuple[GenerationMode, ...]) -> None:
    failures = fuzz(served, role, modes)
    assert not failures, f"{len(failures)} operations failed:\n" + "\n".join(failures)
