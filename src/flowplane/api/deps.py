"""Request dependencies: who is calling (``require``) and the services to call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Protocol

from fastapi import Depends, Path, Request
from fastapi.routing import APIRoute, iter_route_contexts

from flowplane.errors import Forbidden, NotFound, Unauthorized
from flowplane.services.container import Services

Role = Literal["viewer", "executor", "editor", "admin"]
ROLE_RANK: dict[str, int] = {"viewer": 0, "executor": 1, "editor": 2, "admin": 3}

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
ObjectId = Annotated[str, Path(pattern=ID_PATTERN, max_length=128, description="An object id.")]
"""A path id: anything else (NUL bytes, slashes, 10 kB strings) is a 400 before any query."""


@dataclass(frozen=True)
class Principal:
    """An authenticated caller.

    Attributes:
        id: the API key id or user id.
        kind: ``"api_key"`` or ``"user"``.
        name: a display name (key name or username), used as ``triggered_by``.
        role: the caller's role.
        namespaces: namespaces the caller may see; ``None`` means all.
    """

    id: str
    kind: Literal["api_key", "user"]
    name: str
    role: Role
    namespaces: tuple[str, ...] | None = None

    def allows(self, role: str) -> bool:
        """Whether the caller's role is at least ``role``."""
        return ROLE_RANK[self.role] >= ROLE_RANK[role]

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


class Authenticator(Protocol):
    """Turns a request's credentials into a principal (raises ``Unauthorized``)."""

    async def authenticate(self, request: Request) -> Principal: ...  # pragma: no cover


def get_services(request: Request) -> Services:
    """The services of the running app."""
    services: Services = request.app.state.services
    return services


async def services_dependency(request: Request) -> Services:
    """``get_services`` as a dependency: async, so FastAPI runs it without a thread hop."""
    return get_services(request)


async def _authenticate(request: Request) -> Principal:
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    services = get_services(request)
    authenticator: Authenticator | None = services.extra.get("authenticator")
    if authenticator is None:
        # Fail closed: without an authenticator nobody gets in.
        raise Unauthorized("authentication is not configured")
    principal = await authenticator.authenticate(request)
    request.state.principal = principal
    return principal


class RoleRequirement:
    """The dependency behind :func:`require`; its ``role`` is what the route needs.

    The OpenAPI document and the authorization-matrix test read ``role`` back from the
    route's dependencies (see :func:`route_role`).
    """

    def __init__(self, role: Role) -> None:
        if role not in ROLE_RANK:
            raise ValueError(f"unknown role {role!r}")
        self.role: Role = role
        self.__name__ = f"require_{role}"

    async def __call__(self, request: Request) -> Principal:
        principal = await _authenticate(request)
        if not principal.allows(self.role):
            raise Forbidden(f"this operation needs the {self.role} role; you have {principal.role}")
        return principal


def require(role: Role) -> Any:
    """A dependency that authenticates the caller and checks ``role``."""
    return Depends(RoleRequirement(role))


def route_role(route: Any) -> Role | None:
    """The role a route requires (the highest ``require`` among its dependencies), if any."""
    dependant = getattr(route, "dependant", None)
    found: Role | None = None
    stack = [dependant] if dependant is not None else []
    while stack:
        current = stack.pop()
        call = getattr(current, "call", None)
        if isinstance(call, RoleRequirement) and (
            found is None or ROLE_RANK[call.role] > ROLE_RANK[found]
        ):
            found = call.role
        stack.extend(getattr(current, "dependencies", []))
    return found


@dataclass(frozen=True)
class RouteInfo:
    """One HTTP operation of an app, as the router really serves it."""

    path: str
    methods: frozenset[str]
    role: Role | None
    route: APIRoute


def api_routes(app: Any) -> list[RouteInfo]:
    """Every ``APIRoute`` of ``app`` (included routers flattened) with its required role."""
    found: list[RouteInfo] = []
    for context in iter_route_contexts(app.routes):
        original = context.original_route
        if isinstance(original, APIRoute):
            found.append(
                RouteInfo(
                    path=str(context.path_format or original.path_format),
                    methods=frozenset(context.methods or original.methods or ()),
                    role=route_role(original),
                    route=original,
                )
            )
    return found


AuthCheck = Callable[[Request], Awaitable[Principal]]
