"""Login tokens: a password exchanged for a short-lived JWT, and the JWT checked back."""

from __future__ import annotations

from flowplane.errors import Unauthorized
from flowplane.security import passwords, tokens
from flowplane.services.auth.records import BAD_CREDENTIALS, JWT_SECRET_NAME, LoginToken, UserInfo
from flowplane.settings import Settings
from flowplane.store import auth_queries as q
from flowplane.store.base import Store
from flowplane.store.tx import Tx


class Logins:
    """The login-token half of :class:`~flowplane.services.auth.AuthService`."""

    store: Store
    settings: Settings
    _jwt_secret: str | None

    async def jwt_secret(self) -> str:
        """The HS256 key: the configured one, or one generated once and kept in the database."""
        if self._jwt_secret is None:

            def load_or_create(tx: Tx) -> str:
                existing = q.get_secret(tx, JWT_SECRET_NAME)
                if existing is not None:
                    return existing
                secret = tokens.generate_jwt_secret()
                q.put_secret(tx, JWT_SECRET_NAME, secret)
                return secret

            self._jwt_secret = tokens.check_jwt_secret(await self.store.transact(load_or_create))
        return self._jwt_secret

    async def login(self, username: str, password: str) -> LoginToken:
        """Check a password and sign a login token; ``Unauthorized`` on any mismatch."""
        row = await self.store.read(lambda tx: q.user_by_name(tx, username))
        stored = row.password_hash if row is not None else None
        # Always verify (against a dummy hash for unknown users): same time either way.
        if not passwords.verify_password(stored, password) or row is None or row.disabled:
            raise Unauthorized("invalid username or password")
        user = UserInfo.from_row(row)
        if passwords.needs_rehash(row.password_hash):
            new_hash = passwords.hash_password(password)
            await self.store.transact(lambda tx: q.update_user(tx, user.id, password_hash=new_hash))
        token, expires_at_ms = tokens.encode_jwt(
            await self.jwt_secret(),
            subject=user.id,
            ttl_seconds=self.settings.jwt_ttl_seconds,
            claims={"ver": user.token_version},
        )
        return LoginToken(token=token, expires_at_ms=expires_at_ms, user=user)

    async def authenticate_token(self, token: str) -> UserInfo:
        """Return the user of a valid, unrevoked login token; ``Unauthorized`` otherwise."""
        claims = tokens.decode_jwt(await self.jwt_secret(), token)
        row = await self.store.read(lambda tx: q.get_user(tx, claims["sub"]))
        if row is None:
            raise Unauthorized(BAD_CREDENTIALS)
        user = UserInfo.from_row(row)
        if user.disabled or claims.get("ver") != user.token_version:
            raise Unauthorized("the token was revoked")
        return user
