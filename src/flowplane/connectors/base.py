"""The connector contract: manifest, node context, wait directives and the ``@connector`` decorator.

A connector is an async callable ``fn(params, ctx) -> output`` plus a :class:`Manifest`. The
engine renders the node's ``params`` templates, validates them against ``inputSchema``, then
calls the connector. The output must be JSON-serialisable. To wait durably (for a human, a
signal, a timer or a child run) a connector returns a *directive* instead of an output; the
engine records the wait and later completes the node without calling the connector again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

ConnectorKind = Literal["action", "transform", "control", "wait", "trigger"]

_log = logging.getLogger("flowplane.connectors")


@dataclass(frozen=True)
class Manifest:
    """What a connector is, what it takes and what it returns."""

    type: str
    name: str
    category: str
    description: str
    kind: ConnectorKind = "action"
    input_schema: dict[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}, "additionalProperties": False}
    )
    output_schema: dict[str, Any] = field(default_factory=dict)
    secrets: tuple[str, ...] = ()
    examples: tuple[dict[str, Any], ...] = ()

    def summary(self) -> dict[str, Any]:
        """Return the short form served by ``GET /v1/connectors?detail=summary``."""
        return {
            "type": self.type,
            "name": self.name,
            "category": self.category,
            "description": self.description,
        }

    def to_dict(self) -> dict[str, Any]:
        """Return the full wire form (camelCase schema keys)."""
        return {
            **self.summary(),
            "kind": self.kind,
            "inputSchema": self.input_schema,
            "outputSchema": self.output_schema,
            "secrets": list(self.secrets),
            "examples": list(self.examples),
        }


# --- wait directives --------------------------------------------------------------------


@dataclass(frozen=True)
class WaitForApproval:
    """Pause the node in ``waiting-approval`` until someone approves or denies it."""

    title: str
    description: str = ""
    on_deny: Literal["fail", "continue"] = "fail"


@dataclass(frozen=True)
class WaitForSignal:
    """Pause the node in ``waiting-event`` until a signal ``name`` reaches the run."""

    name: str
    correlation_id: str | None = None


@dataclass(frozen=True)
class WaitForTimer:
    """Pause the node in ``waiting-timer`` until ``fires_at`` (aware UTC datetime)."""

    fires_at: dt.datetime
    output: Any = None


@dataclass(frozen=True)
class StartChildRun:
    """Start a sub-workflow run and wait for it; its output becomes this node's output.

    Exactly one of ``workflow`` (a stored workflow name in the run's namespace) and
    ``document`` (an inline workflow document) is set.
    """

    workflow: str | None = None
    document: dict[str, Any] | None = None
    input: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StopRun:
    """End the whole run now: ``finished`` (stop-and-succeed) or ``failed`` (stop-and-fail).

    The node itself finishes (or fails) with ``output``; nodes not yet started are skipped
    (``finished``) or cancelled (``failed``).
    """

    status: Literal["finished", "failed"]
    message: str = ""
    output: Any = None


Directive = WaitForApproval | WaitForSignal | WaitForTimer | StartChildRun | StopRun


# --- the node context -------------------------------------------------------------------


class NodeLogger:
    """Persists log lines for the node; they reach ``/logs`` and ``NodeLog`` events."""

    def __init__(self, sink: Callable[[str, str], None]) -> None:
        self._sink = sink

    def log(self, level: str, message: str) -> None:
        """Record ``message`` at ``level`` (debug, info, warning, error)."""
        self._sink(level, str(message))

    def debug(self, message: str) -> None:
        """Record a debug line."""
        self.log("debug", message)

    def info(self, message: str) -> None:
        """Record an info line."""
        self.log("info", message)

    def warning(self, message: str) -> None:
        """Record a warning line."""
        self.log("warning", message)

    def error(self, message: str) -> None:
        """Record an error line."""
        self.log("error", message)


class KVAccess(Protocol):
    """Key-value access for connectors, scoped to the run's namespace."""

    async def get(self, key: str) -> Any: ...  # pragma: no cover - protocol
    async def set(self, key: str, value: Any, ttl_seconds: float | None = None) -> None: ...
    async def delete(self, key: str) -> bool: ...
    async def increment(self, key: str, amount: float = 1) -> float: ...


@dataclass
class NodeContext:
    """Everything a connector may use while running one attempt of one node run.

    Attributes:
        run_id: the run.
        node_id: the node.
        iteration: the ``foreach`` iteration (0 for a plain node).
        attempt: the attempt number, 1-based.
        idempotency_key: ``"{run}:{node}:{iteration}"``; pass it to external systems so
            that a re-executed side effect (after a crash) happens effectively once.
        namespace: the run's namespace.
        workflow_name: the workflow's name.
        logger: persists log lines.
        credentials: resolved secret values by name (only the ones the workflow uses).
        settings: engine settings connectors may consult (network policy, folders, ...).
        kv: key-value access, when a store is attached.
    """

    run_id: str
    node_id: str
    iteration: int
    attempt: int
    namespace: str
    workflow_name: str
    logger: NodeLogger
    credentials: Mapping[str, str] = field(default_factory=dict)
    settings: Any = None
    kv: KVAccess | None = None
    heartbeat_fn: Callable[[], Awaitable[None]] | None = None
    cancel_event: asyncio.Event = field(default_factory=asyncio.Event)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def idempotency_key(self) -> str:
        """The key external systems can use to deduplicate this node run's side effects."""
        return f"{self.run_id}:{self.node_id}:{self.iteration}"

    async def heartbeat(self) -> None:
        """Extend the lease; long-running connectors call this periodically."""
        if self.heartbeat_fn is not None:
            await self.heartbeat_fn()

    @property
    def cancelled(self) -> bool:
        """Whether cancellation of the run was requested."""
        return self.cancel_event.is_set()

    def check_cancelled(self) -> None:
        """Raise ``asyncio.CancelledError`` when the run was cancelled."""
        if self.cancel_event.is_set():
            raise asyncio.CancelledError("run cancelled")


ConnectorFn = Callable[[dict[str, Any], NodeContext], Awaitable[Any]]


@runtime_checkable
class Connector(Protocol):
    """A connector: a manifest and an async call."""

    manifest: Manifest

    async def __call__(self, params: dict[str, Any], ctx: NodeContext) -> Any: ...


class FunctionConnector:
    """A connector made from an async function (see :func:`connector`)."""

    def __init__(self, manifest: Manifest, fn: ConnectorFn) -> None:
        self.manifest = manifest
        self._fn = fn
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    async def __call__(self, params: dict[str, Any], ctx: NodeContext) -> Any:
        """Run the connector."""
        return await self._fn(params, ctx)

    def __repr__(self) -> str:
        return f"<connector {self.manifest.type}>"


def connector(
    type: str,
    *,
    name: str | None = None,
    category: str | None = None,
    description: str = "",
    kind: ConnectorKind = "action",
    input_schema: dict[str, Any] | None = None,
    output_schema: dict[str, Any] | None = None,
    secrets: tuple[str, ...] | list[str] = (),
    examples: tuple[dict[str, Any], ...] | list[dict[str, Any]] = (),
) -> Callable[[ConnectorFn], FunctionConnector]:
    """Turn an async function ``fn(params, ctx)`` into a connector.

    Example::

        @connector("acme.greet", description="Say hello", input_schema={...})
        async def greet(params, ctx):
            ctx.logger.info("greeting")
            return {"message": f"hello {params['name']}"}

    Register it with :func:`flowplane.connectors.registry.register` or expose it through the
    ``flowplane.connectors`` entry-point group.
    """

    def wrap(fn: ConnectorFn) -> FunctionConnector:
        manifest = Manifest(
            type=type,
            name=name or type.rsplit(".", 1)[-1].replace("_", " ").title(),
            category=category or type.split(".", 1)[0],
            description=description or (fn.__doc__ or "").strip().split("\n")[0],
            kind=kind,
            input_schema=input_schema
            or {"type": "object", "properties": {}, "additionalProperties": True},
            output_schema=output_schema or {},
            secrets=tuple(secrets),
            examples=tuple(examples),
        )
        return FunctionConnector(manifest, fn)

    return wrap
