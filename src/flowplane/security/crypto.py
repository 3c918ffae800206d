"""AES-256-GCM envelopes for credential values, under a ring of master keys.

An envelope is one line of text::

    v1:<key id>:<base64 nonce>:<base64 ciphertext+tag>

The nonce is 96 random bits per value, and the associated data binds the envelope to its
place: ``flowplane:v1:<key id>:<len(namespace)>:<namespace>:<credential id>``. An envelope
copied to another credential row or namespace, or relabelled with another key id, fails to
decrypt.

The key ring comes from the environment:

``FLOWPLANE_SECRET_KEY``
    The current key, then optionally old keys, comma-separated. Each key is base64 (standard
    or URL-safe, padding optional) of exactly 32 bytes, optionally prefixed with its key id
    as ``<kid>:<base64>``. Without a prefix the key id is ``k`` + the first 8 hex digits of
    the key's SHA-256, so the same key always gets the same id.
``FLOWPLANE_SECRET_KEYS_OLD``
    More old keys, same syntax: they decrypt but never encrypt. Keep them until
    ``flowplane secrets rotate-key`` has re-encrypted everything under the current key.

Generate a key with ``flowplane secrets generate-key`` (or
``python -c "import base64, os; print(base64.b64encode(os.urandom(32)).decode())"``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from flowplane.errors import DecryptionFailed, FlowplaneError, SecretKeyMissing

ENVELOPE_VERSION = "v1"
KEY_BYTES = 32
NONCE_BYTES = 12
KEY_ENV = "FLOWPLANE_SECRET_KEY"
OLD_KEYS_ENV = "FLOWPLANE_SECRET_KEYS_OLD"
_KID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


class SecretKeyInvalid(FlowplaneError):
    """A configured master key cannot be parsed (the message never contains the key)."""

    code = "secret_key_invalid"
    status = 500
    title = "Secret key invalid"


@dataclass(frozen=True, repr=False)
class MasterKey:
    """A 32-byte AES key and its id. ``repr`` never shows the material."""

    kid: str
    material: bytes

    def __repr__(self) -> str:
        return f"MasterKey(kid={self.kid!r})"


def generate_key() -> str:
    """Return a new random master key, base64-encoded."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def default_kid(material: bytes) -> str:
    """Return the stable key id of ``material``: ``k`` + 8 hex digits of its SHA-256."""
    return "k" + hashlib.sha256(material).hexdigest()[:8]


def parse_key(spec: str) -> MasterKey:
    """Parse one key: ``<base64>`` or ``<kid>:<base64>``.

    Raises:
        SecretKeyInvalid: the id or the key is malformed (the error never echoes the key).
    """
    spec = spec.strip()
    kid: str | None = None
    if ":" in spec:
        kid, spec = spec.split(":", 1)
        if not _KID.match(kid):
            raise SecretKeyInvalid("a key id must be 1-32 of A-Z a-z 0-9 _ . -")
    material = _decode_key(spec)
    return MasterKey(kid or default_kid(material), material)


