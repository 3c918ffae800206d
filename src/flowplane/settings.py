"""Configuration: ``FLOWPLANE_*`` environment variables, overridable by CLI flags."""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_ROLES = frozenset({"viewer", "executor", "editor", "admin"})
# Host names, IPs (v4 and bracketed v6), ports, CIDRs and ``*.`` wildcards use only these.
_HOST_NAME = re.compile(
    r"(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.?"
)
_HOST_ENTRY_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:[]/*%"
)


def split_list(value: Any) -> Any:
    """Read a list-valued setting: a JSON list of strings or comma-separated text.

    A value that starts with ``["`` (or is ``[]``) must be a JSON list of strings (anything
    else is refused, rather than kept as one junk entry); other text is split on commas,
    blanks dropped.

    Raises:
        ValueError: a ``[...]`` value that is not a JSON list of strings.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    # ``[::1]:8080,...`` is comma-separated text; ``["...`` and ``[]`` are JSON.
    if text.startswith("[") and text[1:].lstrip()[:1] in ('"', "]"):
        try:
            items = json.loads(text)
        except ValueError:
            raise ValueError(f"not a JSON list of strings: {value!r}") from None
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ValueError(f"not a JSON list of strings: {value!r}")
        return [item.strip() for item in items if item.strip()]
    return [part.strip() for part in text.split(",") if part.strip()]


_AGE = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_AGE_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
RETENTION_KEYS = ("finished", "failed")
"""The status groups a retention policy names: ``finished``; ``failed`` (failed, timed-out
and cancelled runs)."""


def parse_age_ms(value: str) -> int:
    """Read a retention age (``90s``, ``30m``, ``12h``, ``30d``, ``8w``) in milliseconds.

    Raises:
        ValueError: not a whole number with one of those units, or zero.
    """
    match = _AGE.match(value)
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"invalid age {value!r}: use a whole number and a unit, e.g. 12h, 30d, 8w")
    return int(match.group(1)) * _AGE_MS[match.group(2)]


def _brackets_ok(entry: str) -> bool:
    """Whether brackets in an ``allow_hosts`` entry enclose an IPv6 address, as in URLs."""
    if "[" not in entry and "]" not in entry:
        return True
    inside, closed, _rest = entry.removeprefix("[").partition("]")
    if not entry.startswith("[") or not closed:
        return False
    try:
        return ipaddress.ip_address(inside).version == 6
    except ValueError:
        return False


class Settings(BaseSettings):
    """Every setting of a Flowplane process. Each field maps to ``FLOWPLANE_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="FLOWPLANE_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./flowplane.db",
        description="SQLAlchemy-style URL: sqlite:///path.db or postgresql://user@host/db.",
    )
    database_schema: str = Field(
        default="flowplane",
        pattern=r"^[a-z_][a-z0-9_]{0,62}$",
        description="PostgreSQL schema holding the tables (ignored on SQLite).",
    )
    root: Path = Field(
        default=Path("."), description="Folder that `workflowPath` and `flow.run` paths live in."
    )
    host: str = Field(default="127.0.0.1", description="HTTP bind address.")
    port: int = Field(default=8080, ge=0, le=65535, description="HTTP port.")
    workers: int = Field(
        default=1, ge=0, description="Embedded worker loops in `serve` (0 = API only)."
    )
    gc_threshold: int = Field(
        default=50_000,
        ge=0,
        le=10_000_000,
        description="`serve` and `worker`: the objects alive once started are frozen out of "
        "Python's garbage collector (`gc.freeze`) and the youngest generation is collected "
        "after this many allocations instead of 700 (0 = Python's defaults).",
    )
    worker_concurrency: int = Field(
        default=16, ge=1, le=1024, description="Node runs one worker executes at once."
    )
    lease_seconds: float = Field(
        default=30.0, gt=0, description="Lease on a claimed node run; heartbeats extend it."
    )
    poll_interval_seconds: float = Field(
        default=1.0, gt=0, description="Longest idle wait between claims (wake-ups cut it)."
    )
    reaper_interval_seconds: float = Field(
        default=5.0, gt=0, description="How often expired leases and run timeouts are checked."
    )
    secret_key: str | None = Field(
        default=None,
        description="Master key for credentials (base64 of 32 bytes). Unset: the key in "
        "`<data dir>/master.key`, which `serve` on SQLite generates on first start.",
    )
    jwt_secret: str | None = Field(
        default=None,
        description="HS256 key for login tokens (at least 32 random bytes); generated and "
        "stored in the database when unset.",
    )
    jwt_ttl_seconds: int = Field(
        default=3600, ge=60, le=7 * 86400, description="Lifetime of a login token."
    )
    open_first_registration: bool = Field(
        default=False,
        description="Let `POST /auth/register` (workflowdev) create the first user without "
        "credentials while the server has no user; afterwards registering needs an admin.",
    )
    admin_key: str | None = Field(
        default=None,
        description="An `fp_...` admin API key created on start when missing (scripts, tests).",
    )
    rate_limit_per_minute: dict[str, int] = Field(
        default_factory=lambda: {"viewer": 600, "executor": 600, "editor": 1200, "admin": 1200},
        description="Requests per minute per API key or user, by role (JSON; 0 = unlimited). "
        "A key's own limit overrides it.",
    )
    run_cache_seconds: float = Field(
        default=2.0,
        ge=0,
        le=3600,
        description="How long a run's detail (settled or live), a page of `GET /v1/runs` and a "
        "new run's events (a run stream's start, docs/events.md) "
        "may be served from memory; changes made through this process show at once, through "
        "another process on PostgreSQL within milliseconds (LISTEN), on SQLite within this "
        "time (0 = off).",
    )
    max_foreach_items: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="Most items one `foreach` may expand to; a node whose list is longer fails "
        "(`foreach_too_large`, not retried).",
    )
    max_run_detail_nodes: int = Field(
        default=1_000,
        ge=1,
        le=100_000,
        description="Most node runs `GET /v1/runs/{id}` lists; a bigger run's detail lists the "
        "first ones, counts all (`nodeRunsTotal`) and pages the rest at "
        "`GET /v1/runs/{id}/nodes` (`nodesNextCursor`).",
    )
    webhook_reply_timeout_seconds: float = Field(
        default=30.0,
        ge=0,
        le=600,
        description="How long a webhook delivery waits for the run's `http.webhook_response` "
        "node before answering 202 `{runId}` (0 = never wait).",
    )
    max_body_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, description="Largest accepted request body (413)."
    )
    max_json_depth: int = Field(
        default=64, ge=2, le=1000, description="Deepest accepted JSON nesting (400)."
    )
    ws_max_connections: int = Field(
        default=1000, ge=1, description="WebSocket connections one process accepts on `/v1/ws`."
    )
    ws_max_message_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Largest accepted WebSocket message (1009)."
    )
    ws_heartbeat_ms: int = Field(
        default=15_000, ge=100, description="Interval of `tick` events on `/v1/ws`."
    )
    allow_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Hosts or CIDRs outbound connectors may reach despite the network policy "
        '(comma-separated or a JSON list: `api.internal,10.0.0.0/8` or `["127.0.0.1:8080"]`).',
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses or CIDRs of reverse proxies whose `X-Forwarded-For`/`Forwarded` "
        "headers name the client (comma-separated or a JSON list); from anyone else those "
        "headers are ignored. Used by the login and webhook limits.",
    )
    webhook_rate_per_minute: int = Field(
        default=120,
        ge=0,
        le=1_000_000,
        description="Deliveries one webhook trigger accepts per minute (a bucket that refills "
        "at this rate; 429 past it; 0 = unlimited). Signed triggers count only deliveries "
        "whose signature verified.",
    )
    webhook_client_rate_per_minute: int = Field(
        default=600,
        ge=0,
        le=1_000_000,
        description="Webhook deliveries one client address may send per minute, to all "
        "triggers together, signed or not (429 past it; 0 = unlimited).",
    )
    enable_shell: bool = Field(default=False, description="Allow the `system.shell` connector.")
    data_dir: Path = Field(
        default=Path("./flowplane-data"), description="Artifacts and per-namespace files."
    )
    log_level: str = Field(default="info", description="Python log level.")
    opentelemetry: bool = Field(
        default=False,
        description="Emit OpenTelemetry traces through the globally configured providers: "
        "FastAPI's HTTP spans, a span per run (its `traceparent` stored with the run) and "
        "per node attempt, and `traceparent` on outgoing `http.request` calls (off: none of "
        "it is called; Prometheus `/metrics` is always on).",
    )

    log_format: Literal["text", "json"] = Field(
        default="text",
        description="`text` (human lines) or `json` (one JSON object a line, with `runId`, "
        "`nodeId` and `requestId` where known) on stderr.",
    )
    retention_finished: str | None = Field(
        default=None,
        description="Delete `finished` runs this long after they settled (`30d`, `12h`, "
        "`8w`; unset = keep forever). Applied by every `serve` and `worker` process.",
    )
    retention_failed: str | None = Field(
        default=None,
        description="Delete `failed`, `timed-out` and `cancelled` runs this long after they "
        "settled (unset = keep forever).",
    )
    retention_namespaces: dict[str, dict[str, str | None]] = Field(
        default_factory=dict,
        description='Per-namespace overrides (JSON): `{"ci": {"finished": "1d"}, "audit": '
        '{"finished": null, "failed": null}}`; a key a namespace names replaces the default '
        "(null = keep forever), the others keep it.",
    )
    retention_interval_seconds: float = Field(
        default=300.0, ge=1, le=86_400, description="How often the retention task prunes."
    )
    retention_batch_size: int = Field(
        default=100,
        ge=1,
        le=10_000,
        description="Runs deleted per transaction by the retention task and `db prune` "
        "(small batches keep transactions short, so workers are never held up).",
    )
    metrics_token: str | None = Field(
        default=None,
        description="A bearer token that may read `/metrics` (and nothing else), for "
        "Prometheus; at least 16 characters.",
    )
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="Serve `/metrics` without authentication on this port too (bound to "
        "`FLOWPLANE_HOST`), for a scraper on a private network.",
    )
    rate_limit_storage: str = Field(
        default="memory",
        description="Where request and login limits are counted: `memory` (per process, "
        "the default) or a `redis://host:port/db` URL shared by every API process.",
    )

    @field_validator("retention_finished", "retention_failed")
    @classmethod
    def _valid_age(cls, value: str | None) -> str | None:
        if value is not None:
            parse_age_ms(value)
        return value

    @field_validator("retention_namespaces")
    @classmethod
    def _valid_policies(
        cls, value: dict[str, dict[str, str | None]]
    ) -> dict[str, dict[str, str | None]]:
        for namespace, policy in value.items():
            unknown = sorted(set(policy) - set(RETENTION_KEYS))
            if unknown:
                raise ValueError(
                    f"FLOWPLANE_RETENTION_NAMESPACES[{namespace!r}]: unknown key(s) {unknown}; "
                    f"keys are {list(RETENTION_KEYS)}"
                )
            for age in policy.values():
                if age is not None:
                    parse_age_ms(age)
        return value

    @field_validator("metrics_token")
    @classmethod
    def _long_metrics_token(cls, value: str | None) -> str | None:
        if value is not None and len(value) < 16:
            raise ValueError("FLOWPLANE_METRICS_TOKEN must be at least 16 characters")
        return value

    @field_validator("rate_limit_storage")
    @classmethod
    def _valid_limit_storage(cls, value: str) -> str:
        if value != "memory" and not value.startswith(("redis://", "rediss://")):
            raise ValueError(
                "FLOWPLANE_RATE_LIMIT_STORAGE: `memory` or a redis:// URL, not " + repr(value)
            )
        return value

    @field_validator("allow_hosts", "trusted_proxies", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        return split_list(value)

    @field_validator("allow_hosts")
    @classmethod
    def _valid_hosts(cls, value: list[str]) -> list[str]:
        # Imported here: the network policy pulls in httpx, which settings otherwise need not.
        from flowplane.security.ssrf import AllowEntry

        for entry in value:
            if not _HOST_ENTRY_CHARS.issuperset(entry) or not _brackets_ok(entry):
                raise ValueError(f"FLOWPLANE_ALLOW_HOSTS: invalid entry {entry!r}")
            try:
                parsed = AllowEntry.parse(entry)
            except ValueError as exc:
                raise ValueError(f"FLOWPLANE_ALLOW_HOSTS: {exc}") from None
            name = parsed.host or parsed.wildcard_suffix
            if name is not None and not _HOST_NAME.fullmatch(name):
                raise ValueError(f"FLOWPLANE_ALLOW_HOSTS: invalid host name in {entry!r}")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_proxies(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"FLOWPLANE_TRUSTED_PROXIES: {entry!r} is not an IP address or CIDR"
                ) from None
        return value

    @field_validator("rate_limit_per_minute")
    @classmethod
    def _known_roles(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(value) - _ROLES)
        if unknown:
            raise ValueError(
                f"FLOWPLANE_RATE_LIMIT_PER_MINUTE: unknown role(s) {unknown}; "
                f"roles are {sorted(_ROLES)}"
            )
        if any(limit < 0 for limit in value.values()):
            raise ValueError("FLOWPLANE_RATE_LIMIT_PER_MINUTE: limits must be >= 0")
        return value

    @field_validator("jwt_secret")
    @classmethod
    def _strong_jwt_secret(cls, value: str | None) -> str | None:
        if value is not None and (len(value.encode()) < 32 or len(set(value)) < 8):
            raise ValueError("FLOWPLANE_JWT_SECRET must be at least 32 random bytes")
        return value

    @property
    def is_postgres(self) -> bool:
        """Whether the database is PostgreSQL."""
        return self.database_url.startswith(("postgresql", "postgres"))
