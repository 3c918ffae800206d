"""Password hashing with Argon2id (argon2-cffi, RFC 9106 low-memory profile)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from flowplane.errors import InvalidInput

MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1024

_hasher = PasswordHasher()
# Verified when the user does not exist, so a login takes as long either way. Made by
# prepare() (on a thread as a server starts) or the first login, not on import: a hash
# takes ~0.2 s, and every process imports this module.
_dummy_hash: str | None = None


def use_cheap_hashing() -> None:
    """Switch to the cheapest Argon2id parameters: for test suites only, never in a server."""
    global _hasher, _dummy_hash
    _hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    _dummy_hash = None


def prepare() -> None:
    """Make the dummy hash now (a server calls it on a thread as it starts)."""
    _dummy()


def _dummy() -> str:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash("flowplane-dummy-password")
    return _dummy_hash


def check_password_policy(password: str) -> None:
    """Raise ``InvalidInput`` when ``password`` is too short or too long."""
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise InvalidInput(
            f"a password needs {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
        )


def hash_password(password: str) -> str:
    """Return the Argon2id hash of ``password`` (after the length policy)."""
    check_password_policy(password)
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``password_hash`` (``None``: burn the same time, fail)."""
    if len(password) > MAX_PASSWORD_CHARS:
        return False
    try:
        return _hasher.verify(password_hash or _dummy(), password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than the current ones."""
    return _hasher.check_needs_rehash(password_hash)
