"""AuthService: API keys, users, login tokens, and turning credentials into identities.

Rules that live here rather than in the routes:

- keys and users carry a role (``viewer < executor < editor < admin``) and optionally a
  list of namespaces (``None`` = all); managing them needs the admin role;
- a namespace-restricted caller can only grant (and only see) keys and users confined to
  namespaces it can see itself, so a tenant admin cannot mint a global key;
- a login token embeds the user's ``token_version``; changing the password (or disabling
  the user) bumps it, which revokes every token issued before;
- unknown, revoked, expired and malformed credentials all fail with the same
  ``Unauthorized`` message, and every secret comparison is constant-time.

The rooms: :mod:`.records` (what is handed out), :mod:`.keys`, :mod:`.users`, :mod:`.login`.
"""

from __future__ import annotations

from flowplane.services.auth.keys import ApiKeys
from flowplane.services.auth.login import Logins
from flowplane.services.auth.records import (
    LOCAL,
    ROLES,
    ApiKeyInfo,
    CreatedKey,
    LoginToken,
    UserInfo,
)
from flowplane.services.auth.users import Users
from flowplane.settings import Settings
from flowplane.store.base import Store
from flowplane.store.records import ApiKeyRecord

__all__ = [
    "LOCAL",
    "ROLES",
    "ApiKeyInfo",
    "AuthService",
    "CreatedKey",
    "LoginToken",
    "UserInfo",
]


class AuthService(ApiKeys, Users, Logins):
    """API keys, users and login tokens over the store.

    Args:
        store: the open store.
        settings: for the token lifetime and the configured JWT secret.
    """

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._jwt_secret = settings.jwt_secret
        self._key_rows: dict[str, tuple[float, list[ApiKeyRecord]]] = {}
