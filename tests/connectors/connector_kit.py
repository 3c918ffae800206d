"""Helpers shared by the connector library tests: contexts, local HTTP servers, manifest checks."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema

from flowplane.connectors.base import KVAccess, NodeContext, NodeLogger
from flowplane.connectors.registry import module_connectors
from flowplane.settings import Settings


@dataclass
class Logs:
    """Collects log lines of a context."""

    lines: list[tuple[str, str]] = field(default_factory=list)

    def sink(self, level: str, message: str) -> None:
        self.lines.append((level, message))

    @property
    def text(self) -> str:
        return "\n".join(message for _, message in self.lines)


def make_ctx(
    tmp_path: Path,
    *,
    credentials: dict[str, str] | None = None,
    logs: Logs | None = None,
    kv: KVAccess | None = None,
    allow_hosts: list[str] | None = None,
    namespace: str = "default",
    **settings: Any,
) -> NodeContext:
    """Return a NodeContext with real Settings rooted at ``tmp_path``."""
    logs = logs or Logs()
    return NodeContext(
        run_id="r1",
        node_id="n",
        iteration=0,
        attempt=1,
        namespace=namespace,
        workflow_name="wf",
        logger=NodeLogger(logs.sink),
        settings=Settings(
            data_dir=tmp_path,
            allow_hosts=["127.0.0.1"] if allow_hosts is None else allow_hosts,
            **settings,
        ),
        credentials=credentials or {},
        kv=kv,
    )


def assert_manifests(module: ModuleType, minimum: int = 1) -> None:
    """Check every connector of ``module`` has a complete manifest with valid examples."""
    connectors = module_connectors(module)
    assert len(connectors) >= minimum
    for conn in connectors:
        m = conn.manifest
        assert m.type.count(".") == 1 and m.name and m.category and m.description, m.type
        assert len(m.description) <= 100 and m.description.endswith("."), m.type
        schema = m.input_schema
        assert schema["type"] == "object" and schema["additionalProperties"] is False, m.type
        for name, sub in schema["properties"].items():
            assert sub.get("description"), f"{m.type}.{name} has no description"
        assert set(schema.get("required", [])) <= set(schema["properties"]), m.type
        assert m.output_schema.get("properties"), m.type
        jsonschema.Draft202012Validator.check_schema(schema)
        validator = jsonschema.Draft202012Validator(schema)
        assert m.examples, m.type
        for example in m.examples:
            assert not list(validator.iter_errors(example)), (m.type, example)
        for secret in m.secrets:
            assert secret in schema["properties"], (m.type, secret)


# --- a real HTTP server on 127.0.0.1 ------------------------------------------------------------


@dataclass
class Request:
    """One request the test server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Reply = tuple[int, dict[str, str], bytes]
Handler = Callable[[Request], Reply]


def json_reply(status: int, value: Any, headers: dict[str, str] | None = None) -> Reply:
    """A JSON response tuple."""
    return (
        status,
        {"Content-Type": "application/json", **(headers or {})},
        json.dumps(value).encode(),
    )


class LocalServer:
    """A threaded HTTP server whose responses come from ``handler``; records requests."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Request] = []
        outer = self

        class _H(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )
                outer.requests.append(request)
                status, headers, body = outer.handler(request)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class _Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients that time out on purpose close their socket early

        self.server = _Server(("127.0.0.1", 0), _H)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> LocalServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def local_server(handler: Handler) -> Iterator[LocalServer]:
    """Run a :class:`LocalServer` for the duration of the block."""
    with LocalServer(handler) as server:
        yield server
