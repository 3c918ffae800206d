"""Auth routes: login, who-am-I, users and API keys (admin).

A namespace-restricted admin sees and manages only the keys and users confined to its own
namespaces; anything else answers 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from flowplane.api.deps import ObjectId, get_services, require
from flowplane.api.login_throttle import throttled_login
from flowplane.api.models.auth import (
    LoginRequest,
    LoginResponse,
    Me,
    PasswordChange,
    TokenCreate,
    TokenCreated,
    TokenList,
    TokenOut,
    UserCreate,
    UserList,
    UserOut,
    UserUpdate,
)
from flowplane.api.openapi import error_responses
from flowplane.api.security import gatekeeper_of
from flowplane.services.caller import Caller

router = APIRouter(prefix="/v1/auth", tags=["auth"])


@router.post(
    "/login",
    response_model=LoginResponse,
    summary="Log in for a token",
    responses=error_responses(401, 429),
)
async def login(body: LoginRequest, request: Request) -> LoginResponse:
    """Exchange a username and password for a short-lived login token (JWT)."""
    services = get_services(request)
    # Failures are throttled per (username, client) and per client, never per username.
    result = await throttled_login(
        request,
        gatekeeper_of(request.app).login_limiter,
        services.settings,
        body.username,
        lambda: services.auth.login(body.username, body.password),
    )
    return LoginResponse(
        accessToken=result.token,
        tokenType="Bearer",
        expiresAtMs=result.expires_at_ms,
        expiresIn=result.expires_in_seconds(),
        user=UserOut.of(result.user),
    )


@router.get("/me", response_model=Me, summary="The caller")
async def me(principal: Caller = require("viewer")) -> Me:
    """Who the credentials belong to, with role and namespaces."""
    return Me(
        id=principal.id,
        kind=principal.kind,
        name=principal.name,
        role=principal.role,
        namespaces=list(principal.namespaces) if principal.namespaces is not None else None,
    )


@router.post(
    "/me/password",
    response_model=UserOut,
    summary="Change my password",
    responses=error_responses(401),
)
async def change_password(
    body: PasswordChange, request: Request, principal: Caller = require("viewer")
) -> UserOut:
    """Change the logged-in user's password; every older login token stops working."""
    services = get_services(request)
    user = await services.auth.change_password(principal, body.currentPassword, body.newPassword)
    return UserOut.of(user)


@router.post(
    "/users",
    response_model=UserOut,
    status_code=201,
    summary="Create a user",
    responses=error_responses(409),
)
async def create_user(
    body: UserCreate, request: Request, principal: Caller = require("admin")
) -> UserOut:
    """Create a user with a role and optional namespaces."""
    user = await get_services(request).auth.create_user(
        username=body.username,
        password=body.password,
        role=body.role,
        namespaces=body.namespaces,
        caller=principal,
    )
    return UserOut.of(user)


@router.get("/users", response_model=UserList, summary="List users")
async def list_users(request: Request, principal: Caller = require("admin")) -> UserList:
    """Users visible to the caller, by username."""
    users = await get_services(request).auth.list_users(caller=principal)
    return UserList(items=[UserOut.of(u) for u in users])


@router.get("/users/{user_id}", response_model=UserOut, summary="Get a user")
async def get_user(
    user_id: ObjectId, request: Request, principal: Caller = require("admin")
) -> UserOut:
    """One user."""
    return UserOut.of(await get_services(request).auth.get_user(user_id, caller=principal))


@router.patch("/users/{user_id}", response_model=UserOut, summary="Update a user")
async def update_user(
    user_id: ObjectId, body: UserUpdate, request: Request, principal: Caller = require("admin")
) -> UserOut:
    """Change role, namespaces (``null`` = all), ``disabled`` or the password."""
    user = await get_services(request).auth.update_user(
        user_id,
        role=body.role,
        namespaces=body.namespaces,
        set_namespaces="namespaces" in body.model_fields_set,
        disabled=body.disabled,
        password=body.password,
        caller=principal,
    )
    return UserOut.of(user)


@router.delete("/users/{user_id}", status_code=204, summary="Delete a user")
async def delete_user(
    user_id: ObjectId, request: Request, principal: Caller = require("admin")
) -> Response:
    """Delete a user; their login tokens stop working."""
    await get_services(request).auth.delete_user(user_id, caller=principal)
    return Response(status_code=204)


@router.post(
    "/tokens",
    response_model=TokenCreated,
    status_code=201,
    summary="Create an API key",
)
async def create_token(
    body: TokenCreate, request: Request, principal: Caller = require("admin")
) -> TokenCreated:
    """Create an API key. The response holds the key (``secret``) this one time only."""
    created = await get_services(request).auth.create_api_key(
        name=body.name,
        role=body.role,
        namespaces=body.namespaces,
        expires_at_ms=body.expiresAtMs,
        expires_in_seconds=body.expiresInSeconds,
        rate_limit_per_minute=body.rateLimitPerMinute,
        caller=principal,
    )
    return TokenCreated(token=TokenOut.of(created.info), secret=created.secret)


@router.get("/tokens", response_model=TokenList, summary="List API keys")
async def list_tokens(
    request: Request,
    principal: Caller = require("admin"),
    includeRevoked: Annotated[bool, Query()] = False,
) -> TokenList:
    """API keys visible to the caller, oldest first (revoked ones on request)."""
    keys = await get_services(request).auth.list_api_keys(
        include_revoked=includeRevoked, caller=principal
    )
    return TokenList(items=[TokenOut.of(k) for k in keys])


@router.get("/tokens/{token_id}", response_model=TokenOut, summary="Get an API key")
async def get_token(
    token_id: ObjectId, request: Request, principal: Caller = require("admin")
) -> TokenOut:
    """One API key (without the key)."""
    key = await get_services(request).auth.get_api_key(token_id, caller=principal)
    return TokenOut.of(key)


@router.delete("/tokens/{token_id}", response_model=TokenOut, summary="Revoke an API key")
async def revoke_token(
    token_id: ObjectId, request: Request, principal: Caller = require("admin")
) -> TokenOut:
    """Revoke an API key; it stops working immediately. Revoking twice is harmless."""
    key = await get_services(request).auth.revoke_api_key(token_id, caller=principal)
    return TokenOut.of(key)
