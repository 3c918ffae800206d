"""nats.* and mqtt.*: NATS (127.0.0.1:4222) and Mosquitto (127.0.0.1:1883), both real."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import uuid
from pathlib import Path
from typing import Any

import aiomqtt
import nats
import pytest
from connector_kit import assert_manifests, make_ctx

from flowplane.connectors.builtin import mqtt as mqtt_connectors
from flowplane.connectors.builtin import nats as nats_connectors
from flowplane.errors import ConnectorError, NetworkPolicyViolation

NATS_URL = "nats://127.0.0.1:4222"
MQTT_URL = "mqtt://127.0.0.1:1883"


def _require(port: int) -> None:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        if os.environ.get("CI"):
            pytest.fail(f"broker on port {port} is required in CI")
        pytest.skip(f"no broker on port {port}")


@pytest.fixture
def ctx(tmp_path: Path) -> Any:
    return make_ctx(
        tmp_path,
        credentials={"NATS": NATS_URL, "MQTT": MQTT_URL, "DOWN": "nats://user:n4ts-pw@127.0.0.1:1"},
    )


def test_manifests() -> None:
    assert_manifests(nats_connectors, minimum=2)
    assert_manifests(mqtt_connectors, minimum=1)


async def test_nats_publish_and_request(ctx: Any) -> None:
    _require(4222)
    subject = f"fptest.{uuid.uuid4().hex[:8]}"
    client = await nats.connect(NATS_URL)
    received: list[Any] = []

    async def on_message(msg: Any) -> None:
        received.append(msg)
        if msg.reply:
            await msg.respond(json.dumps({"echo": json.loads(msg.data)}).encode())

    await client.subscribe(subject, cb=on_message)
    await client.flush()
    try:
        out = await nats_connectors.nats_publish(
            {
                "credential": "NATS",
                "subject": subject,
                "message": {"id": "$(id)"},
                "headers": {"X-A": "1"},
            },
            ctx,
        )
        assert out == {"ok": True, "bytes": len(json.dumps({"id": "$(id)"}))}
        for _ in range(50):
            if received:
                break
            await asyncio.sleep(0.02)
        assert json.loads(received[0].data) == {"id": "$(id)"}
        assert received[0].headers["Nats-Msg-Id"] == "r1:n:0"
        reply = await nats_connectors.nats_request(
            {"url": NATS_URL, "subject": subject, "message": [1, 2], "timeout": 2}, ctx
        )
        assert reply["reply"] == {"echo": [1, 2]}
        with pytest.raises(ConnectorError, match="no service") as err:
            await nats_connectors.nats_request(
                {"url": NATS_URL, "subject": subject + ".none", "message": "x", "timeout": 1}, ctx
            )
        assert err.value.retryable
    finally:
        await client.close()


async def test_nats_errors(ctx: Any, tmp_path: Path) -> None:
    with pytest.raises(ConnectorError, match="unreachable") as err:
        await nats_connectors.nats_publish(
            {"credential": "DOWN", "subject": "a", "message": "x", "timeout": 1}, ctx
        )
    assert err.value.retryable and "n4ts-pw" not in err.value.detail
    with pytest.raises(NetworkPolicyViolation):
        await nats_connectors.nats_publish(
            {"url": NATS_URL, "subject": "a", "message": "x"}, make_ctx(tmp_path, allow_hosts=[])
        )
    with pytest.raises(ConnectorError, match="nats://"):
        await nats_connectors.nats_publish(
            {"url": "http://127.0.0.1:4222", "subject": "a", "message": "x"}, ctx
        )
    with pytest.raises(ConnectorError, match="larger"):
        await nats_connectors.nats_publish(
            {"url": NATS_URL, "subject": "a", "message": "x" * (2 << 20)}, ctx
        )


async def test_mqtt_publish(ctx: Any) -> None:
    _require(1883)
    topic = f"fptest/{uuid.uuid4().hex[:8]}"
    async with aiomqtt.Client("127.0.0.1", 1883) as sub:
        await sub.subscribe(topic, qos=1)
        out = await mqtt_connectors.mqtt_publish(
            {
                "credential": "MQTT",
                "topic": topic,
                "message": {"level": "'; DROP TABLE x;--"},
                "qos": 1,
            },
            ctx,
        )
        assert out["ok"]
        async with asyncio.timeout(5):
            async for message in sub.messages:
                assert json.loads(bytes(message.payload)) == {"level": "'; DROP TABLE x;--"}
                break
    with pytest.raises(ConnectorError, match="MQTT publish failed") as err:
        await mqtt_connectors.mqtt_publish(
            {"url": "mqtt://127.0.0.1:1", "topic": "a", "message": "x", "timeout": 1}, ctx
        )
    assert err.value.retryable
