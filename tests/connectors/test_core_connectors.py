"""The core built-in connectors, called directly with a real NodeContext.

``http.request`` runs against a real HTTP server on 127.0.0.1 (a thread in this process).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from flowplane.connectors.base import (
    NodeContext,
    NodeLogger,
    StartChildRun,
    WaitForApproval,
    WaitForSignal,
    WaitForTimer,
)
from flowplane.connectors.builtin import http_request as http_module
from flowplane.connectors.registry import Registry, load_builtins
from flowplane.errors import ConnectorError, NetworkPolicyViolation
from flowplane.settings import Settings


@pytest.fixture(scope="module")
def registry() -> Registry:
    reg = Registry()
    load_builtins(reg)
    return reg


class Ctx:
    """Builds NodeContexts whose logger collects lines into ``lines``."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def __call__(
        self, *, attempt: int = 1, settings: Any = None, extras: dict[str, Any] | None = None
    ) -> NodeContext:
        return NodeContext(
            run_id="run-1",
            node_id="node-1",
            iteration=0,
            attempt=attempt,
            namespace="default",
            workflow_name="wf",
            logger=NodeLogger(lambda level, message: self.lines.append((level, message))),
            settings=settings,
            extras=extras or {},
        )


@pytest.fixture
def make_ctx() -> Ctx:
    return Ctx()


async def call(registry: Registry, type_: str, params: dict[str, Any], ctx: NodeContext) -> Any:
    return await registry.get(type_)(params, ctx)


# --- util -----------------------------------------------------------------------------------


async def test_util_log(registry: Registry, make_ctx: Ctx) -> None:
    out = await call(registry, "util.log", {"message": "hello"}, make_ctx())
    assert out == {"message": "hello"}
    await call(registry, "util.log", {"message": {"a": 1}, "level": "warning"}, make_ctx())
    assert make_ctx.lines == [("info", "hello"), ("warning", '{"a": 1}')]


async def test_util_noop_and_set(registry: Registry, make_ctx: Ctx) -> None:
    assert await call(registry, "util.noop", {"whatever": 1}, make_ctx()) == {}
    assert await call(registry, "util.set", {"value": [1, {"b": 2}]}, make_ctx()) == [1, {"b": 2}]
    assert await call(registry, "util.set", {"value": None}, make_ctx()) is None


async def test_util_fail(registry: Registry, make_ctx: Ctx) -> None:
    with pytest.raises(ConnectorError, match="boom") as info:
        await call(registry, "util.fail", {"message": "boom"}, make_ctx())
    assert info.value.retryable is True
    with pytest.raises(ConnectorError) as info:
        await call(registry, "util.fail", {"retryable": False}, make_ctx())
    assert info.value.retryable is False
    params = {"fail_times": 2}
    for attempt in (1, 2):
        with pytest.raises(ConnectorError):
            await call(registry, "util.fail", params, make_ctx(attempt=attempt))
    assert await call(registry, "util.fail", params, make_ctx(attempt=3)) == {"attempt": 3}
    assert await call(registry, "util.fail", {"fail_times": 0}, make_ctx()) == {"attempt": 1}


# --- data -----------------------------------------------------------------------------------


async def test_data_transform(registry: Registry, make_ctx: Ctx) -> None:
    data = {"orders": [{"id": 1, "open": True}, {"id": 2, "open": False}]}
    out = await call(
        registry, "data.transform", {"data": data, "expression": "orders[?open].id"}, make_ctx()
    )
    assert out == [1]
    out = await call(registry, "data.transform", {"data": data, "expression": "nope"}, make_ctx())
    assert out is None
    with pytest.raises(ConnectorError, match="JMESPath") as info:
        await call(registry, "data.transform", {"data": data, "expression": "[?"}, make_ctx())
    assert info.value.retryable is False


async def test_data_template(registry: Registry, make_ctx: Ctx) -> None:
    ctx = make_ctx(extras={"template_context": {"input": {"order_id": 7}}})
    out = await call(
        registry,
        "data.template",
        {"template": "order {{ input.order_id }} for {{ vars.name }}", "vars": {"name": "Ada"}},
        ctx,
    )
    assert out == {"text": "order 7 for Ada", "value": "order 7 for Ada"}
    out = await call(
        registry,
        "data.template",
        {"template": "{{ vars.numbers }}", "vars": {"numbers": [1, 2]}},
        ctx,
    )
    assert out == {"text": "[1, 2]", "value": [1, 2]}
    out = await call(registry, "data.template", {"template": {"id": "{{ input.order_id }}"}}, ctx)
    assert out["value"] == {"id": 7}
    with pytest.raises(ConnectorError) as info:
        await call(registry, "data.template", {"template": "{{ 1 + }}"}, ctx)
    assert info.value.retryable is False


