"""Chat connectors: ``slack.*``, ``discord.*``, ``teams.*``, ``mattermost.*``, ``telegram.*``.

Webhook URLs of Slack, Discord, Teams and Mattermost are secrets (whoever has one can
post): they are read from credentials and never appear in outputs or error messages.
"""

from __future__ import annotations

from typing import Any

from flowplane.connectors.base import NodeContext, connector
from flowplane.connectors.builtin._credentials import credential
from flowplane.connectors.builtin._http_calls import HttpResult, http_call, status_error
from flowplane.connectors.builtin._schemas import CREDENTIAL_PROP, obj, out, prop
from flowplane.errors import ConnectorError

CATEGORY = "messaging"
TIMEOUT = prop(
    "number", "Request time limit in seconds.", exclusiveMinimum=0, maximum=300, default=30
)
WEBHOOK_CREDENTIAL = {
    **CREDENTIAL_PROP,
    "description": "Credential holding the incoming-webhook URL.",
}
SENT_OUT = out(
    {
        "ok": prop("boolean", "True when the service accepted the message."),
        "status_code": prop("integer", "HTTP status."),
        "response": prop(None, "The service's response body, when it has one."),
    }
)


def _bad(message: str) -> ConnectorError:
    return ConnectorError(message, retryable=False)


async def _post(
    ctx: NodeContext,
    url: str,
    payload: Any,
    label: str,
    timeout: float,
    secrets: list[str],
    headers: dict[str, str] | None = None,
) -> HttpResult:
    result = await http_call(
        ctx,
        "POST",
        url,
        label=label,
        timeout=timeout,
        secrets=secrets,
        json=payload,
        headers=headers or {},
    )
    if result.status >= 300:
        raise status_error(result, label, secrets)
    return result


def _sent(result: HttpResult) -> dict[str, Any]:
    body: Any = result.json if result.is_json else (result.text[:2000] or None)
    return {"ok": True, "status_code": result.status, "response": body}


def _webhook_url(ctx: NodeContext, params: dict[str, Any]) -> tuple[str, list[str]]:
    url = credential(ctx, params["credential"])
    return url, [url]


