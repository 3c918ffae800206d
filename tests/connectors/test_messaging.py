"""Chat webhooks (slack, discord, teams, mattermost, telegram) and signed webhook.send, against
a real local HTTP server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from pathlib import Path
from typing import Any

import pytest
from connector_kit import Request, assert_manifests, json_reply, local_server, make_ctx

from flowplane.connectors.builtin import chat, webhook
from flowplane.errors import ConnectorError

BOT_TOKEN = "123456:bot-token-secret"
SIGNING = "whsec_" + base64.b64encode(b"sixteen byte key").decode()


def handler(request: Request) -> Any:
    if request.path.endswith("/fail"):
        return 400, {"Content-Type": "text/plain"}, b"invalid_payload"
    if request.path.endswith("/busy"):
        return 429, {"Retry-After": "7"}, b""
    if request.path.endswith("/slow"):
        time.sleep(0.6)
    if "/bot" in request.path:
        if request.json()["chat_id"] == "bad":
            return json_reply(400, {"ok": False, "description": "chat not found"})
        return json_reply(200, {"ok": True, "result": {"message_id": 99}})
    if request.path.startswith("/discord"):
        return 204, {}, b""
    return 200, {"Content-Type": "text/plain"}, b"ok"


@pytest.fixture
def server() -> Any:
    with local_server(handler) as srv:
        yield srv


@pytest.fixture
def ctx(tmp_path: Path, server: Any) -> Any:
    return make_ctx(
        tmp_path,
        credentials={
            "SLACK": f"{server.url}/slack/T000/B000/XXXXSECRET",
            "SLACK_FAIL": f"{server.url}/slack/fail",
            "SLACK_BUSY": f"{server.url}/slack/busy",
            "DISCORD": f"{server.url}/discord/123/SECRETTOKEN",
            "TEAMS": f"{server.url}/teams/SECRET",
            "MM": f"{server.url}/hooks/SECRET",
            "BOT": BOT_TOKEN,
            "SIGN": SIGNING,
            "HOOK_URL": f"{server.url}/partner/SECRETPATH",
        },
    )


def test_manifests() -> None:
    assert_manifests(chat, minimum=5)
    assert_manifests(webhook, minimum=1)


async def test_slack(ctx: Any, server: Any) -> None:
    out = await chat.slack_send(
        {"credential": "SLACK", "text": "hi *there*", "blocks": [{"type": "section"}]}, ctx
    )
    assert out == {"ok": True, "status_code": 200, "response": "ok"}
    assert server.requests[-1].json() == {"text": "hi *there*", "blocks": [{"type": "section"}]}
    assert "SECRET" not in str(out)
    with pytest.raises(ConnectorError, match="HTTP 400") as err:
        await chat.slack_send({"credential": "SLACK_FAIL", "text": "x"}, ctx)
    assert not err.value.retryable and "fail" not in err.value.detail
    with pytest.raises(ConnectorError, match="HTTP 429") as err:
        await chat.slack_send({"credential": "SLACK_BUSY", "text": "x"}, ctx)
    assert err.value.retryable and err.value.extra["retry_after"] == "7"
    with pytest.raises(ConnectorError, match="not available"):
        await chat.slack_send({"credential": "NOPE", "text": "x"}, ctx)


async def test_discord_teams_mattermost(ctx: Any, server: Any) -> None:
    out = await chat.discord_send({"credential": "DISCORD", "content": "@everyone deploy"}, ctx)
    assert out["status_code"] == 204 and out["response"] is None
    assert server.requests[-1].json()["allowed_mentions"] == {"parse": []}
    with pytest.raises(ConnectorError, match="content"):
        await chat.discord_send({"credential": "DISCORD"}, ctx)

    await chat.teams_send({"credential": "TEAMS", "title": "Build", "text": "green"}, ctx)
    card = server.requests[-1].json()["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert [b["text"] for b in card["content"]["body"]] == ["Build", "green"]
    custom = {"type": "AdaptiveCard", "version": "1.4", "body": []}
    await chat.teams_send({"credential": "TEAMS", "card": custom}, ctx)
    assert server.requests[-1].json()["attachments"][0]["content"] == custom
    with pytest.raises(ConnectorError):
        await chat.teams_send({"credential": "TEAMS"}, ctx)

    await chat.mattermost_send({"credential": "MM", "text": "#### Alert", "channel": "ops"}, ctx)
    assert server.requests[-1].json() == {"text": "#### Alert", "channel": "ops"}


async def test_telegram(ctx: Any, server: Any) -> None:
    out = await chat.telegram_send(
        {
            "credential": "BOT",
            "chat_id": 42,
            "text": "<b>x</b>",
            "parse_mode": "HTML",
            "api_url": server.url,
        },
        ctx,
    )
    assert out == {"ok": True, "message_id": 99, "status_code": 200}
    assert server.requests[-1].path == f"/bot{BOT_TOKEN}/sendMessage"
    with pytest.raises(ConnectorError) as err:
        await chat.telegram_send(
            {"credential": "BOT", "chat_id": "bad", "text": "x", "api_url": server.url}, ctx
        )
    assert BOT_TOKEN not in err.value.detail and BOT_TOKEN not in str(err.value.extra)


async def test_webhook_send_signed(ctx: Any, server: Any) -> None:
    payload = {"type": "order.shipped", "note": "'; DROP TABLE x;--"}
    out = await webhook.webhook_send(
        {
            "url": server.url + "/in",
            "payload": payload,
            "signing_credential": "SIGN",
            "event_type": "order.shipped",
        },
        ctx,
    )
    assert out["ok"] and out["status_code"] == 200 and out["webhook_id"].startswith("msg_")
    req = server.requests[-1]
    msg_id, ts = req.headers["webhook-id"], req.headers["webhook-timestamp"]
    assert msg_id == out["webhook_id"] and abs(int(ts) - time.time()) < 10
    key = base64.b64decode(SIGNING.removeprefix("whsec_"))
    expected = base64.b64encode(
        hmac.new(key, f"{msg_id}.{ts}.".encode() + req.body, hashlib.sha256).digest()
    ).decode()
    assert req.headers["webhook-signature"] == f"v1,{expected}"
    assert req.json() == payload and req.headers["x-event-type"] == "order.shipped"
    again = await webhook.webhook_send({"url": server.url + "/in", "payload": payload}, ctx)
    assert again["webhook_id"] == msg_id  # stable across retries of the node run
    assert "webhook-signature" not in server.requests[-1].headers
    raw = webhook.standard_webhook_signature("plain-secret", "id", 1, b"{}")
    assert (
        raw
        == "v1,"
        + base64.b64encode(hmac.new(b"plain-secret", b"id.1.{}", hashlib.sha256).digest()).decode()
    )


async def test_webhook_send_errors(ctx: Any, server: Any) -> None:
    with pytest.raises(ConnectorError, match="HTTP 400") as err:
        await webhook.webhook_send(
            {"url_credential": "HOOK_URL", "payload": {}}, ctx
        ) if False else (
            await webhook.webhook_send({"url": server.url + "/x/fail", "payload": {}}, ctx)
        )
    assert not err.value.retryable
    ok = await webhook.webhook_send({"url_credential": "HOOK_URL", "payload": {}}, ctx)
    assert "SECRETPATH" not in str(ok)
    with pytest.raises(ConnectorError, match="timed out") as err:
        await webhook.webhook_send(
            {"url": server.url + "/slow", "payload": {}, "timeout": 0.2}, ctx
        )
    assert err.value.retryable
    with pytest.raises(ConnectorError, match="give 'url'"):
        await webhook.webhook_send({"payload": {}}, ctx)
    with pytest.raises(ConnectorError):
        await webhook.webhook_send({"url": "http://10.1.2.3/x", "payload": {}}, ctx)
