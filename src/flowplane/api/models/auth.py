"""Wire models of ``/v1/auth``: login, users and API keys (never a password or a key hash)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from flowplane.model.bounds import EpochMs
from flowplane.security.passwords import MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS
from flowplane.services.auth import ApiKeyInfo, UserInfo

RoleName = Literal["viewer", "executor", "editor", "admin"]
Username = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")]
Password = Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_CHARS)]
NewPassword = Annotated[str, Field(min_length=MIN_PASSWORD_CHARS, max_length=MAX_PASSWORD_CHARS)]
"""A password being set: the policy's bounds (a shorter one is a 400)."""
Namespace = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
Namespaces = Annotated[list[Namespace], Field(min_length=1, max_length=1000)] | None
DisplayName = Annotated[str, Field(pattern=r"^[^\x00-\x1f\x7f]{1,128}$")]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginRequest(_Wire):
    """Username and password."""

    username: Username
    password: Password


class UserOut(_Wire):
    """A user (never the password)."""

    id: str
    username: str
    role: RoleName
    namespaces: list[str] | None
    disabled: bool
    createdAtMs: int
    updatedAtMs: int
    passwordChangedAtMs: int
    createdBy: str | None

    @classmethod
    def of(cls, user: UserInfo) -> UserOut:
        """Wire form of a user."""
        return cls(
            id=user.id,
            username=user.username,
            role=user.role,
            namespaces=list(user.namespaces) if user.namespaces is not None else None,
            disabled=user.disabled,
            createdAtMs=user.created_at_ms,
            updatedAtMs=user.updated_at_ms,
            passwordChangedAtMs=user.password_changed_at_ms,
            createdBy=user.created_by,
        )


class LoginResponse(_Wire):
    """A login token: send it as ``Authorization: Bearer <accessToken>``."""

    accessToken: str
    tokenType: Literal["Bearer"]
    expiresAtMs: int
    expiresIn: int
    user: UserOut


class Me(_Wire):
    """The caller."""

    id: str
    kind: Literal["api_key", "user"]
    name: str
    role: RoleName
    namespaces: list[str] | None


class PasswordChange(_Wire):
    """A user's own password change (revokes the user's older login tokens)."""

    currentPassword: Password
    newPassword: NewPassword


class UserCreate(_Wire):
    """A new user."""

    username: Username
    password: NewPassword
    role: RoleName
    namespaces: Namespaces = None


class UserUpdate(_Wire):
    """Fields to change; a new ``password`` or ``disabled: true`` revokes login tokens."""

    role: RoleName | None = None
    namespaces: Namespaces = None
    disabled: bool | None = None
    password: NewPassword | None = None


class UserList(_Wire):
    """Users visible to the caller."""

    items: list[UserOut]


class TokenOut(_Wire):
    """An API key as stored: the key itself is never shown again."""

    id: str
    name: str
    prefix: str
    role: RoleName
    namespaces: list[str] | None
    rateLimitPerMinute: int | None
    expiresAtMs: int | None
    createdAtMs: int
    lastUsedAtMs: int | None
    revokedAtMs: int | None
    createdBy: str | None
    active: bool

    @classmethod
    def of(cls, key: ApiKeyInfo) -> TokenOut:
        """Wire form of a key."""
        return cls(
            id=key.id,
            name=key.name,
            prefix=key.prefix,
            role=key.role,
            namespaces=list(key.namespaces) if key.namespaces is not None else None,
            rateLimitPerMinute=key.rate_limit_per_minute,
            expiresAtMs=key.expires_at_ms,
            createdAtMs=key.created_at_ms,
            lastUsedAtMs=key.last_used_at_ms,
            revokedAtMs=key.revoked_at_ms,
            createdBy=key.created_by,
            active=key.active(),
        )


class TokenCreate(_Wire):
    """A new API key; at most one of ``expiresAtMs`` and ``expiresInSeconds``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "not": {
                "description": "Not both expiresAtMs and expiresInSeconds.",
                "required": ["expiresAtMs", "expiresInSeconds"],
                "properties": {
                    "expiresAtMs": {"type": "integer"},
                    "expiresInSeconds": {"type": "integer"},
                },
            }
        },
    )

    name: DisplayName
    role: RoleName
    namespaces: Namespaces = None
    expiresAtMs: EpochMs | None = None
    expiresInSeconds: int | None = Field(default=None, ge=1, le=10 * 365 * 86400)
    rateLimitPerMinute: int | None = Field(default=None, ge=0, le=1_000_000)


class TokenCreated(_Wire):
    """A new key: ``secret`` is shown this once and cannot be recovered."""

    token: TokenOut
    secret: str


class TokenList(_Wire):
    """API keys visible to the caller."""

    items: list[TokenOut]