# --- waits, approval, sub-workflows ---------------------------------------------------------


async def test_wait_duration(registry: Registry, make_ctx: Ctx) -> None:
    before = dt.datetime.now(dt.UTC)
    out = await call(registry, "wait.duration", {"duration": "5m"}, make_ctx())
    assert isinstance(out, WaitForTimer)
    assert out.fires_at.tzinfo is not None
    delta = (out.fires_at - before).total_seconds()
    assert 299 <= delta <= 302
    assert out.output["seconds"] == 300
    out = await call(registry, "wait.duration", {"duration": 1.5}, make_ctx())
    assert out.output["seconds"] == 1.5
    with pytest.raises(ConnectorError) as info:
        await call(registry, "wait.duration", {"duration": "soon"}, make_ctx())
    assert info.value.retryable is False


async def test_wait_until(registry: Registry, make_ctx: Ctx) -> None:
    out = await call(registry, "wait.until", {"at": "2099-01-31T08:00:00+01:00"}, make_ctx())
    assert isinstance(out, WaitForTimer)
    assert out.fires_at == dt.datetime(2099, 1, 31, 7, 0, tzinfo=dt.UTC)
    assert out.output["at"] == "2099-01-31T07:00:00Z"
    naive = await call(registry, "wait.until", {"at": "2099-01-31T08:00:00"}, make_ctx())
    assert naive.fires_at == dt.datetime(2099, 1, 31, 8, 0, tzinfo=dt.UTC)
    zulu = await call(registry, "wait.until", {"at": "2099-01-31T08:00:00Z"}, make_ctx())
    assert zulu.fires_at == naive.fires_at
    now = dt.datetime.now(dt.UTC)
    past = await call(registry, "wait.until", {"at": "2001-01-01T00:00:00Z"}, make_ctx())
    assert abs((past.fires_at - now).total_seconds()) < 5  # fires immediately
    assert past.output["at"] == "2001-01-01T00:00:00Z"
    with pytest.raises(ConnectorError):
        await call(registry, "wait.until", {"at": "next tuesday"}, make_ctx())


async def test_wait_signal(registry: Registry, make_ctx: Ctx) -> None:
    out = await call(registry, "wait.signal", {"name": "paid"}, make_ctx())
    assert out == WaitForSignal(name="paid", correlation_id=None)
    out = await call(registry, "wait.signal", {"name": "paid", "correlation_id": "o-1"}, make_ctx())
    assert out == WaitForSignal(name="paid", correlation_id="o-1")


async def test_control_approval(registry: Registry, make_ctx: Ctx) -> None:
    out = await call(registry, "control.approval", {"title": "Refund?"}, make_ctx())
    assert out == WaitForApproval(title="Refund?", description="", on_deny="fail")
    out = await call(
        registry,
        "control.approval",
        {"title": "Deploy?", "description": "v2", "on_deny": "continue"},
        make_ctx(),
    )
    assert out == WaitForApproval(title="Deploy?", description="v2", on_deny="continue")


async def test_flow_run_by_name_and_inline(registry: Registry, make_ctx: Ctx) -> None:
    out = await call(registry, "flow.run", {"workflow": "child", "input": {"a": 1}}, make_ctx())
    assert out == StartChildRun(workflow="child", input={"a": 1})
    doc = {"name": "inline", "nodes": [{"id": "a", "type": "util.noop"}]}
    out = await call(registry, "flow.run", {"document": doc}, make_ctx())
    assert out == StartChildRun(document=doc, input={})
    for params in ({}, {"workflow": "a", "document": doc}):
        with pytest.raises(ConnectorError, match="exactly one") as info:
            await call(registry, "flow.run", params, make_ctx())
        assert info.value.retryable is False


async def test_flow_run_by_path(registry: Registry, make_ctx: Ctx, tmp_path: Path) -> None:
    pytest.importorskip("flowplane.model.yaml")
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "child.yaml").write_text(
        "name: child\nnodes:\n  - id: hello\n    type: util.log\n    params: {message: hi}\n"
    )
    settings = Settings(root=tmp_path)
    out = await call(
        registry,
        "flow.run",
        {"path": "flows/child.yaml", "input": {"x": 1}},
        make_ctx(settings=settings),
    )
    assert isinstance(out, StartChildRun)
    assert out.workflow is None and out.input == {"x": 1}
    assert out.document is not None and out.document["name"] == "child"
    assert out.document["nodes"][0]["id"] == "hello"


@pytest.mark.parametrize(
    "path",
    ["/etc/passwd", "../outside.yaml", "flows/../../outside.yaml", "C:\\x.yaml", "link/x.yaml"],
)
async def test_flow_run_refuses_paths_outside_root(
    registry: Registry, make_ctx: Ctx, tmp_path: Path, path: str
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "x.yaml").write_text("name: x\nnodes: []\n")
    (root / "link").symlink_to(outside)
    with pytest.raises(ConnectorError) as info:
        await call(registry, "flow.run", {"path": path}, make_ctx(settings=Settings(root=root)))
    assert info.value.retryable is False


