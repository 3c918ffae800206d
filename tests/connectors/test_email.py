"""email.send against a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import base64
import email
import socket
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from connector_kit import assert_manifests, make_ctx

from flowplane.connectors.builtin import email as m
from flowplane.errors import ConnectorError, NetworkPolicyViolation


class Inbox:
    """An aiosmtpd handler that keeps messages and refuses 'nobody@' recipients."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address.startswith("nobody@"):
            return "550 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted"

    def message(self, index: int = -1) -> Message:
        return email.message_from_bytes(self.envelopes[index].content)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def ctx(tmp_path: Path, smtp: tuple[Inbox, int]) -> Any:
    return make_ctx(
        tmp_path,
        credentials={
            "SMTP": f"smtp://127.0.0.1:{smtp[1]}",
            "DOWN": f"smtp://u:pw-s3cret@127.0.0.1:{_free_port()}",
        },
    )


BASE = {
    "credential": "SMTP",
    "from": "Shop <shop@example.com>",
    "to": ["a@example.com"],
    "subject": "Your order",
}


def test_manifests() -> None:
    assert_manifests(m, minimum=1)


async def test_send_text_html_attachments(
    ctx: Any, smtp: tuple[Inbox, int], tmp_path: Path
) -> None:
    inbox, _ = smtp
    files = tmp_path / "files" / "default"
    files.mkdir(parents=True)
    (files / "report.csv").write_text("id\n1\n")
    out = await m.email_send(
        {
            **BASE,
            "to": "a@example.com, B <b@example.com>",
            "cc": ["c@example.com"],
            "bcc": "d@example.com",
            "text": "Thanks!",
            "html": "<p>Thanks!</p>",
            "headers": {"X-Campaign": "spring"},
            "attachments": [
                {"path": "report.csv"},
                {"filename": "x.bin", "content_base64": base64.b64encode(b"\x00").decode()},
            ],
        },
        ctx,
    )
    assert sorted(out["accepted"]) == [
        "a@example.com",
        "b@example.com",
        "c@example.com",
        "d@example.com",
    ]
    assert out["refused"] == {} and out["message_id"].endswith("@flowplane>")
    envelope = inbox.envelopes[-1]
    assert envelope.mail_from == "shop@example.com"
    msg = inbox.message()
    assert msg["Subject"] == "Your order" and msg["X-Campaign"] == "spring"
    assert "Bcc" not in msg and "d@example.com" not in envelope.content.decode()
    parts = {p.get_content_type(): p for p in msg.walk()}
    assert "text/html" in parts and "text/csv" in parts
    names = [p.get_filename() for p in msg.walk() if p.get_filename()]
    assert names == ["report.csv", "x.bin"]
    again = await m.email_send({**BASE, "text": "x"}, ctx)
    assert again["message_id"] == out["message_id"]  # stable per node run (dedupe on retry)


async def test_refused_recipients(ctx: Any) -> None:
    out = await m.email_send(
        {**BASE, "to": ["a@example.com", "nobody@example.com"], "text": "x"}, ctx
    )
    assert out["accepted"] == ["a@example.com"] and "nobody@example.com" in out["refused"]
    with pytest.raises(ConnectorError, match="refused") as err:
        await m.email_send({**BASE, "to": ["nobody@example.com"], "text": "x"}, ctx)
    assert not err.value.retryable


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"subject": "hi\r\nBcc: victim@example.com"}, "invalid header"),
        ({"to": ["a@example.com\r\nX: y"]}, "invalid email"),
        ({"to": ["not-an-address"]}, "invalid email"),
        ({}, "text"),
        ({"text": "x", "headers": {"To": "x@example.com"}}, "own param"),
        ({"text": "x", "attachments": [{"path": "../../etc/passwd"}]}, "'..'"),
        ({"text": "x", "attachments": [{"path": "missing.pdf"}]}, "not found"),
        ({"text": "x", "starttls": "always"}, "STARTTLS"),
    ],
)
async def test_bad_input(ctx: Any, params: dict[str, Any], message: str) -> None:
    with pytest.raises(ConnectorError, match=message) as err:
        await m.email_send({**BASE, **params}, ctx)
    assert not err.value.retryable


async def test_unreachable_and_policy(ctx: Any, tmp_path: Path) -> None:
    with pytest.raises(ConnectorError, match="unreachable") as err:
        await m.email_send({**BASE, "credential": "DOWN", "text": "x", "timeout": 2}, ctx)
    assert err.value.retryable and "pw-s3cret" not in err.value.detail
    blocked = make_ctx(tmp_path, credentials={"SMTP": "smtp://127.0.0.1:25"}, allow_hosts=[])
    with pytest.raises(NetworkPolicyViolation):
        await m.email_send({**BASE, "text": "x"}, blocked)
    bad = make_ctx(tmp_path, credentials={"SMTP": "http://mail.example.com"})
    with pytest.raises(ConnectorError, match="smtp://"):
        await m.email_send({**BASE, "text": "x"}, bad)
