"""Users: accounts with an Argon2id password, a role and namespaces.

Changing the password (or disabling the user) bumps ``token_version``, which revokes every
login token issued before.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from flowplane.errors import Conflict, InvalidInput, NotFound, Unauthorized
from flowplane.ids import new_id
from flowplane.security import passwords
from flowplane.services.auth.records import (
    LOCAL,
    UserInfo,
    actor_of,
    check_namespaces,
    check_role,
    covers,
    namespaces_of,
)
from flowplane.services.caller import Caller
from flowplane.store import audit
from flowplane.store import auth_queries as q
from flowplane.store.base import Store
from flowplane.store.records import UserRecord
from flowplane.store.tx import Row, Tx

_log = logging.getLogger("flowplane.auth")


class Users:
    """The user half of :class:`~flowplane.services.auth.AuthService`."""

    store: Store

    async def create_user(
        self,
        *,
        username: str,
        password: str,
        role: str,
        namespaces: Sequence[str] | None = None,
        caller: Caller,
    ) -> UserInfo:
        """Create a user with an Argon2id password hash.

        Raises:
            InvalidInput: bad role, namespace or password.
            Conflict: the username is taken.
        """
        caller.require("admin")
        check_role(role)
        allowed = check_namespaces(namespaces)
        if not covers(caller, allowed):
            raise InvalidInput("you can only grant namespaces you can see yourself")
        password_hash = passwords.hash_password(password)
        who = actor_of(caller)

        def insert(tx: Tx) -> UserRecord:
            if q.user_by_name(tx, username) is not None:
                raise Conflict(f"user {username!r} already exists")
            row: Row = {
                "id": new_id(),
                "username": username,
                "password_hash": password_hash,
                "role": role,
                "namespaces": allowed,
                "token_version": 1,
                "disabled": False,
                "created_at_ms": tx.now_ms,
                "updated_at_ms": tx.now_ms,
                "password_changed_at_ms": tx.now_ms,
                "created_by": caller.name,
            }
            q.insert_user(tx, row)
            audit.record(
                tx,
                actor=who,
                action="user.create",
                namespace=None,
                target_type="user",
                target_id=row["id"],
                details={"username": username, "role": role, "namespaces": allowed},
            )
            return UserRecord.from_row(row)

        row = await self.store.transact(insert)
        _log.info("user %s (%s) created by %s", username, role, caller.name)
        return UserInfo.from_row(row)

    async def list_users(self, *, caller: Caller) -> list[UserInfo]:
        """Users visible to ``caller``, by username."""
        caller.require("admin")
        users = [UserInfo.from_row(r) for r in await self.store.read(q.list_users)]
        return [u for u in users if covers(caller, u.namespaces)]

    async def get_user(self, user_id: str, *, caller: Caller) -> UserInfo:
        """One user by id; ``NotFound`` when absent or outside ``caller``'s namespaces."""
        caller.require("admin")
        row = await self.store.read(lambda tx: q.get_user(tx, user_id))
        if row is None or not covers(caller, namespaces_of(row.namespaces)):
            raise NotFound("user not found")
        return UserInfo.from_row(row)

    async def find_user(self, username: str, *, caller: Caller) -> UserInfo:
        """One user by username; ``NotFound`` when absent or outside ``caller``'s namespaces."""
        caller.require("admin")
        row = await self.store.read(lambda tx: q.user_by_name(tx, username))
        if row is None or not covers(caller, namespaces_of(row.namespaces)):
            raise NotFound("user not found")
        return UserInfo.from_row(row)

    async def update_user(
        self,
        user_id: str,
        *,
        role: str | None = None,
        namespaces: Sequence[str] | None = None,
        set_namespaces: bool = False,
        disabled: bool | None = None,
        password: str | None = None,
        caller: Caller,
    ) -> UserInfo:
        """Change a user's role, namespaces (when ``set_namespaces``), state or password.

        A new password or disabling the user bumps ``token_version``: every login token
        issued before stops working.
        """
        caller.require("admin")
        await self.get_user(user_id, caller=caller)
        values: dict[str, Any] = {}
        if role is not None:
            values["role"] = check_role(role)
        if set_namespaces:
            allowed = check_namespaces(namespaces)
            if not covers(caller, allowed):
                raise InvalidInput("you can only grant namespaces you can see yourself")
            values["namespaces"] = allowed
        if disabled is not None:
            values["disabled"] = disabled
        password_hash = passwords.hash_password(password) if password is not None else None
        who = actor_of(caller)

        def update(tx: Tx) -> UserRecord | None:
            row = q.get_user(tx, user_id)
            if row is None:
                return None
            changes = dict(values)
            if password_hash is not None:
                changes["password_hash"] = password_hash
                changes["password_changed_at_ms"] = tx.now_ms
            if password_hash is not None or disabled:
                changes["token_version"] = int(row.token_version) + 1
            if changes:
                q.update_user(tx, user_id, **changes)
                changed = sorted(values) + (["password"] if password_hash is not None else [])
                audit.record(
                    tx,
                    actor=who,
                    action="user.update",
                    namespace=None,
                    target_type="user",
                    target_id=user_id,
                    details={"username": row.username, "changed": changed},
                )
            return q.get_user(tx, user_id)

        row = await self.store.transact(update)
        if row is None:
            raise NotFound("user not found")
        return UserInfo.from_row(row)

    async def change_password(self, caller: Caller, current: str, new: str) -> UserInfo:
        """The calling user's own password change: checks ``current``, revokes older tokens.

        Raises:
            InvalidInput: the caller is not a user (API keys have no password).
            Unauthorized: ``current`` is wrong.
        """
        if caller.kind != "user":
            raise InvalidInput("API keys have no password; log in as a user")
        user_id = caller.id
        row = await self.store.read(lambda tx: q.get_user(tx, user_id))
        if row is None or not passwords.verify_password(row.password_hash, current):
            raise Unauthorized("the current password is wrong")
        # The user changes their own password: verified above, so the service acts for them.
        return await self.update_user(user_id, password=new, caller=LOCAL)

    async def delete_user(self, user_id: str, *, caller: Caller) -> None:
        """Delete a user; their tokens stop working."""
        caller.require("admin")
        await self.get_user(user_id, caller=caller)
        who = actor_of(caller)

        def remove(tx: Tx) -> bool:
            if not q.delete_user(tx, user_id):
                return False
            audit.record(
                tx,
                actor=who,
                action="user.delete",
                namespace=None,
                target_type="user",
                target_id=user_id,
            )
            return True

        if not await self.store.transact(remove):
            raise NotFound("user not found")
