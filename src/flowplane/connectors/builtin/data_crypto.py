"""Crypto connectors: UUIDs, hashes, HMAC signing and verification, base64, random tokens."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import uuid
from typing import Any

from flowplane.connectors.base import NodeContext, connector
from flowplane.connectors.builtin._credentials import credential
from flowplane.connectors.builtin._schemas import CREDENTIAL_PROP, obj, out, prop
from flowplane.errors import ConnectorError

ALGORITHMS = ("sha256", "sha512", "sha1", "md5", "sha384", "sha3_256", "blake2b")
ENCODINGS = ("hex", "base64", "base64url")
MAX_DATA_CHARS = 10_000_000

DATA = prop(
    "string", "The data (text, or base64 with input_encoding=base64).", maxLength=MAX_DATA_CHARS
)
INPUT_ENCODING = prop(
    "string", "How 'data' is encoded.", enum=["utf8", "base64", "hex"], default="utf8"
)
OUTPUT_ENCODING = prop("string", "Digest encoding.", enum=list(ENCODINGS), default="hex")


def _bad(message: str) -> ConnectorError:
    return ConnectorError(message, retryable=False)


def decode_input(data: str, encoding: str) -> bytes:
    """Return the bytes of ``data`` in ``encoding`` (utf8, base64 or hex)."""
    try:
        if encoding == "base64":
            return base64.b64decode(data, validate=True)
        if encoding == "hex":
            return bytes.fromhex(data)
    except (binascii.Error, ValueError) as exc:
        raise _bad(f"data is not valid {encoding}") from exc
    return data.encode()


def encode_output(raw: bytes, encoding: str) -> str:
    """Return ``raw`` encoded as hex, base64 or base64url."""
    if encoding == "base64":
        return base64.b64encode(raw).decode()
    if encoding == "base64url":
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return raw.hex()


@connector(
    "data.uuid",
    name="Generate UUID",
    category="data",
    kind="transform",
    description="Generate random (v4) or name-based deterministic (v5) UUIDs.",
    input_schema=obj(
        {
            "version": prop(
                "integer", "4: random; 5: derived from namespace + name.", enum=[4, 5], default=4
            ),
            "name": prop("string", "Name for v5.", maxLength=10_000),
            "namespace": prop(
                "string", "Namespace for v5: dns, url, oid, x500 or a UUID.", default="url"
            ),
            "count": prop("integer", "How many v4 UUIDs.", minimum=1, maximum=1000, default=1),
        },
    ),
    output_schema=out(
        {
            "uuid": prop("string", "The (first) UUID."),
            "uuids": prop("array", "All generated UUIDs."),
        }
    ),
    examples=[{}, {"version": 5, "name": "https://example.com/orders/1"}],
)
async def make_uuid(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Generate UUIDs."""
    if params.get("version", 4) == 5:
        if "name" not in params:
            raise _bad("version 5 needs 'name'")
        space_name = params.get("namespace", "url")
        spaces = {
            "dns": uuid.NAMESPACE_DNS,
            "url": uuid.NAMESPACE_URL,
            "oid": uuid.NAMESPACE_OID,
            "x500": uuid.NAMESPACE_X500,
        }
        try:
            space = spaces.get(space_name) or uuid.UUID(space_name)
        except ValueError as exc:
            raise _bad(f"invalid namespace {space_name!r}") from exc
        values = [str(uuid.uuid5(space, params["name"]))]
    else:
        values = [str(uuid.uuid4()) for _ in range(params.get("count", 1))]
    return {"uuid": values[0], "uuids": values}