@connector(
    "slack.send",
    name="Slack message",
    category=CATEGORY,
    description="Post a message (text and optional Block Kit blocks) to a Slack incoming webhook.",
    input_schema=obj(
        {
            "credential": WEBHOOK_CREDENTIAL,
            "text": prop(
                "string",
                "Message text (mrkdwn); the fallback when blocks are given.",
                minLength=1,
                maxLength=40_000,
            ),
            "blocks": prop("array", "Block Kit blocks.", items={"type": "object"}, maxItems=50),
            "thread_ts": prop("string", "Reply in this thread.", maxLength=64),
            "timeout": TIMEOUT,
        },
        ["credential", "text"],
    ),
    output_schema=SENT_OUT,
    secrets=["credential"],
    examples=[{"credential": "SLACK_WEBHOOK_URL", "text": "Order *{{ input.order_id }}* shipped"}],
)
async def slack_send(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Post to Slack."""
    url, secrets = _webhook_url(ctx, params)
    payload: dict[str, Any] = {"text": params["text"]}
    for key in ("blocks", "thread_ts"):
        if params.get(key):
            payload[key] = params[key]
    result = await _post(
        ctx, url, payload, "Slack webhook", float(params.get("timeout", 30)), secrets
    )
    return _sent(result)


@connector(
    "discord.send",
    name="Discord message",
    category=CATEGORY,
    description="Post a message (content and optional embeds) to a Discord channel webhook.",
    input_schema=obj(
        {
            "credential": WEBHOOK_CREDENTIAL,
            "content": prop("string", "Message text (Discord markdown).", maxLength=2000),
            "embeds": prop("array", "Rich embeds.", items={"type": "object"}, maxItems=10),
            "username": prop("string", "Override the webhook's name.", maxLength=80),
            "avatar_url": prop("string", "Override the webhook's avatar.", maxLength=2048),
            "timeout": TIMEOUT,
        },
        ["credential"],
    ),
    output_schema=SENT_OUT,
    secrets=["credential"],
    examples=[{"credential": "DISCORD_WEBHOOK_URL", "content": "Deploy finished :rocket:"}],
)
async def discord_send(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Post to Discord."""
    if not params.get("content") and not params.get("embeds"):
        raise _bad("give 'content' or 'embeds'")
    url, secrets = _webhook_url(ctx, params)
    payload = {
        k: params[k] for k in ("content", "embeds", "username", "avatar_url") if params.get(k)
    }
    payload["allowed_mentions"] = {"parse": []}  # no @everyone pings from workflow data
    result = await _post(
        ctx, url, payload, "Discord webhook", float(params.get("timeout", 30)), secrets
    )
    return _sent(result)


@connector(
    "teams.send",
    name="Microsoft Teams message",
    category=CATEGORY,
    description="Post an Adaptive Card (built from title/text, or given) to a Teams webhook.",
    input_schema=obj(
        {
            "credential": WEBHOOK_CREDENTIAL,
            "title": prop("string", "Bold title line.", maxLength=500),
            "text": prop("string", "Message text (Markdown subset).", maxLength=20_000),
            "card": prop("object", "A full Adaptive Card instead of title/text."),
            "timeout": TIMEOUT,
        },
        ["credential"],
    ),
    output_schema=SENT_OUT,
    secrets=["credential"],
    examples=[
        {
            "credential": "TEAMS_WEBHOOK_URL",
            "title": "Nightly build",
            "text": "All 312 tests passed.",
        }
    ],
)
async def teams_send(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Post to Microsoft Teams."""
    card = params.get("card")
    if card is None:
        if not params.get("text") and not params.get("title"):
            raise _bad("give 'text', 'title' or 'card'")
        body: list[dict[str, Any]] = []
        if params.get("title"):
            body.append(
                {
                    "type": "TextBlock",
                    "text": params["title"],
                    "weight": "Bolder",
                    "size": "Medium",
                    "wrap": True,
                }
            )
        if params.get("text"):
            body.append({"type": "TextBlock", "text": params["text"], "wrap": True})
        card = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": body,
        }
    payload = {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        ],
    }
    url, secrets = _webhook_url(ctx, params)
    result = await _post(
        ctx, url, payload, "Teams webhook", float(params.get("timeout", 30)), secrets
    )
    return _sent(result)


@connector(
    "mattermost.send",
    name="Mattermost message",
    category=CATEGORY,
    description="Post a message to a Mattermost incoming webhook.",
    input_schema=obj(
        {
            "credential": WEBHOOK_CREDENTIAL,
            "text": prop("string", "Message text (Markdown).", minLength=1, maxLength=16_000),
            "channel": prop("string", "Override the channel.", maxLength=64),
            "username": prop("string", "Override the user name.", maxLength=64),
            "icon_url": prop("string", "Override the icon.", maxLength=2048),
            "props": prop("object", "Extra message props (e.g. card)."),
            "timeout": TIMEOUT,
        },
        ["credential", "text"],
    ),
    output_schema=SENT_OUT,
    secrets=["credential"],
    examples=[
        {
            "credential": "MATTERMOST_WEBHOOK_URL",
            "text": "#### Alert\nDisk at 91%",
            "channel": "ops",
        }
    ],
)
async def mattermost_send(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Post to Mattermost."""
    url, secrets = _webhook_url(ctx, params)
    payload = {
        k: params[k] for k in ("text", "channel", "username", "icon_url", "props") if params.get(k)
    }
    result = await _post(
        ctx, url, payload, "Mattermost webhook", float(params.get("timeout", 30)), secrets
    )
    return _sent(result)


@connector(
    "telegram.send",
    name="Telegram message",
    category=CATEGORY,
    description="Send a text message to a Telegram chat through the Bot API.",
    input_schema=obj(
        {
            "credential": {**CREDENTIAL_PROP, "description": "Credential holding the bot token."},
            "chat_id": prop(["string", "integer"], "Chat id or @channelusername."),
            "text": prop("string", "Message text.", minLength=1, maxLength=4096),
            "parse_mode": prop("string", "Formatting.", enum=["MarkdownV2", "HTML", "Markdown"]),
            "disable_notification": prop("boolean", "Send silently.", default=False),
            "api_url": prop(
                "string", "Bot API base URL.", default="https://api.telegram.org", maxLength=2048
            ),
            "timeout": TIMEOUT,
        },
        ["credential", "chat_id", "text"],
    ),
    output_schema=out(
        {
            "ok": prop("boolean", "True when sent."),
            "message_id": prop(["integer", "null"], "Telegram message id."),
            "status_code": prop("integer", "HTTP status."),
        }
    ),
    secrets=["credential"],
    examples=[
        {
            "credential": "TELEGRAM_BOT_TOKEN",
            "chat_id": "-1001234567890",
            "text": "Build <b>green</b>",
            "parse_mode": "HTML",
        }
    ],
)
async def telegram_send(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Call the Bot API ``sendMessage`` method."""
    token = credential(ctx, params["credential"])
    base = params.get("api_url", "https://api.telegram.org").rstrip("/")
    payload = {
        k: params[k]
        for k in ("chat_id", "text", "parse_mode", "disable_notification")
        if k in params
    }
    result = await http_call(
        ctx,
        "POST",
        f"{base}/bot{token}/sendMessage",
        label="Telegram API",
        timeout=float(params.get("timeout", 30)),
        secrets=[token],
        json=payload,
    )
    if result.status >= 300 or not (isinstance(result.json, dict) and result.json.get("ok")):
        raise status_error(result, "Telegram API", [token])
    message = result.json.get("result") or {}
    return {"ok": True, "message_id": message.get("message_id"), "status_code": result.status}