async def test_flow_run_missing_file(registry: Registry, make_ctx: Ctx, tmp_path: Path) -> None:
    with pytest.raises(ConnectorError, match="not found"):
        await call(
            registry, "flow.run", {"path": "nope.yaml"}, make_ctx(settings=Settings(root=tmp_path))
        )


# --- http.request against a real local server -----------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    release: threading.Event

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _route(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = url.path
        if path == "/json":
            self._json(200, {"hello": "world"})
        elif path == "/text":
            self._send(200, "héllo text".encode(), "text/plain; charset=utf-8")
        elif path == "/bytes":
            self._send(200, b"\x00\x01\xfe\xff", "application/octet-stream")
        elif path == "/echo":
            self._json(
                200,
                {
                    "method": self.command,
                    "query": parse_qs(url.query),
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body.decode(),
                },
            )
        elif path.startswith("/status/"):
            self._send(int(path.rsplit("/", 1)[1]), b"status body", "text/plain", Retry_After="7")
        elif path == "/sleep":
            self.release.wait(2.0)
            self._json(200, {"slept": True})
        elif path == "/redirect":
            self._send(302, b"", "text/plain", Location="/json")
        elif path == "/redirect-to":
            self._send(302, b"", "text/plain", Location=parse_qs(url.query)["url"][0])
        elif path == "/big":
            self._send(200, b"x" * 5000, "text/plain")
        else:
            self._send(404, b"not found", "text/plain")

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _route


@pytest.fixture
def server() -> Iterator[str]:
    release = threading.Event()
    handler = type("Handler", (_Handler,), {"release": release})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def allowed(make_ctx: Ctx) -> NodeContext:
    return make_ctx(settings=Settings(allow_hosts=["127.0.0.1"]))


async def test_http_json_text_and_bytes(
    registry: Registry, allowed: NodeContext, server: str
) -> None:
    out = await call(registry, "http.request", {"url": f"{server}/json"}, allowed)
    assert out["status_code"] == 200
    assert out["body"] == {"hello": "world"}
    assert out["headers"]["content-type"] == "application/json"
    assert out["url"] == f"{server}/json"
    assert isinstance(out["elapsed_ms"], int)
    out = await call(registry, "http.request", {"url": f"{server}/text"}, allowed)
    assert out["body"] == "héllo text"
    out = await call(registry, "http.request", {"url": f"{server}/bytes"}, allowed)
    assert base64.b64decode(out["body"]) == b"\x00\x01\xfe\xff"
    out = await call(
        registry, "http.request", {"url": f"{server}/json", "response": "text"}, allowed
    )
    assert json.loads(out["body"]) == {"hello": "world"}
    out = await call(
        registry, "http.request", {"url": f"{server}/text", "response": "bytes"}, allowed
    )
    assert base64.b64decode(out["body"]).decode() == "héllo text"
    with pytest.raises(ConnectorError, match="not JSON") as info:
        await call(registry, "http.request", {"url": f"{server}/text", "response": "json"}, allowed)
    assert info.value.retryable is False


async def test_http_sends_query_headers_and_bodies(
    registry: Registry, allowed: NodeContext, server: str
) -> None:
    out = await call(
        registry,
        "http.request",
        {
            "url": f"{server}/echo?fixed=1",
            "query": {"q": "flow plane", "page": 2, "tags": ["a", "b"], "skip": None},
            "headers": {"X-Custom": "yes", "X-Flag": True},
        },
        allowed,
    )
    echo = out["body"]
    assert echo["method"] == "GET"
    assert echo["query"] == {"fixed": ["1"], "q": ["flow plane"], "page": ["2"], "tags": ["a", "b"]}
    assert echo["headers"]["x-custom"] == "yes"
    assert echo["headers"]["x-flag"] == "true"
    assert echo["headers"]["idempotency-key"] == "run-1:node-1:0"

    out = await call(
        registry,
        "http.request",
        {"url": f"{server}/echo", "method": "post", "json": {"a": [1, 2]}},
        allowed,
    )
    assert out["body"]["method"] == "POST"
    assert json.loads(out["body"]["body"]) == {"a": [1, 2]}
    assert out["body"]["headers"]["content-type"] == "application/json"

    out = await call(
        registry,
        "http.request",
        {"url": f"{server}/echo", "method": "PUT", "form": {"a": "1", "b": "x y"}},
        allowed,
    )
    assert parse_qs(out["body"]["body"]) == {"a": ["1"], "b": ["x y"]}

    out = await call(
        registry,
        "http.request",
        {
            "url": f"{server}/echo",
            "method": "POST",
            "body": "raw text",
            "headers": {"idempotency-key": "mine"},
        },
        allowed,
    )
    assert out["body"]["body"] == "raw text"
    assert out["body"]["headers"]["idempotency-key"] == "mine"

    with pytest.raises(ConnectorError, match="at most one"):
        await call(
            registry, "http.request", {"url": f"{server}/echo", "json": {}, "body": "x"}, allowed
        )


async def test_http_server_errors_are_retryable(
    registry: Registry, allowed: NodeContext, server: str
) -> None:
    with pytest.raises(ConnectorError) as info:
        await call(registry, "http.request", {"url": f"{server}/status/500"}, allowed)
    assert info.value.retryable is True
    assert info.value.extra["status_code"] == 500
    assert info.value.extra["body"] == "status body"
    with pytest.raises(ConnectorError) as info:
        await call(registry, "http.request", {"url": f"{server}/status/429"}, allowed)
    assert info.value.retryable is True
    assert info.value.extra["retry_after"] == "7"


async def test_http_client_errors_are_not_retryable(
    registry: Registry, allowed: NodeContext, server: str
) -> None:
    with pytest.raises(ConnectorError) as info:
        await call(registry, "http.request", {"url": f"{server}/status/404?token=s3cret"}, allowed)
    assert info.value.retryable is False
    assert info.value.extra["status_code"] == 404
    assert "s3cret" not in str(info.value)


async def test_http_expect_status(registry: Registry, allowed: NodeContext, server: str) -> None:
    out = await call(
        registry,
        "http.request",
        {"url": f"{server}/status/404", "expect_status": [200, 404]},
        allowed,
    )
    assert out["status_code"] == 404
    assert out["body"] == "status body"
    with pytest.raises(ConnectorError) as info:
        await call(
            registry, "http.request", {"url": f"{server}/json", "expect_status": "3xx"}, allowed
        )
    assert info.value.retryable is False
    out = await call(
        registry,
        "http.request",
        {"url": f"{server}/redirect", "follow_redirects": False, "expect_status": "3xx"},
        allowed,
    )
    assert out["status_code"] == 302
    assert out["headers"]["location"] == "/json"


async def test_http_timeout_is_retryable(
    registry: Registry, allowed: NodeContext, server: str
) -> None:
    with pytest.raises(ConnectorError, match="timed out") as info:
        await call(
            registry, "http.request", {"url": f"{server}/sleep", "timeout": "300ms"}, allowed
        )
    assert info.value.retryable is True


async def test_http_connection_refused_is_retryable(
    registry: Registry, allowed: NodeContext, server: str
) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConnectorError) as info:
        await call(registry, "http.request", {"url": f"http://127.0.0.1:{port}/"}, allowed)
    assert info.value.retryable is True
    assert not isinstance(info.value, NetworkPolicyViolation)


