"""Configuration: ``FLOWPLANE_*`` environment variables, overridable by CLI flags."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


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
        default=None, description="Master key for credentials (base64 of 32 bytes)."
    )
    jwt_secret: str | None = Field(
        default=None,
        description="HS256 key for login tokens (at least 32 random bytes); generated and "
        "stored in the database when unset.",
    )
    jwt_ttl_seconds: int = Field(
        default=3600, ge=60, le=7 * 86400, description="Lifetime of a login token."
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
        description="How long the rendered detail of a settled run (run and nodes terminal) "
        "may be served from memory; changes made through this process show at once, through "
        "another process within this time (0 = off).",
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
        description="Hosts or CIDRs outbound connectors may reach despite the network policy.",
    )
    enable_shell: bool = Field(default=False, description="Allow the `system.shell` connector.")
    data_dir: Path = Field(
        default=Path("./flowplane-data"), description="Artifacts and per-namespace files."
    )
    log_level: str = Field(default="info", description="Python log level.")
    opentelemetry: bool = Field(
        default=False,
        description="Emit FastAPI's native OpenTelemetry spans, metrics and logs through the "
        "globally configured providers (off: no per-request check; Prometheus `/metrics` "
        "is always on).",
    )

    @field_validator("allow_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
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
