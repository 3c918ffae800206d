"""The front door: who is calling, how fast, and the start-up that makes auth work.

:func:`admit` (the gate of :class:`flowplane.api.edge.EdgeMiddleware`) authenticates
every request before routing, except the exact
open routes (``GET /health``, ``GET /readyz``, ``POST /v1/auth/login``, and the browser's pages:
``GET /``, ``/docs``, ``/openapi.json``, ``/ui/...``), compared on the
*raw* path: ``/health/``, ``//health``, ``/%68ealth`` and ``/v1/kv/xhealth`` all need a
token. So even a route that forgot its ``require(...)`` (or a path no route serves) is
closed to anonymous callers; ``require(role)`` then checks the role of the principal the
middleware cached in ``request.state``. Authenticated requests then take a token from the
caller's rate-limit bucket; anonymous and refused (401) ones take nothing.

Credentials: ``Authorization: Bearer <fp_ key or login JWT>`` (scheme case-insensitive),
``X-API-Key: <fp_ key>`` or Smithers' ``x-smithers-key: <fp_ key or JWT>``; exactly one of
them.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from starlette.datastructures import Headers

from flowplane.api.context import set_actor
from flowplane.api.problems import error_response
from flowplane.api.ratelimit import Limiter, limiter_of
from flowplane.errors import FlowplaneError, Unauthorized
from flowplane.security import passwords
from flowplane.security.tokens import API_KEY_PREFIX
from flowplane.services.auth import AuthService
from flowplane.services.caller import Caller, Role
from flowplane.services.container import Services
from flowplane.settings import Settings

OPEN_ROUTES: frozenset[tuple[str, bytes]] = frozenset(
    {
        ("GET", b"/health"),
        ("HEAD", b"/health"),
        ("GET", b"/readyz"),
        ("HEAD", b"/readyz"),
        ("POST", b"/v1/auth/login"),
        # workflowdev's surface (flowplane.api.workflowdev.OPEN_ROUTES).
        ("GET", b"/healthz"),
        ("HEAD", b"/healthz"),
        ("POST", b"/auth/login"),
        ("POST", b"/auth/register"),
        # The browser's pages (api/routes/ui.py): they hold no data; the UI signs in and
        # then calls the API with the user's token. Swagger UI reads the API description.
        ("GET", b"/"),
        ("HEAD", b"/"),
        ("GET", b"/docs"),
        ("GET", b"/openapi.json"),
    }
)
"""(method, raw path) pairs reachable without credentials. Compared exactly."""

OPEN_PATTERNS: tuple[tuple[str, re.Pattern[bytes]], ...] = (
    # Webhook deliveries come from other systems; the route checks the trigger's HMAC.
    ("POST", re.compile(rb"/v1/webhooks/[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")),
    ("POST", re.compile(rb"/api/v1/webhook/[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")),
    # The Smithers Gateway's webhook route (docs/surfaces/gateway.md): the same triggers.
    ("POST", re.compile(rb"/webhooks/[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")),
    # The built web UI's files (api/routes/ui.py).
    ("GET", re.compile(rb"/ui/(swagger/)?[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")),
)
"""(method, raw path pattern) pairs reachable without credentials (full match)."""

METRICS_PATH = b"/metrics"
METRICS_CALLER = Caller(id="metrics-token", kind="api_key", name="metrics-token", role="viewer")
"""Who ``FLOWPLANE_METRICS_TOKEN`` authenticates as: a viewer of every namespace, on
``GET /metrics`` only (anywhere else the token is no credential)."""

KEY_HEADERS = ("x-api-key", "x-smithers-key")
"""Headers that carry a key as it is: Flowplane's own and Smithers' (``x-smithers-key``)."""
_KEY_HEADERS_RAW = tuple(name.encode() for name in KEY_HEADERS)

GATEWAY_PATHS = (b"/v1/ws", b"/")
"""The WebSocket gateway's paths; it may authenticate in its first frame instead of headers."""
MAX_CREDENTIAL_CHARS = 4096
_log = logging.getLogger("flowplane.auth")


