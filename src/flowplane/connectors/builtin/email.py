"""``email.send``: send an email over SMTP (STARTTLS or implicit TLS), with attachments.

The SMTP server comes from a credential holding a URL such as
``smtp://user:password@mail.example.com:587`` (STARTTLS when offered) or
``smtps://user:password@mail.example.com:465`` (implicit TLS). The host is checked by the
network policy and the connection goes to the checked address; TLS still verifies the name.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import mimetypes
import smtplib
import socket
import ssl
import urllib.parse
from email.message import EmailMessage
from email.utils import formatdate, getaddresses
from typing import Any

from flowplane.connectors.base import NodeContext, connector
from flowplane.connectors.builtin._credentials import credential
from flowplane.connectors.builtin._network import check_host
from flowplane.connectors.builtin._sandbox import sandbox_path
from flowplane.connectors.builtin._schemas import CREDENTIAL_PROP, obj, out, prop
from flowplane.errors import ConnectorError
from flowplane.security.redaction import mask_values
from flowplane.timeouts import wait_for

MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024
MAX_RECIPIENTS = 500
ADDRESSES = {
    "oneOf": [
        {"type": "string", "maxLength": 320},
        {
            "type": "array",
            "items": {"type": "string", "maxLength": 320},
            "maxItems": MAX_RECIPIENTS,
        },
    ]
}


def _bad(message: str) -> ConnectorError:
    return ConnectorError(message, retryable=False)


class _PinnedSMTP(smtplib.SMTP):
    """SMTP that connects to a pre-checked address but keeps the host name for STARTTLS."""

    pinned_address = ""

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return socket.create_connection((self.pinned_address, port), timeout)


class _PinnedSMTPSSL(smtplib.SMTP_SSL):
    """Implicit-TLS SMTP to a pre-checked address, verifying the certificate for the name."""

    pinned_address = ""

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        raw = socket.create_connection((self.pinned_address, port), timeout)
        return self.context.wrap_socket(raw, server_hostname=host)


def _addresses(value: Any) -> list[str]:
    items = [value] if isinstance(value, str) else list(value or [])
    result = []
    for item in items:
        for part in str(item).split(","):
            part = part.strip()
            if part:
                if "\r" in part or "\n" in part or "@" not in part:
                    raise _bad(f"invalid email address {part[:100]!r}")
                result.append(part)
    return result


def _attachment(ctx: NodeContext, spec: dict[str, Any]) -> tuple[str, bytes, str]:
    if spec.get("path"):
        path = sandbox_path(ctx, spec["path"])
        if not path.is_file():
            raise _bad(f"attachment {spec['path']!r} not found in the file folder")
        data = path.read_bytes()
        name = spec.get("filename") or path.name
    else:
        try:
            data = base64.b64decode(spec.get("content_base64", ""), validate=True)
        except binascii.Error as exc:
            raise _bad("attachment content_base64 is not valid base64") from exc
        name = spec.get("filename") or "attachment.bin"
    if len(data) > MAX_ATTACHMENT_BYTES:
        raise _bad(f"attachment {name!r} is larger than {MAX_ATTACHMENT_BYTES} bytes")
    ctype = (
        spec.get("content_type") or mimetypes.guess_type(name)[0] or ("application/octet-stream")
    )
    return name, data, ctype


def build_message(params: dict[str, Any], ctx: NodeContext) -> EmailMessage:
    """Build the MIME message from the connector's params (headers checked for injection)."""
    msg = EmailMessage()
    try:
        msg["From"] = params["from"]
        msg["To"] = ", ".join(_addresses(params["to"]))
        if params.get("cc"):
            msg["Cc"] = ", ".join(_addresses(params["cc"]))
        if params.get("reply_to"):
            msg["Reply-To"] = params["reply_to"]
        msg["Subject"] = params["subject"]
        msg["Date"] = formatdate(localtime=False)
        digest = hashlib.sha256(ctx.idempotency_key.encode()).hexdigest()[:32]
        msg["Message-ID"] = f"<{digest}@flowplane>"
        for name, value in (params.get("headers") or {}).items():
            if name.lower() in ("from", "to", "cc", "bcc", "subject", "message-id"):
                raise _bad(f"header {name!r} must be set through its own param")
            msg[name] = value
    except (ValueError, TypeError) as exc:  # the email package refuses CR/LF in headers
        raise _bad(f"invalid header: {exc}") from exc
    if not params.get("text") and not params.get("html"):
        raise _bad("give 'text' and/or 'html'")
    msg.set_content(params.get("text") or "This message is in HTML.")
    if params.get("html"):
        msg.add_alternative(params["html"], subtype="html")
    for spec in params.get("attachments") or []:
        name, data, ctype = _attachment(ctx, spec)
        maintype, _, subtype = ctype.partition("/")
        msg.add_attachment(
            data, maintype=maintype, subtype=subtype or "octet-stream", filename=name
        )
    return msg


