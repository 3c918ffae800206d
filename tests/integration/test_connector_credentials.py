"""Each connector with a credential parameter resolves it in a real run.

``slack.send {"credential": "SLACK_URL"}`` used to fail with "credential 'SLACK_URL' is not
available" unless the node also named ``secrets.SLACK_URL`` in a template. Here every such
connector runs through the HTTP API with one embedded worker, the credential stored through
``/v1/credentials`` (sealed with a master key), against a real local peer: the peer must
have received the secret, and the secret must appear nowhere in what the API then shows of
the run (detail with outputs, events, logs). On SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import http.server
import json
import secrets
import socket
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiomqtt
import nats
import pytest
import redis
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from api_support import ApiHarness, started
from http_peer import http_server
from runs_support import free_port

from flowplane.security.crypto import generate_key
from flowplane.security.webhooks import verify

KEY = generate_key()


# --- real local peers ----------------------------------------------------------------------


@dataclass
class Seen:
    """What the local HTTP peer received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Recorder:
    port: int
    seen: list[Seen] = field(default_factory=list)

    def one(self) -> Seen:
        assert len(self.seen) >= 1, "the peer received nothing"
        return self.seen[-1]


def _handler(recorder: Recorder) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            recorder.seen.append(
                Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            if self.path.endswith("/chat/completions"):
                answer: dict[str, Any] = {
                    "id": "c1",
                    "model": "m",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "hi"},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                }
            elif "/sendMessage" in self.path:
                answer = {"ok": True, "result": {"message_id": 7}}
            else:
                answer = {"ok": True, "data": {"hello": "world"}}
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = _answer

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def peer() -> Iterator[Recorder]:
    recorder = Recorder(port=0)
    with http_server(_handler(recorder)) as port:
        recorder.port = port
        yield recorder


class Mailbox:
    """An aiosmtpd handler and authenticator that keep what they saw."""

    def __init__(self) -> None:
        self.logins: list[tuple[str, str]] = []
        self.messages: list[bytes] = []

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        return "250 Message accepted"


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    box, port = Mailbox(), free_port()
    controller = Controller(
        box, hostname="127.0.0.1", port=port, authenticator=box, auth_require_tls=False
    )
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()


