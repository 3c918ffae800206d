"""http.graphql, http.download (into run artifacts), http.webhook_response (real local server)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from connector_kit import Request, assert_manifests, json_reply, local_server, make_ctx

from flowplane.connectors.builtin import http_download, http_graphql, http_webhook_response
from flowplane.errors import ConnectorError, NetworkPolicyViolation

TOKEN = "tok-very-secret-123"


@pytest.fixture
def ctx(tmp_path: Path) -> Any:
    return make_ctx(tmp_path, credentials={"TOKEN": TOKEN})


def test_manifests() -> None:
    for module in (http_graphql, http_download, http_webhook_response):
        assert_manifests(module, minimum=1)


def graphql_handler(request: Request) -> Any:
    body = request.json()
    if request.path == "/errors":
        return json_reply(200, {"data": None, "errors": [{"message": f"bad {TOKEN}"}]})
    if request.path == "/busy":
        return json_reply(503, {"errors": [{"message": "down"}]})
    if request.path == "/html":
        return 200, {"Content-Type": "text/html"}, b"<html>oops</html>"
    return json_reply(
        200,
        {
            "data": {
                "echo": body["variables"],
                "op": body.get("operationName"),
                "auth": request.headers.get("authorization"),
            }
        },
    )


async def test_graphql(ctx: Any) -> None:
    with local_server(graphql_handler) as server:
        out = await http_graphql.graphql(
            {
                "url": server.url + "/gql",
                "query": "query Q($id: ID!) { x }",
                "variables": {"id": "'; DROP TABLE x;--"},
                "operation_name": "Q",
                "credential": "TOKEN",
            },
            ctx,
        )
        assert out["status_code"] == 200 and out["errors"] == []
        assert out["data"]["echo"] == {"id": "'; DROP TABLE x;--"}
        assert out["data"]["auth"] == f"Bearer {TOKEN}" and out["data"]["op"] == "Q"
        assert server.requests[0].headers["idempotency-key"] == "r1:n:0"

        with pytest.raises(ConnectorError, match="GraphQL errors") as err:
            await http_graphql.graphql(
                {"url": server.url + "/errors", "query": "{x}", "credential": "TOKEN"}, ctx
            )
        assert TOKEN not in err.value.detail and not err.value.retryable
        partial = await http_graphql.graphql(
            {"url": server.url + "/errors", "query": "{x}", "fail_on_errors": False}, ctx
        )
        assert partial["data"] is None and partial["errors"]
        with pytest.raises(ConnectorError, match="HTTP 503") as err:
            await http_graphql.graphql({"url": server.url + "/busy", "query": "{x}"}, ctx)
        assert err.value.retryable
        with pytest.raises(ConnectorError, match="not return a GraphQL"):
            await http_graphql.graphql({"url": server.url + "/html", "query": "{x}"}, ctx)


async def test_graphql_network_policy(tmp_path: Path) -> None:
    with pytest.raises(NetworkPolicyViolation):
        await http_graphql.graphql(
            {"url": "http://127.0.0.1:9/gql", "query": "{x}"}, make_ctx(tmp_path, allow_hosts=[])
        )
    with pytest.raises(NetworkPolicyViolation):
        await http_graphql.graphql(
            {"url": "http://169.254.169.254/latest", "query": "{x}"},
            make_ctx(tmp_path, allow_hosts=["169.254.0.0/16"]),
        )


PAYLOAD = b"%PDF-1.4 fake pdf bytes" * 100


def download_handler(request: Request) -> Any:
    if request.path.startswith("/report"):
        return (
            200,
            {
                "Content-Type": "application/pdf",
                "Content-Disposition": 'attachment; filename="../../evil q1.pdf"',
            },
            PAYLOAD,
        )
    if request.path == "/missing":
        return 404, {}, b"no"
    if request.path == "/flaky":
        return 502, {}, b"bad gateway"
    return 200, {"Content-Type": "text/plain"}, b"plain"


async def test_download(ctx: Any, tmp_path: Path) -> None:
    with local_server(download_handler) as server:
        out = await http_download.download(
            {"url": server.url + "/report?id=1", "credential": "TOKEN"}, ctx
        )
        assert out["filename"] == "evil_q1.pdf" and out["size"] == len(PAYLOAD)
        assert out["artifact"] == "artifacts/r1/evil_q1.pdf"
        assert Path(out["path"]).read_bytes() == PAYLOAD
        assert Path(out["path"]).parent == tmp_path / "artifacts" / "r1"
        assert out["sha256"] == hashlib.sha256(PAYLOAD).hexdigest()
        assert TOKEN not in str(out)
        named = await http_download.download(
            {"url": server.url + "/data/file.txt", "filename": "/etc/passwd"}, ctx
        )
        assert named["filename"] == "passwd" and Path(named["path"]).read_text() == "plain"
        from_url = await http_download.download({"url": server.url + "/data/file.txt"}, ctx)
        assert from_url["filename"] == "file.txt"
        with pytest.raises(ConnectorError, match="larger") as err:
            await http_download.download({"url": server.url + "/report", "max_bytes": 100}, ctx)
        assert not err.value.retryable
        with pytest.raises(ConnectorError, match="404") as err:
            await http_download.download({"url": server.url + "/missing"}, ctx)
        assert not err.value.retryable
        with pytest.raises(ConnectorError, match="502") as err:
            await http_download.download({"url": server.url + "/flaky"}, ctx)
        assert err.value.retryable
    leftovers = [p.name for p in (tmp_path / "artifacts" / "r1").iterdir()]
    assert not [p for p in leftovers if p.endswith(".part")]


async def test_webhook_response(ctx: Any) -> None:
    out = await http_webhook_response.webhook_response({"status": 202, "body": {"ok": True}}, ctx)
    assert out == {
        "status_code": 202,
        "headers": {"Content-Type": "application/json"},
        "body": {"ok": True},
    }
    assert ctx.extras["webhook_response"] == out
    text = await http_webhook_response.webhook_response(
        {"body": "hi", "headers": {"X-A": "1"}}, ctx
    )
    assert text["headers"] == {"X-A": "1", "Content-Type": "text/plain; charset=utf-8"}
    with pytest.raises(ConnectorError, match="line breaks"):
        await http_webhook_response.webhook_response(
            {"headers": {"X-A": "1\r\nSet-Cookie: x"}}, ctx
        )