def _send(
    url: str, address: str, msg: EmailMessage, recipients: list[str], timeout: float, starttls: str
) -> dict[str, Any]:
    parts = urllib.parse.urlsplit(url)
    host, secure = parts.hostname or "", parts.scheme == "smtps"
    port = parts.port or (465 if secure else 25)
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if secure:
        client = _PinnedSMTPSSL(timeout=timeout, context=context)
    else:
        client = _PinnedSMTP(timeout=timeout)
    client.pinned_address = address
    try:
        client.connect(host, port)
        client.ehlo()
        if not secure and starttls != "never":
            if client.has_extn("starttls"):
                client.starttls(context=context)
                client.ehlo()
            elif starttls == "always":
                raise _bad("the SMTP server does not offer STARTTLS")
        if parts.username:
            client.login(
                urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password or "")
            )
        refused = client.send_message(msg, to_addrs=recipients)
        return {"refused": {k: v[1].decode(errors="replace") for k, v in refused.items()}}
    finally:
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()


@connector(
    "email.send",
    name="Send email",
    category="messaging",
    description="Send an email (text and/or HTML, attachments) through an SMTP server.",
    input_schema=obj(
        {
            "credential": {
                **CREDENTIAL_PROP,
                "description": "Credential holding the SMTP URL: "
                "smtp://user:pw@host:587 (STARTTLS) or smtps://user:pw@host:465.",
            },
            "from": prop("string", "Sender, e.g. 'Shop <shop@example.com>'.", maxLength=320),
            "to": {**ADDRESSES, "description": "Recipient(s)."},
            "cc": {**ADDRESSES, "description": "Copy recipient(s)."},
            "bcc": {**ADDRESSES, "description": "Hidden recipient(s)."},
            "reply_to": prop("string", "Reply-To address.", maxLength=320),
            "subject": prop("string", "Subject line.", maxLength=998),
            "text": prop("string", "Plain-text body.", maxLength=5_000_000),
            "html": prop("string", "HTML body.", maxLength=5_000_000),
            "headers": prop("object", "Extra headers.", additionalProperties={"type": "string"}),
            "attachments": prop(
                "array",
                "Files: {path} from the file folder, or {filename, content_base64}.",
                maxItems=20,
                items=obj(
                    {
                        "path": prop("string", "Path in the file folder.", maxLength=1024),
                        "filename": prop("string", "Name shown.", maxLength=255),
                        "content_base64": prop("string", "Inline content."),
                        "content_type": prop("string", "MIME type.", maxLength=255),
                    }
                ),
            ),
            "starttls": prop(
                "string",
                "auto: upgrade when offered; always: require; never.",
                enum=["auto", "always", "never"],
                default="auto",
            ),
            "timeout": prop(
                "number", "Time limit in seconds.", exclusiveMinimum=0, maximum=300, default=30
            ),
        },
        ["credential", "from", "to", "subject"],
    ),
    output_schema=out(
        {
            "message_id": prop("string", "Message-ID (stable per node run)."),
            "accepted": prop("array", "Recipients the server accepted."),
            "refused": prop("object", "Refused recipients with the reason."),
        }
    ),
    secrets=["credential"],
    examples=[
        {
            "credential": "SMTP_URL",
            "from": "Shop <shop@example.com>",
            "to": ["{{ input.email }}"],
            "subject": "Your order {{ input.order_id }}",
            "text": "Thanks for your order!",
            "html": "<p>Thanks for your order!</p>",
        }
    ],
)
async def email_send(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Send the email."""
    url = credential(ctx, params["credential"])
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise _bad("the SMTP credential must be a URL like smtp://user:pw@host:587")
    try:
        port = parts.port or (465 if parts.scheme == "smtps" else 25)
    except ValueError as exc:
        raise _bad("the SMTP URL has an invalid port") from exc
    msg = build_message(params, ctx)
    listed = _addresses(params["to"]) + _addresses(params.get("cc"))
    listed += _addresses(params.get("bcc"))
    recipients = [addr for _name, addr in getaddresses(listed) if addr]
    if len(recipients) > MAX_RECIPIENTS:
        raise _bad(f"more than {MAX_RECIPIENTS} recipients")
    addresses = await check_host(ctx, parts.hostname, port)
    timeout = float(params.get("timeout", 30))
    secrets = [url, parts.password]
    ctx.check_cancelled()
    try:
        result = await wait_for(
            asyncio.to_thread(
                _send, url, addresses[0], msg, recipients, timeout, params.get("starttls", "auto")
            ),
            timeout + 5,
        )
    except ConnectorError:
        raise
    except smtplib.SMTPRecipientsRefused as exc:
        raise _bad(f"every recipient was refused: {list(exc.recipients)}"[:500]) from None
    except smtplib.SMTPAuthenticationError:
        raise _bad("SMTP authentication failed") from None
    except smtplib.SMTPResponseException as exc:
        raw = exc.smtp_error
        text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
        reason = mask_values(text, secrets)[:300]
        raise ConnectorError(
            f"SMTP error {exc.smtp_code}: {reason}", retryable=400 <= exc.smtp_code < 500
        ) from None
    except (TimeoutError, smtplib.SMTPServerDisconnected, OSError) as exc:
        raise ConnectorError(
            mask_values(f"SMTP server unreachable: {type(exc).__name__}", secrets), retryable=True
        ) from None
    except smtplib.SMTPException as exc:
        raise ConnectorError(
            mask_values(f"SMTP error: {exc}", secrets)[:500], retryable=True
        ) from None
    accepted = [r for r in recipients if r not in result["refused"]]
    ctx.logger.info(f"email sent to {len(accepted)} recipient(s)")
    return {"message_id": msg["Message-ID"], "accepted": accepted, "refused": result["refused"]}
