"""``/auth/register`` and ``/auth/login`` (answering ``{token}``), and ``GET /healthz``.

Roles are Flowplane's, hierarchical as workflowdev's: ``viewer < executor < editor <
admin``. The token is a Flowplane login token (a JWT), sent as ``Authorization: Bearer``.

``/auth/register`` and ``/auth/login`` pass the security gate without credentials (as
``/v1/auth/login`` does). Registering needs an admin's credentials, except the server's
very first user when ``FLOWPLANE_OPEN_FIRST_REGISTRATION=true`` (the service decides).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict

from flowplane import __version__
from flowplane.api.callers import of_request
from flowplane.api.deps import services_dependency
from flowplane.api.login_throttle import throttled_login
from flowplane.api.models.auth import NewPassword, Password, RoleName, Username
from flowplane.api.models.common import iso
from flowplane.api.openapi import error_responses
from flowplane.api.security import extract_credential, gatekeeper_of
from flowplane.services.auth import LoginToken, UserInfo
from flowplane.services.container import Services

router = APIRouter(tags=["workflowdev"])

OPEN_ROUTES: frozenset[tuple[str, str]] = frozenset(
    {("POST", "/auth/register"), ("POST", "/auth/login"), ("GET", "/healthz")}
)
"""Routes of this module reachable without credentials."""

Svc = Annotated[Services, Depends(services_dependency)]


class Register(BaseModel):
    """``POST /auth/register``."""

    model_config = ConfigDict(extra="forbid")
    username: Username
    password: NewPassword
    role: RoleName = "viewer"


class Login(BaseModel):
    """``POST /auth/login``."""

    model_config = ConfigDict(extra="forbid")
    username: Username
    password: Password


def _user(user: UserInfo) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "role": user.role,
        "namespaces": None if user.namespaces is None else list(user.namespaces),
        "createdAt": iso(user.created_at_ms),
    }


def _token(login: LoginToken) -> dict[str, Any]:
    return {
        "token": login.token,
        "expiresAt": iso(login.expires_at_ms),
        "user": _user(login.user),
    }


async def _login(request: Request, services: Services, username: str, password: str) -> LoginToken:
    return await throttled_login(
        request,
        gatekeeper_of(request.app).login_limiter,
        services.settings,
        username,
        lambda: services.auth.login(username, password),
    )


@router.post(
    "/auth/register",
    status_code=201,
    summary="Register a user",
    responses=error_responses(401, 403, 409, 429),
)
async def register(body: Register, request: Request, services: Svc) -> dict[str, Any]:
    """Create a user and log them in: ``{token, user}``."""
    caller = None
    headers = request.headers
    if "authorization" in headers or "x-api-key" in headers:
        authenticator = gatekeeper_of(request.app).authenticator
        identity = await authenticator.identify_credential(extract_credential(headers))
        caller = of_request(identity.principal)
    registered = await services.auth.register(
        username=body.username, password=body.password, role=body.role, caller=caller
    )
    return _token(registered)


@router.post("/auth/login", summary="Log in", responses=error_responses(401, 429))
async def login(body: Login, request: Request, services: Svc) -> dict[str, Any]:
    """Exchange a username and password for a token: ``{token, expiresAt, user}``."""
    return _token(await _login(request, services, body.username, body.password))


@router.get("/healthz", summary="Health check")
async def healthz() -> dict[str, Literal["ok"] | str]:
    """200 while the process runs (``/readyz`` also checks the database)."""
    return {"status": "ok", "version": __version__}