@connector(
    "data.hash",
    name="Hash",
    category="data",
    kind="transform",
    description="Compute a SHA-256/512, SHA-1, MD5 or BLAKE2 digest of text or bytes.",
    input_schema=obj(
        {
            "data": DATA,
            "algorithm": prop("string", "Hash function.", enum=list(ALGORITHMS), default="sha256"),
            "input_encoding": INPUT_ENCODING,
            "encoding": OUTPUT_ENCODING,
        },
        ["data"],
    ),
    output_schema=out(
        {"digest": prop("string", "The digest."), "algorithm": prop("string", "The algorithm.")}
    ),
    examples=[{"data": "hello", "algorithm": "sha256"}],
)
async def hash_data(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Hash ``data``."""
    algorithm = params.get("algorithm", "sha256")
    raw = decode_input(params["data"], params.get("input_encoding", "utf8"))
    digest = hashlib.new(algorithm, raw, usedforsecurity=False).digest()
    return {"digest": encode_output(digest, params.get("encoding", "hex")), "algorithm": algorithm}


HMAC_INPUT = {
    "data": DATA,
    "credential": CREDENTIAL_PROP,
    "key": prop(
        "string", "The key itself (prefer 'credential'; never echoed).", minLength=1, maxLength=4096
    ),
    "key_encoding": prop(
        "string", "How the key is encoded.", enum=["utf8", "base64", "hex"], default="utf8"
    ),
    "algorithm": prop(
        "string", "Hash function.", enum=["sha256", "sha512", "sha1", "sha384"], default="sha256"
    ),
    "input_encoding": INPUT_ENCODING,
    "encoding": OUTPUT_ENCODING,
}


def _hmac(params: dict[str, Any], ctx: NodeContext) -> bytes:
    if params.get("credential"):
        secret = credential(ctx, params["credential"])
    elif params.get("key"):
        secret = params["key"]
    else:
        raise _bad("give 'credential' (preferred) or 'key'")
    key = decode_input(secret, params.get("key_encoding", "utf8"))
    raw = decode_input(params["data"], params.get("input_encoding", "utf8"))
    return hmac.new(key, raw, params.get("algorithm", "sha256")).digest()


@connector(
    "data.hmac",
    name="HMAC sign",
    category="data",
    kind="transform",
    description="Compute an HMAC signature of data with a secret key from a credential.",
    input_schema=obj(HMAC_INPUT, ["data"]),
    output_schema=out({"signature": prop("string", "The signature.")}),
    secrets=["credential", "key"],
    examples=[{"data": '{"id":1}', "credential": "WEBHOOK_SECRET", "encoding": "base64"}],
)
async def hmac_sign(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Sign ``data``."""
    return {"signature": encode_output(_hmac(params, ctx), params.get("encoding", "hex"))}


@connector(
    "data.hmac_verify",
    name="HMAC verify",
    category="data",
    kind="transform",
    description="Check an HMAC signature of data in constant time (e.g. for incoming webhooks).",
    input_schema=obj(
        {
            **HMAC_INPUT,
            "signature": prop(
                "string", "The signature to check (an 'sha256=' prefix is ignored).", maxLength=1024
            ),
        },
        ["data", "signature"],
    ),
    output_schema=out({"valid": prop("boolean", "Whether the signature matches.")}),
    secrets=["credential", "key"],
    examples=[{"data": "payload", "signature": "sha256=abc123", "credential": "GITHUB_SECRET"}],
)
async def hmac_verify(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Verify ``signature`` over ``data``."""
    expected = encode_output(_hmac(params, ctx), params.get("encoding", "hex"))
    given = params["signature"].strip()
    if "=" in given[:10] and given.split("=", 1)[0].isalnum():
        given = given.split("=", 1)[1]
    if params.get("encoding", "hex") == "hex":
        given = given.lower()
    return {"valid": hmac.compare_digest(expected.encode(), given.encode())}


@connector(
    "data.base64_encode",
    name="Base64 encode",
    category="data",
    kind="transform",
    description="Encode text (UTF-8) or hex bytes as standard or URL-safe base64.",
    input_schema=obj(
        {
            "data": DATA,
            "input_encoding": prop(
                "string", "How 'data' is encoded.", enum=["utf8", "hex"], default="utf8"
            ),
            "url_safe": prop(
                "boolean", "Use the URL-safe alphabet without padding.", default=False
            ),
        },
        ["data"],
    ),
    output_schema=out({"text": prop("string", "The base64 text.")}),
    examples=[{"data": "hello world"}],
)
async def base64_encode(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Base64-encode ``data``."""
    raw = decode_input(params["data"], params.get("input_encoding", "utf8"))
    return {"text": encode_output(raw, "base64url" if params.get("url_safe") else "base64")}


@connector(
    "data.base64_decode",
    name="Base64 decode",
    category="data",
    kind="transform",
    description="Decode base64 (standard or URL-safe, padding optional) to text or hex.",
    input_schema=obj(
        {
            "text": prop("string", "The base64 text.", maxLength=MAX_DATA_CHARS),
            "output": prop(
                "string", "Return UTF-8 text or hex bytes.", enum=["utf8", "hex"], default="utf8"
            ),
        },
        ["text"],
    ),
    output_schema=out(
        {
            "data": prop("string", "The decoded text or hex."),
            "size": prop("integer", "Decoded size in bytes."),
        }
    ),
    examples=[{"text": "aGVsbG8gd29ybGQ="}],
)
async def base64_decode(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Base64-decode ``text``."""
    text = "".join(params["text"].split())
    text = text.replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except binascii.Error as exc:
        raise _bad("text is not valid base64") from exc
    if params.get("output", "utf8") == "hex":
        return {"data": raw.hex(), "size": len(raw)}
    try:
        return {"data": raw.decode(), "size": len(raw)}
    except UnicodeDecodeError as exc:
        raise _bad("decoded bytes are not UTF-8 text; use output=hex") from exc


@connector(
    "data.random_token",
    name="Random token",
    category="data",
    kind="transform",
    description="Generate a cryptographically secure random token (hex, base64url or digits).",
    input_schema=obj(
        {
            "bytes": prop(
                "integer",
                "Random bytes (hex/base64url) or digits (digits).",
                minimum=1,
                maximum=1024,
                default=32,
            ),
            "format": prop(
                "string",
                "Token alphabet.",
                enum=["hex", "base64url", "digits"],
                default="base64url",
            ),
        },
    ),
    output_schema=out({"token": prop("string", "The token.")}),
    examples=[{"bytes": 16, "format": "hex"}, {"bytes": 6, "format": "digits"}],
)
async def random_token(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Generate a random token."""
    size, fmt = params.get("bytes", 32), params.get("format", "base64url")
    if fmt == "digits":
        return {"token": "".join(secrets.choice("0123456789") for _ in range(size))}
    if fmt == "hex":
        return {"token": secrets.token_hex(size)}
    return {"token": secrets.token_urlsafe(size)}