async def test_http_follows_redirects(
    registry: Registry, allowed: NodeContext, server: str
) -> None:
    out = await call(registry, "http.request", {"url": f"{server}/redirect"}, allowed)
    assert out["status_code"] == 200
    assert out["body"] == {"hello": "world"}
    assert out["url"] == f"{server}/json"


async def test_http_redirect_to_private_address_is_refused(
    registry: Registry, allowed: NodeContext, server: str
) -> None:
    target = "http://169.254.169.254/latest/meta-data/"
    with pytest.raises(NetworkPolicyViolation) as info:
        await call(registry, "http.request", {"url": f"{server}/redirect-to?url={target}"}, allowed)
    assert info.value.retryable is False


async def test_http_blocked_without_allow_list(
    registry: Registry, make_ctx: Ctx, server: str
) -> None:
    for settings in (None, Settings()):
        with pytest.raises(NetworkPolicyViolation) as info:
            await call(
                registry, "http.request", {"url": f"{server}/json"}, make_ctx(settings=settings)
            )
        assert info.value.retryable is False
        assert "loopback" in str(info.value)


async def test_http_response_size_cap(
    registry: Registry, allowed: NodeContext, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_module, "MAX_RESPONSE_BYTES", 1000)
    with pytest.raises(ConnectorError, match="larger than") as info:
        await call(registry, "http.request", {"url": f"{server}/big"}, allowed)
    assert info.value.retryable is False


async def test_http_bad_params(registry: Registry, allowed: NodeContext, server: str) -> None:
    cases: list[dict[str, Any]] = [
        {"url": f"{server}/json", "timeout": "forever"},
        {"url": f"{server}/json", "expect_status": "2xy"},
        {"url": f"{server}/json", "method": "BREW"},
        {"url": "ftp://127.0.0.1/file"},
    ]
    for params in cases:
        with pytest.raises(ConnectorError) as info:
            await call(registry, "http.request", params, allowed)
        assert info.value.retryable is False, params
