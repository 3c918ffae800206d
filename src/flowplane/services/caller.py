"""Who calls a service: the one type every surface hands to the services boundary.

A surface (REST, RPC, WebSocket, serve mode, MCP, CLI) authenticates its caller its own
way, then builds a :class:`Caller` and passes it to every service method. The services own
what follows from it: role checks (:meth:`Caller.require`), namespace visibility (another
namespace's object is *not found*, never forbidden), and who the audit log names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from flowplane.errors import Forbidden, NotFound
from flowplane.store.audit import Actor

__all__ = ["ROLES", "ROLE_RANK", "Caller", "CallerKind", "Role"]

Role = Literal["viewer", "executor", "editor", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "executor", "editor", "admin")
ROLE_RANK: dict[str, int] = {role: rank for rank, role in enumerate(ROLES)}
CallerKind = Literal["api_key", "user", "system"]


@dataclass(frozen=True)
class Caller:
    """An authenticated caller.

    Attributes:
        id: the API key id or user id.
        kind: ``"api_key"``, ``"user"`` or ``"system"`` (cron, the local CLI).
        name: a display name (key name or username), used as ``triggered_by``.
        role: the caller's role.
        namespaces: namespaces the caller may see; ``None`` means all.
        request_id: the request this call belongs to, when there is one.
    """

    id: str
    kind: CallerKind
    name: str
    role: Role
    namespaces: tuple[str, ...] | None = None
    request_id: str | None = None

    @classmethod
    def system(cls, name: str = "system") -> Caller:
        """A caller with every right, for the process's own work (cron, local CLI)."""
        return cls(id=name, kind="system", name=name, role="admin")

    def allows(self, role: str) -> bool:
        """Whether the caller's role is at least ``role``."""
        return ROLE_RANK[self.role] >= ROLE_RANK[role]

    def require(self, role: Role) -> None:
        """Raise ``Forbidden`` unless the caller's role is at least ``role``."""
        if not self.allows(role):
            raise Forbidden(f"this operation needs the {role} role; you have {self.role}")

    def can_see(self, namespace: str) -> bool:
        """Whether ``namespace`` is visible to the caller."""
        return self.namespaces is None or namespace in self.namespaces

    def check_namespace(self, namespace: str, what: str = "object") -> None:
        """Raise 404 when ``namespace`` is not visible (never 403: existence is not leaked)."""
        if not self.can_see(namespace):
            raise NotFound(f"{what} not found")

    def visible(self, requested: Sequence[str] | None = None) -> list[str] | None:
        """Namespaces to filter a listing by (``None`` = no filter)."""
        if requested:
            return [ns for ns in requested if self.can_see(ns)]
        return None if self.namespaces is None else list(self.namespaces)

    @property
    def actor(self) -> Actor:
        """Who the audit log names for this caller's mutations."""
        return Actor(name=self.name, kind=self.kind, id=self.id, request_id=self.request_id)
