"""data_crypto: UUIDs, hashes, HMAC, base64, tokens; secrets never leak."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from pathlib import Path
from typing import Any

import pytest
from connector_kit import assert_manifests, make_ctx

from flowplane.connectors.builtin import data_crypto as m
from flowplane.errors import ConnectorError

SECRET = "s3cr3t-signing-key"


@pytest.fixture
def ctx(tmp_path: Path) -> Any:
    return make_ctx(tmp_path, credentials={"KEY": SECRET})


def test_manifests() -> None:
    assert_manifests(m, minimum=7)


async def test_uuid(ctx: Any) -> None:
    out = await m.make_uuid({"count": 3}, ctx)
    assert len(set(out["uuids"])) == 3 and uuid.UUID(out["uuid"]).version == 4
    v5 = await m.make_uuid({"version": 5, "name": "x"}, ctx)
    assert v5["uuid"] == str(uuid.uuid5(uuid.NAMESPACE_URL, "x"))
    with pytest.raises(ConnectorError):
        await m.make_uuid({"version": 5}, ctx)
    with pytest.raises(ConnectorError):
        await m.make_uuid({"version": 5, "name": "x", "namespace": "bogus"}, ctx)


@pytest.mark.parametrize("algorithm", ["sha256", "sha1", "md5", "sha512"])
async def test_hash(ctx: Any, algorithm: str) -> None:
    out = await m.hash_data({"data": "hello", "algorithm": algorithm}, ctx)
    assert out["digest"] == hashlib.new(algorithm, b"hello").hexdigest()


async def test_hash_encodings(ctx: Any) -> None:
    b64 = await m.hash_data(
        {
            "data": base64.b64encode(b"\x00\xff").decode(),
            "input_encoding": "base64",
            "encoding": "base64",
        },
        ctx,
    )
    assert b64["digest"] == base64.b64encode(hashlib.sha256(b"\x00\xff").digest()).decode()
    with pytest.raises(ConnectorError):
        await m.hash_data({"data": "zz", "input_encoding": "hex"}, ctx)


async def test_hmac_sign_and_verify(ctx: Any) -> None:
    expected = hmac.new(SECRET.encode(), b"payload", hashlib.sha256).hexdigest()
    out = await m.hmac_sign({"data": "payload", "credential": "KEY"}, ctx)
    assert out == {"signature": expected}
    assert SECRET not in str(out)
    ok = await m.hmac_verify(
        {"data": "payload", "credential": "KEY", "signature": f"sha256={expected.upper()}"}, ctx
    )
    assert ok == {"valid": True}
    bad = await m.hmac_verify({"data": "payload!", "credential": "KEY", "signature": expected}, ctx)
    assert bad == {"valid": False}
    direct = await m.hmac_sign({"data": "payload", "key": SECRET}, ctx)
    assert direct == out
    with pytest.raises(ConnectorError) as err:
        await m.hmac_sign({"data": "x", "credential": "MISSING"}, ctx)
    assert "MISSING" in err.value.detail and not err.value.retryable
    with pytest.raises(ConnectorError):
        await m.hmac_sign({"data": "x"}, ctx)


async def test_base64(ctx: Any) -> None:
    enc = await m.base64_encode({"data": "hello world?>"}, ctx)
    assert enc == {"text": "aGVsbG8gd29ybGQ/Pg=="}
    url = await m.base64_encode({"data": "hello world?>", "url_safe": True}, ctx)
    assert url == {"text": "aGVsbG8gd29ybGQ_Pg"}
    for text in (enc["text"], url["text"]):
        assert (await m.base64_decode({"text": text}, ctx)) == {"data": "hello world?>", "size": 13}
    assert (await m.base64_decode({"text": "AP8=", "output": "hex"}, ctx)) == {
        "data": "00ff",
        "size": 2,
    }
    with pytest.raises(ConnectorError, match="UTF-8"):
        await m.base64_decode({"text": "AP8="}, ctx)
    with pytest.raises(ConnectorError, match="base64"):
        await m.base64_decode({"text": "@@@"}, ctx)


async def test_random_token(ctx: Any) -> None:
    a = await m.random_token({"bytes": 16, "format": "hex"}, ctx)
    b = await m.random_token({"bytes": 16, "format": "hex"}, ctx)
    assert len(a["token"]) == 32 and a != b
    digits = await m.random_token({"bytes": 6, "format": "digits"}, ctx)
    assert digits["token"].isdigit() and len(digits["token"]) == 6
