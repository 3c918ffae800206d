"""AES-256-GCM envelopes and the master key ring."""

from __future__ import annotations

import base64

import pytest

from flowplane.security.crypto import (
    DecryptionFailed,
    KeyRing,
    MasterKey,
    SecretKeyInvalid,
    SecretKeyMissing,
    credential_context,
    default_kid,
    generate_key,
    key_id_of,
    parse_key,
)

CTX = credential_context("default", "cred_1")


def test_round_trip_and_envelope_shape() -> None:
    ring = KeyRing.parse(generate_key())
    envelope = ring.encrypt("s3cr3t-value", context=CTX)
    version, kid, nonce, sealed = envelope.split(":")
    assert version == "v1" and kid == ring.current.kid
    assert len(base64.b64decode(nonce)) == 12
    assert len(base64.b64decode(sealed)) == len("s3cr3t-value") + 16  # GCM tag
    assert "s3cr3t" not in envelope
    assert ring.decrypt(envelope, context=CTX) == "s3cr3t-value"


def test_random_nonce_per_value() -> None:
    ring = KeyRing.parse(generate_key())
    a, b = ring.encrypt("same", context=CTX), ring.encrypt("same", context=CTX)
    assert a != b
    assert a.split(":")[2] != b.split(":")[2]


@pytest.mark.parametrize(
    "context",
    [
        credential_context("default", "cred_2"),  # another row
        credential_context("other", "cred_1"),  # another namespace
        credential_context("defaul", "tcred_1"),  # a shifted boundary
    ],
)
def test_associated_data_binds_the_place(context: str) -> None:
    ring = KeyRing.parse(generate_key())
    envelope = ring.encrypt("value", context=CTX)
    with pytest.raises(DecryptionFailed):
        ring.decrypt(envelope, context=context)


def test_tampering_and_relabelling_are_detected() -> None:
    ring = KeyRing.parse(f"{generate_key()},old:{generate_key()}")
    envelope = ring.encrypt("value", context=CTX)
    version, kid, nonce, sealed = envelope.split(":")
    raw = bytearray(base64.b64decode(sealed))
    raw[0] ^= 1
    flipped = ":".join((version, kid, nonce, base64.b64encode(bytes(raw)).decode()))
    with pytest.raises(DecryptionFailed, match="authenticate"):
        ring.decrypt(flipped, context=CTX)
    with pytest.raises(DecryptionFailed):
        ring.decrypt(":".join((version, "old", nonce, sealed)), context=CTX)
    for bad in ("plaintext", "v2:k:AAAA:AAAA", "v1:k:not base64!:AAAA", "v1:k:AAAA:AAAA"):
        with pytest.raises(DecryptionFailed):
            ring.decrypt(bad, context=CTX)


def test_unknown_key_id_names_the_key_to_add() -> None:
    envelope = KeyRing.parse("one:" + generate_key()).encrypt("v", context=CTX)
    with pytest.raises(DecryptionFailed, match=r"'one'.*FLOWPLANE_SECRET_KEYS_OLD"):
        KeyRing.parse("two:" + generate_key()).decrypt(envelope, context=CTX)


def test_rotation_ring_old_keys_decrypt_current_encrypts() -> None:
    old_spec, new_spec = generate_key(), generate_key()
    old_ring = KeyRing.parse(old_spec)
    envelope = old_ring.encrypt("v", context=CTX)
    ring = KeyRing.parse(new_spec, old=old_spec)
    assert ring.needs_rotation(envelope)
    assert ring.decrypt(envelope, context=CTX) == "v"
    resealed = ring.encrypt("v", context=CTX)
    assert key_id_of(resealed) == ring.current.kid != old_ring.current.kid
    assert not ring.needs_rotation(resealed)
    assert ring.key_ids == [ring.current.kid, old_ring.current.kid]
    assert old_ring.with_current(ring.current).decrypt(envelope, context=CTX) == "v"


def test_key_syntax() -> None:
    raw = bytes(range(32))
    std, url = base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()
    assert parse_key(std).material == raw
    assert parse_key(url.rstrip("=")).material == raw
    assert parse_key(std).kid == default_kid(raw) == parse_key(std).kid
    assert parse_key(f"prod-2024:{std}") == MasterKey("prod-2024", raw)
    ring = KeyRing.parse(f" a:{std} , b:{generate_key()} ", old=f"c:{generate_key()}")
    assert ring.current.kid == "a" and ring.key_ids == ["a", "b", "c"]
    assert "material" not in repr(ring.current) and std not in repr(ring)


@pytest.mark.parametrize(
    "spec",
    [
        "not-a-key",
        base64.b64encode(b"short").decode(),
        base64.b64encode(bytes(33)).decode(),
        "bad id!:" + generate_key(),
    ],
    ids=["not-base64", "short", "too-long", "bad-key-id"],  # stable for pytest-xdist
)
def test_invalid_keys_never_echo_the_key(spec: str) -> None:
    with pytest.raises(SecretKeyInvalid) as err:
        KeyRing.parse(spec)
    assert spec.split(":")[-1] not in str(err.value)


def test_conflicting_key_ids_are_refused() -> None:
    with pytest.raises(SecretKeyInvalid, match="share the key id"):
        KeyRing.parse(f"k:{generate_key()},k:{generate_key()}")


def test_from_env() -> None:
    key = generate_key()
    assert KeyRing.from_env({}) is None
    assert KeyRing.from_env({"FLOWPLANE_SECRET_KEY": "  "}) is None
    ring = KeyRing.from_env({"FLOWPLANE_SECRET_KEY": key, "FLOWPLANE_SECRET_KEYS_OLD": ""})
    assert ring is not None and ring.current.material == base64.b64decode(key)
    other = generate_key()
    ring = KeyRing.from_env({"FLOWPLANE_SECRET_KEY": key}, key=other)
    assert ring is not None and ring.current.material == base64.b64decode(other)
    with pytest.raises(SecretKeyMissing):
        KeyRing.parse(" , ")