def _up(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def need(port: int, what: str) -> None:
    if not _up(port):
        pytest.skip(f"{what} is not running on 127.0.0.1:{port}")


# --- the app -----------------------------------------------------------------------------------


@pytest.fixture
async def api(db: tuple[str, str], tmp_path: Path) -> AsyncIterator[ApiHarness]:
    async with started(
        db,
        tmp_path / "root",
        workers=1,
        secret_key=KEY,
        allow_hosts=["127.0.0.1"],
        enable_shell=True,
    ) as harness:
        yield harness


async def store(api: ApiHarness, name: str, value: str) -> None:
    r = await api.client.post("/v1/credentials", json={"name": name, "value": value})
    assert r.status_code == 201, r.text
    assert value not in r.text


async def run_node(api: ApiHarness, node: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Run a one-node workflow; return the finished node and everything the API shows."""
    doc = {"name": f"cred-{uuid.uuid4().hex[:8]}", "nodes": [{"id": "n", **node}]}
    wf = await api.client.post("/v1/workflows", json=doc)
    assert wf.status_code == 201, wf.text
    r = await api.client.post("/v1/runs", json={"workflowId": wf.json()["id"], "input": {}})
    assert r.status_code == 200, r.text
    run_id = r.json()["runId"]
    deadline = time.monotonic() + 30
    while True:
        run = (await api.client.get(f"/v1/runs/{run_id}")).json()
        if run["status"] in ("finished", "failed", "cancelled", "timed_out"):
            break
        assert time.monotonic() < deadline, run
        await asyncio.sleep(0.1)
    (node_view,) = run["nodes"]
    assert run["status"] == "finished", node_view.get("error") or run
    shown = "\n".join(
        [
            json.dumps(run),
            (await api.client.get(f"/v1/runs/{run_id}/events")).text,
            (await api.client.get(f"/v1/runs/{run_id}/logs")).text,
            (await api.client.get(f"/v1/runs/{run_id}/nodes/n")).text,
        ]
    )
    return node_view, shown


def token(label: str) -> str:
    return f"{label}-{secrets.token_hex(12)}"


def assert_hidden(shown: str, *values: str) -> None:
    for value in values:
        assert value not in shown, f"{value!r} leaked into the run's outputs/events/logs"


# --- one test per connector with a credential parameter ----------------------------------------


@pytest.mark.parametrize(
    ("type_", "extra"),
    [
        ("slack.send", {"text": "hi"}),
        ("discord.send", {"content": "hi"}),
        ("teams.send", {"text": "hi"}),
        ("mattermost.send", {"text": "hi"}),
    ],
)
async def test_chat_webhook_url_credential(
    api: ApiHarness, peer: Recorder, type_: str, extra: dict[str, Any]
) -> None:
    secret_path = f"/services/T0/B0/{token('hook')}"
    url = f"http://127.0.0.1:{peer.port}{secret_path}"
    await store(api, "CHAT_URL", url)
    node, shown = await run_node(
        api, {"type": type_, "params": {"credential": "CHAT_URL", **extra}}
    )
    assert node["output"]["ok"] is True
    assert peer.one().path == secret_path and peer.one().method == "POST"
    assert_hidden(shown, url, secret_path.rsplit("/", 1)[-1])


async def test_telegram_token_credential(api: ApiHarness, peer: Recorder) -> None:
    bot = token("123456:bot")
    await store(api, "TG_TOKEN", bot)
    params = {
        "credential": "TG_TOKEN",
        "chat_id": "42",
        "text": "hi",
        "api_url": f"http://127.0.0.1:{peer.port}",
    }
    node, shown = await run_node(api, {"type": "telegram.send", "params": params})
    assert node["output"]["message_id"] == 7
    assert peer.one().path == f"/bot{bot}/sendMessage"
    assert_hidden(shown, bot)


async def test_webhook_send_url_and_signing_credentials(api: ApiHarness, peer: Recorder) -> None:
    secret_path = f"/in/{token('partner')}"
    signing = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    await store(api, "PARTNER_URL", f"http://127.0.0.1:{peer.port}{secret_path}")
    await store(api, "PARTNER_SIGNING", signing)
    params = {
        "url_credential": "PARTNER_URL",
        "signing_credential": "PARTNER_SIGNING",
        "payload": {"order": 1},
    }
    node, shown = await run_node(api, {"type": "webhook.send", "params": params})
    assert node["output"]["ok"] is True
    seen = peer.one()
    assert seen.path == secret_path
    # The signature verifies with the stored signing secret: the connector used it.
    assert verify("standard", signing, seen.body, seen.headers).delivery_id
    assert_hidden(shown, secret_path, signing)


@pytest.mark.parametrize("type_", ["http.graphql", "http.download"])
async def test_http_bearer_credential(api: ApiHarness, peer: Recorder, type_: str) -> None:
    bearer = token("gql")
    await store(api, "API_TOKEN", bearer)
    params: dict[str, Any] = {
        "url": f"http://127.0.0.1:{peer.port}/graphql",
        "credential": "API_TOKEN",
    }
    if type_ == "http.graphql":
        params["query"] = "{ hello }"
    _node, shown = await run_node(api, {"type": type_, "params": params})
    assert peer.one().headers["authorization"] == f"Bearer {bearer}"
    assert_hidden(shown, bearer)


async def test_ai_chat_api_key_credential(api: ApiHarness, peer: Recorder) -> None:
    api_key = token("sk")
    await store(api, "OPENAI_API_KEY", api_key)
    params = {
        "credential": "OPENAI_API_KEY",
        "model": "m",
        "prompt": "hello",
        "base_url": f"http://127.0.0.1:{peer.port}/v1",
    }
    node, shown = await run_node(api, {"type": "ai.chat", "params": params})
    assert "hi" in json.dumps(node["output"])
    assert peer.one().headers["authorization"] == f"Bearer {api_key}"
    assert_hidden(shown, api_key)


async def test_email_smtp_url_credential(api: ApiHarness, smtp: tuple[Mailbox, int]) -> None:
    box, port = smtp
    password = token("pw")
    await store(api, "SMTP_URL", f"smtp://mailer:{password}@127.0.0.1:{port}")
    params = {
        "credential": "SMTP_URL",
        "from": "shop@example.com",
        "to": ["a@example.com"],
        "subject": "hello",
        "text": "body",
        "starttls": "never",
    }
    node, shown = await run_node(api, {"type": "email.send", "params": params})
    assert box.logins == [("mailer", password)] and len(box.messages) == 1
    assert node["output"]["accepted"] == ["a@example.com"]
    assert_hidden(shown, password)


async def test_sql_database_url_credential(api: ApiHarness, tmp_path: Path) -> None:
    path = tmp_path / f"{token('db')}.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (x TEXT)")
        conn.execute("INSERT INTO t VALUES ('from-the-credential-db')")
    conn.close()
    await store(api, "ORDERS_DB", f"sqlite:///{path}")
    params = {"credential": "ORDERS_DB", "sql": "SELECT x FROM t"}
    node, shown = await run_node(api, {"type": "sql.query", "params": params})
    assert node["output"]["rows"] == [{"x": "from-the-credential-db"}]
    assert_hidden(shown, str(path))


async def test_redis_url_credential(api: ApiHarness) -> None:
    need(6379, "Redis")
    key = f"fp-cred-{uuid.uuid4().hex}"
    # The database number in the URL is only known through the credential.
    await store(api, "CACHE_URL", "redis://127.0.0.1:6379/7")
    params = {"credential": "CACHE_URL", "key": key, "value": "v1"}
    await run_node(api, {"type": "redis.set", "params": params})
    client = redis.Redis(host="127.0.0.1", port=6379, db=7)
    try:
        assert client.get(key) == b'"v1"' or client.get(key) == b"v1"
    finally:
        client.delete(key)
        client.close()


async def test_nats_url_credential(api: ApiHarness) -> None:
    need(4222, "NATS")
    subject = f"fp.cred.{uuid.uuid4().hex}"
    got: list[bytes] = []
    conn = await nats.connect("nats://127.0.0.1:4222")
    try:

        async def on_message(msg: Any) -> None:
            got.append(msg.data)

        await conn.subscribe(subject, cb=on_message)
        await conn.flush()
        await store(api, "BUS_URL", "nats://127.0.0.1:4222")
        params = {"credential": "BUS_URL", "subject": subject, "message": "hello"}
        await run_node(api, {"type": "nats.publish", "params": params})
        for _ in range(50):
            if got:
                break
            await asyncio.sleep(0.05)
        assert got == [b"hello"]
    finally:
        await conn.close()


async def test_mqtt_url_credential(api: ApiHarness) -> None:
    need(1883, "an MQTT broker")
    topic = f"fp/cred/{uuid.uuid4().hex}"
    async with aiomqtt.Client("127.0.0.1", 1883) as sub:
        await sub.subscribe(topic, qos=1)
        await store(api, "MQTT_URL", "mqtt://127.0.0.1:1883")
        params = {"credential": "MQTT_URL", "topic": topic, "message": "hello", "qos": 1}
        await run_node(api, {"type": "mqtt.publish", "params": params})
        async with asyncio.timeout(5):
            message = await anext(aiter(sub.messages))
        assert message.payload == b"hello"


@pytest.mark.parametrize("type_", ["data.hmac", "data.hmac_verify"])
async def test_hmac_key_credential(api: ApiHarness, type_: str) -> None:
    key = token("hmac")
    await store(api, "SIGNING_KEY", key)
    expected = hmac.new(key.encode(), b"payload", hashlib.sha256).hexdigest()
    params: dict[str, Any] = {"credential": "SIGNING_KEY", "data": "payload"}
    if type_ == "data.hmac_verify":
        params["signature"] = expected
    node, shown = await run_node(api, {"type": type_, "params": params})
    if type_ == "data.hmac":
        assert node["output"]["signature"] == expected
    else:
        assert node["output"]["valid"] is True
    assert_hidden(shown, key)


async def test_shell_env_credentials(api: ApiHarness) -> None:
    value = token("shell")
    await store(api, "DEPLOY_TOKEN", value)
    params = {
        "command": ["sh", "-c", 'printf %s "$TOKEN" | sha256sum'],
        "env_credentials": {"TOKEN": "DEPLOY_TOKEN"},
    }
    node, shown = await run_node(api, {"type": "system.shell", "params": params})
    assert hashlib.sha256(value.encode()).hexdigest() in json.dumps(node["output"])
    assert_hidden(shown, value)


async def test_templated_credential_names_are_not_resolved(api: ApiHarness, peer: Recorder) -> None:
    """Which credential a node uses is fixed by the workflow, not chosen by run input."""
    await store(api, "CHAT_URL", f"http://127.0.0.1:{peer.port}/hook/{token('x')}")
    doc = {
        "name": "chosen-by-input",
        "nodes": [
            {
                "id": "n",
                "type": "slack.send",
                "params": {"credential": "{{ input.which }}", "text": "hi"},
            }
        ],
    }
    wf = await api.client.post("/v1/workflows", json=doc)
    assert wf.status_code == 201, wf.text
    r = await api.client.post(
        "/v1/runs", json={"workflowId": wf.json()["id"], "input": {"which": "CHAT_URL"}}
    )
    run_id = r.json()["runId"]
    deadline = time.monotonic() + 20
    while (run := (await api.client.get(f"/v1/runs/{run_id}")).json())["status"] not in (
        "finished",
        "failed",
    ):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    assert run["status"] == "failed" and "not available" in json.dumps(run)
    assert peer.seen == []