class AuthRequired(Unauthorized):
    """A 401 with the ``WWW-Authenticate`` challenge."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.headers = {"WWW-Authenticate": 'Bearer realm="flowplane"'}


@dataclass(frozen=True)
class Identity:
    """An authenticated caller and the rate limit that applies to it (0 = none)."""

    principal: Caller
    rate_limit_per_minute: int

    @property
    def bucket(self) -> str:
        """The rate-limit bucket key."""
        return f"{self.principal.kind}:{self.principal.id}"


def is_open(method: str, raw_path: bytes) -> bool:
    """Whether ``(method, raw_path)`` is one of the exact open routes."""
    path = raw_path.split(b"?", 1)[0]
    if (method, path) in OPEN_ROUTES:
        return True
    return any(m == method and p.fullmatch(path) for m, p in OPEN_PATTERNS)


def extract_credential(headers: Mapping[str, str] | Headers) -> str:
    """Return the one credential of a request; ``AuthRequired`` when missing or ambiguous."""
    if isinstance(headers, Headers):
        authorization = headers.getlist("authorization")
        api_keys = [key for name in KEY_HEADERS for key in headers.getlist(name)]
    else:
        lowered = {k.lower(): v for k, v in headers.items()}
        authorization = [lowered["authorization"]] if "authorization" in lowered else []
        api_keys = [lowered[name] for name in KEY_HEADERS if name in lowered]
    return _one_credential(authorization, api_keys)


def scope_credential(scope: Mapping[str, Any]) -> str:
    """:func:`extract_credential` straight from an ASGI scope's raw headers."""
    authorization: list[str] = []
    api_keys: list[str] = []
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            authorization.append(value.decode("latin-1"))
        elif name in _KEY_HEADERS_RAW:
            api_keys.append(value.decode("latin-1"))
    return _one_credential(authorization, api_keys)


def _one_credential(authorization: list[str], api_keys: list[str]) -> str:
    if not authorization and not api_keys:
        raise AuthRequired("credentials required: send 'Authorization: Bearer <token>'")
    if len(authorization) + len(api_keys) > 1:
        raise AuthRequired("send exactly one credential")
    if authorization:
        scheme, _, token = authorization[0].strip().partition(" ")
        if scheme.lower() != "bearer":
            raise AuthRequired("unsupported authorization scheme; use Bearer")
        credential = token.strip()
    else:
        credential = api_keys[0].strip()
    if not credential or len(credential) > MAX_CREDENTIAL_CHARS:
        raise AuthRequired("invalid or expired credentials")
    return credential


def _credentials(scope: dict[str, Any]) -> bool:
    return any(
        name == b"authorization" or name in _KEY_HEADERS_RAW for name, _ in scope.get("headers", ())
    )


class RequestAuthenticator:
    """Turns request headers into an :class:`Identity` (the ``Authenticator`` of ``deps``).

    Args:
        auth: the auth service.
        settings: for the per-role rate limits.
    """

    def __init__(self, auth: AuthService, settings: Settings) -> None:
        self.auth = auth
        self.settings = settings

    async def identify(self, headers: Mapping[str, str] | Headers) -> Identity:
        """Authenticate; raise ``AuthRequired`` (401) on any failure."""
        return await self.identify_credential(extract_credential(headers))

    async def identify_credential(self, credential: str) -> Identity:
        """Authenticate one credential; raise ``AuthRequired`` (401) on any failure."""
        try:
            if credential.startswith(API_KEY_PREFIX):
                key = await self.auth.authenticate_key(credential)
                principal = Caller(
                    id=key.id,
                    kind="api_key",
                    name=key.name,
                    role=_role(key.role),
                    namespaces=key.namespaces,
                )
                limit = key.rate_limit_per_minute
            else:
                user = await self.auth.authenticate_token(credential)
                principal = Caller(
                    id=user.id,
                    kind="user",
                    name=user.username,
                    role=_role(user.role),
                    namespaces=user.namespaces,
                )
                limit = None
        except Unauthorized as exc:
            raise AuthRequired(exc.detail) from exc
        if limit is None:
            limit = self.settings.rate_limit_per_minute.get(principal.role, 0)
        return Identity(principal, limit)

    async def authenticate(self, request: Request) -> Caller:
        """Authenticate a request (used when the middleware did not run, e.g. WebSockets)."""
        return (await self.identify(request.headers)).principal


_ROLES: dict[str, Role] = {
    "viewer": "viewer",
    "executor": "executor",
    "editor": "editor",
    "admin": "admin",
}


def _role(value: str) -> Role:
    if value not in _ROLES:
        raise Unauthorized("invalid or expired credentials")
    return _ROLES[value]


