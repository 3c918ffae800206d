"""Request dependencies: who is calling (``require``) and the services to call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from fastapi import Depends, Path, Request
from fastapi.routing import APIRoute, iter_route_contexts

from flowplane.api.callers import of_request
from flowplane.errors import Forbidden, Unauthorized
from flowplane.services.caller import ROLE_RANK, Caller, Role
from flowplane.services.container import Services

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"
ObjectId = Annotated[str, Path(pattern=ID_PATTERN, max_length=128, description="An object id.")]
"""A path id: anything else (NUL bytes, slashes, 10 kB strings) is a 400 before any query."""


class Authenticator(Protocol):
    """Turns a request's credentials into a principal (raises ``Unauthorized``)."""

    async def authenticate(self, request: Request) -> Caller: ...  # pragma: no cover


def get_services(request: Request) -> Services:
    """The services of the running app."""
    services: Services = request.app.state.services
    return services


async def services_dependency(request: Request) -> Services:
    """``get_services`` as a dependency: async, so FastAPI runs it without a thread hop."""
    return get_services(request)


async def _authenticate(request: Request) -> Caller:
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Caller):
        return cached
    # ``app.state.gatekeeper`` (flowplane.api.security, which imports this module) holds it.
    gatekeeper = getattr(request.app.state, "gatekeeper", None)
    authenticator: Authenticator | None = getattr(gatekeeper, "authenticator", None)
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

    async def __call__(self, request: Request) -> Caller:
        principal = await _authenticate(request)
        if not principal.allows(self.role):
            raise Forbidden(f"this operation needs the {self.role} role; you have {principal.role}")
        # The services name the request in the audit log through ``caller.actor``.
        return of_request(principal)


def require(role: Role) -> Any:
    """A dependency that authenticates the caller and checks ``role``.

    It gives the route the :class:`Caller` to pass to the services, with the request id.
    """
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
    """Every ``APIRoute`` of ``app`` (included routers flattened) with its required role.

    Routes left out of the OpenAPI document (the browser's pages, ``api/routes/ui.py``) are
    not part of the API and are not listed."""
    found: list[RouteInfo] = []
    for context in iter_route_contexts(app.routes):
        original = context.original_route
        if isinstance(original, APIRoute) and original.include_in_schema:
            found.append(
                RouteInfo(
                    path=str(context.path_format or original.path_format),
                    methods=frozenset(context.methods or original.methods or ()),
                    role=route_role(original),
                    route=original,
                )
            )
    return found


AuthCheck = Callable[[Request], Awaitable[Caller]]