def _decode_key(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            raw = decode(padded.encode())
        except (binascii.Error, ValueError):
            continue
        if len(raw) == KEY_BYTES:
            return raw
    raise SecretKeyInvalid(f"a secret key must be base64 of exactly {KEY_BYTES} bytes")


def _split(spec: str | None) -> list[str]:
    return [part.strip() for part in (spec or "").split(",") if part.strip()]


class KeyRing:
    """The current key (encrypts) and old keys (decrypt only), by key id."""

    def __init__(self, current: MasterKey, old: Sequence[MasterKey] = ()) -> None:
        self.current = current
        self._keys: dict[str, MasterKey] = {current.kid: current}
        for key in old:
            known = self._keys.get(key.kid)
            if known is not None and known.material != key.material:
                raise SecretKeyInvalid(f"two different keys share the key id {key.kid!r}")
            self._keys.setdefault(key.kid, key)

    def __repr__(self) -> str:
        return f"KeyRing(current={self.current.kid!r}, keys={sorted(self._keys)!r})"

    @property
    def key_ids(self) -> list[str]:
        """Every key id this ring can decrypt with, the current one first."""
        return [self.current.kid, *(k for k in self._keys if k != self.current.kid)]

    @property
    def keys(self) -> list[MasterKey]:
        """Every key of the ring, the current one first."""
        return [self._keys[kid] for kid in self.key_ids]

    @classmethod
    def parse(cls, spec: str, old: str | None = None) -> KeyRing:
        """Build a ring from ``FLOWPLANE_SECRET_KEY`` syntax (and an optional old-keys list).

        Raises:
            SecretKeyInvalid: a key is malformed.
            SecretKeyMissing: ``spec`` holds no key.
        """
        keys = [parse_key(part) for part in _split(spec)]
        if not keys:
            raise SecretKeyMissing(f"{KEY_ENV} is empty")
        return cls(keys[0], [*keys[1:], *(parse_key(p) for p in _split(old))])

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, key: str | None = None
    ) -> KeyRing | None:
        """Return the ring configured by the environment, or ``None`` without a key.

        Args:
            environ: where to read (default ``os.environ``).
            key: a key spec that takes precedence over ``FLOWPLANE_SECRET_KEY`` (settings).
        """
        env = os.environ if environ is None else environ
        spec = key if key is not None else env.get(KEY_ENV)
        if not spec or not spec.strip():
            return None
        return cls.parse(spec, env.get(OLD_KEYS_ENV))

    def with_current(self, key: MasterKey) -> KeyRing:
        """Return a ring where ``key`` encrypts and every key of this ring still decrypts."""
        return KeyRing(key, self.keys)

    # --- envelopes --------------------------------------------------------------------

    def encrypt(self, plaintext: str, *, context: str) -> str:
        """Seal ``plaintext`` under the current key, bound to ``context``.

        Args:
            plaintext: the secret value.
            context: where the value lives (e.g. ``"<namespace>:<credential id>"``); the
                same context must be given to :meth:`decrypt`.
        """
        key = self.current
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(key.material).encrypt(nonce, plaintext.encode(), _aad(key.kid, context))
        return ":".join((ENVELOPE_VERSION, key.kid, _b64(nonce), _b64(sealed)))

    def decrypt(self, envelope: str, *, context: str) -> str:
        """Open an envelope made by :meth:`encrypt` with the same ``context``.

        Raises:
            DecryptionFailed: unknown version or key id, malformed, tampered or misplaced.
        """
        kid, nonce, sealed = self._parse(envelope)
        key = self._keys.get(kid)
        if key is None:
            raise DecryptionFailed(
                f"the credential was encrypted with key {kid!r}, which is not configured; "
                f"add it to {OLD_KEYS_ENV}"
            )
        try:
            plain = AESGCM(key.material).decrypt(nonce, sealed, _aad(kid, context))
        except InvalidTag:
            raise DecryptionFailed("the envelope does not authenticate") from None
        return plain.decode()

    def needs_rotation(self, envelope: str) -> bool:
        """Whether ``envelope`` is sealed under another key than the current one."""
        return key_id_of(envelope) != self.current.kid

    @staticmethod
    def _parse(envelope: str) -> tuple[str, bytes, bytes]:
        parts = envelope.split(":")
        if len(parts) != 4 or parts[0] != ENVELOPE_VERSION:
            raise DecryptionFailed("not a v1 envelope")
        try:
            nonce = base64.b64decode(parts[2], validate=True)
            sealed = base64.b64decode(parts[3], validate=True)
        except (binascii.Error, ValueError):
            raise DecryptionFailed("malformed envelope") from None
        if len(nonce) != NONCE_BYTES:
            raise DecryptionFailed("malformed envelope nonce")
        return parts[1], nonce, sealed


def key_id_of(envelope: str) -> str | None:
    """Return the key id written in ``envelope`` (``None`` when it is not an envelope)."""
    parts = envelope.split(":")
    return parts[1] if len(parts) == 4 and parts[0] == ENVELOPE_VERSION else None


def credential_context(namespace: str, credential_id: str) -> str:
    """Return the associated-data context binding a value to its credential row.

    The namespace is length-prefixed, so no two (namespace, id) pairs share a context.
    """
    return f"{len(namespace)}:{namespace}:{credential_id}"


def _aad(kid: str, context: str) -> bytes:
    return f"flowplane:{ENVELOPE_VERSION}:{kid}:{context}".encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