async def admit(scope: dict[str, Any], receive: Any, send: Any) -> list[tuple[bytes, bytes]] | None:
    """The security gate for one connection: authenticate everything but the open routes,
    then rate-limit (called by :class:`flowplane.api.edge.EdgeMiddleware`).

    Returns the headers the response must carry (the ``RateLimit`` ones, possibly none) when
    the request may go on, or ``None`` when the gate has answered it (401 or 429; a
    WebSocket is closed with 4401 or 4429).
    """
    if scope["type"] not in ("http", "websocket"):
        return _NONE
    method = scope.get("method", "GET")
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
    if scope["type"] == "http" and is_open(method, raw_path):
        return _NONE
    if scope["type"] == "websocket" and raw_path in GATEWAY_PATHS and not _credentials(scope):
        # Browsers cannot set headers on an upgrade: the gateway authenticates the
        # first frame instead (``connect`` with a token) and refuses anything else.
        return _NONE
    gatekeeper = getattr(scope["app"].state, "gatekeeper", None)
    try:
        if not isinstance(gatekeeper, Gatekeeper):
            # Fail closed: without an authenticator nobody gets in.
            raise AuthRequired("authentication is not configured")
        credential = scope_credential(scope)
        if gatekeeper.is_metrics_scrape(method, raw_path, credential):
            scope.setdefault("state", {})["principal"] = METRICS_CALLER
            return _NONE
        identity = await gatekeeper.authenticator.identify_credential(credential)
        decision = await gatekeeper.rate_limiter.check_async(
            identity.bucket, identity.rate_limit_per_minute
        )
    except FlowplaneError as exc:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4401 if exc.status == 401 else 4429})
            return None
        response = error_response(exc, getattr(exc, "headers", None), path=scope["path"])
        await response(scope, receive, send)
        return None
    scope.setdefault("state", {})["principal"] = identity.principal
    # Services read who is acting (for the audit log) from the request context.
    set_actor(identity.principal.name, identity.principal.kind, identity.principal.id)
    if decision is None or scope["type"] != "http":
        return _NONE
    return [(k.lower().encode(), v.encode()) for k, v in decision.headers().items()]


_NONE: list[tuple[bytes, bytes]] = []
"""No extra headers (shared: callers only read it)."""


@dataclass(frozen=True)
class Gatekeeper:
    """The API's own start-up state: who is calling and how fast they may call.

    Held on ``app.state.gatekeeper`` (set by :func:`start_security`); the security
    middleware, the WebSocket gateway and login read it. Until it is set nobody gets in.
    """

    authenticator: RequestAuthenticator
    rate_limiter: Limiter
    login_limiter: Limiter
    metrics_token: str | None = None

    def is_metrics_scrape(self, method: str, raw_path: bytes, credential: str) -> bool:
        """Whether this is ``GET /metrics`` with the dedicated metrics token."""
        return (
            self.metrics_token is not None
            and method in ("GET", "HEAD")
            and raw_path.split(b"?", 1)[0] == METRICS_PATH
            and hmac.compare_digest(credential.encode(), self.metrics_token.encode())
        )


def gatekeeper_of(app: Any) -> Gatekeeper:
    """The app's :class:`Gatekeeper`; ``AuthRequired`` when security has not started."""
    gatekeeper = getattr(app.state, "gatekeeper", None)
    if not isinstance(gatekeeper, Gatekeeper):
        raise AuthRequired("authentication is not configured")
    return gatekeeper


async def start_security(app: FastAPI, services: Services) -> None:
    """Install the authenticator and make sure an admin can get in (first start).

    When no API key has ever existed, an admin key is created and printed once to stderr;
    ``FLOWPLANE_ADMIN_KEY`` makes that key deterministic instead.
    """
    auth = services.auth
    # The dummy hash a login of an unknown user is checked against, made beside the start.
    asyncio.get_running_loop().run_in_executor(None, passwords.prepare)
    await auth.jwt_secret()
    key = await auth.bootstrap(services.settings.admin_key)
    if key is not None:
        print(f"Admin API key (shown once): {key}", file=sys.stderr, flush=True)
        _log.warning("created the first admin API key (printed once on stderr)")
    app.state.gatekeeper = Gatekeeper(
        authenticator=RequestAuthenticator(auth, services.settings),
        rate_limiter=limiter_of(services.settings, "requests"),
        login_limiter=limiter_of(services.settings, "logins"),
        metrics_token=services.settings.metrics_token,
    )
