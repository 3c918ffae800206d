"""Executing one claimed node run: from its template context to its outcome.

Reads the outputs its templates refer to (cached per run), evaluates ``when`` and
``foreach``, renders and checks its params, calls the connector under the node's timeout,
and turns what the connector returned (an output, a directive, an error) into an
:class:`~flowplane.engine.completion.Outcome`, with secrets redacted. Recording the outcome
is the worker's (:mod:`flowplane.engine.worker`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from flowplane.connectors.base import (
    NodeContext,
    NodeLogger,
    StartChildRun,
    StopRun,
    WaitForApproval,
    WaitForSignal,
    WaitForTimer,
)
from flowplane.connectors.registry import Registry
from flowplane.engine import starting, transitions
from flowplane.engine.outage import until_stored
from flowplane.engine.outputs import normalise_output
from flowplane.engine.params import resolve_params
from flowplane.engine.plan import Plan
from flowplane.engine.secrets import (
    DEFAULT_POLICY,
    DEFERRED_PARAM,
    SecretsProvider,
    UseSite,
    check_use,
    secret_params,
    used_here,
)
from flowplane.errors import (
    ConnectorError,
    CredentialMissing,
    DatabaseUnavailable,
    FlowplaneError,
    ForeachTooLarge,
    NodeTimeout,
    StorageError,
    TemplateError,
)
from flowplane.model import templates
from flowplane.security.redaction import Redactor
from flowplane.settings import Settings
from flowplane.store.base import Store
from flowplane.store.records import NodeRunRecord, RunRecord

# The redactor of a node run without secrets (it replaces nothing; shared, never changed).
NO_SECRETS = Redactor(())


class RunInfo:
    """What a worker caches about a run: immutable facts and outputs it has seen."""

    def __init__(self, row: RunRecord, plan: Plan) -> None:
        self.id: str = row.id
        self.namespace: str = row.namespace
        self.input: Any = row.input
        self.workflow_name: str = row.workflow_name
        # The stored workflow the run was started from (``None``: an inline document).
        self.workflow_id: str | None = row.workflow_id
        self.workflow_version: int | None = row.workflow_version
        self.started_at_ms: int | None = row.started_at_ms
        # The W3C traceparent of the run's span (tracing on; see flowplane.engine.tracing).
        self.trace_context: str | None = row.trace_context
        self.plan = plan
        self.outputs: dict[str, dict[str, Any]] = {}


class NodeExecutor:
    """Executes claimed node runs for a worker (which owns their leases and cancellation)."""

    def __init__(
        self,
        store: Store,
        *,
        settings: Settings,
        registry: Registry,
        secrets: SecretsProvider,
        kv_factory: Any,
        heartbeat: Callable[[NodeRunRecord], Awaitable[None]],
    ) -> None:
        self.store = store
        self.settings = settings
        self.registry = registry
        self.secrets = secrets
        self.kv_factory = kv_factory
        # Extends the lease of a node run (a connector's ``ctx.heartbeat()``).
        self.heartbeat = heartbeat

    async def produce(
        self,
        info: RunInfo,
        row: NodeRunRecord,
        logs: list[tuple[int, str, str]],
        cancel_event: asyncio.Event,
    ) -> tuple[transitions.Outcome, Redactor]:
        """Execute ``row`` (claimed) of the run ``info``: its outcome, and the redactor of
        the secrets it was given (for its log lines)."""
        plan = info.plan
        node = plan.node(row.node_id)
        if transitions.wait_row_is_timer(row):
            output = (row.wait or {}).get("output")
            return transitions.Outcome(kind="success", output=output), NO_SECRETS
        names = plan.secrets[node.id]
        if names:
            try:
                await self._check_secret_uses(info, node.id, node.type, names)
            except StorageError:
                raise  # as resolving the values: the worker's business, not the node's
            except FlowplaneError as exc:  # a policy refusal, an unknown connector
                return _failure(exc.to_dict(), False, NO_SECRETS), NO_SECRETS
        secret_values = await until_stored(
            lambda: self.secrets.resolve(info.namespace, names),
            what="resolving secrets",
        )
        missing = self._missing_secrets(info, node.id, node.type, names, secret_values)
        if missing:
            return _failure(missing.to_dict(), False, NO_SECRETS), NO_SECRETS
        redactor = Redactor(secret_values.values()) if secret_values else NO_SECRETS
        outcome = await self._produce_with(info, row, logs, secret_values, redactor, cancel_event)
        return outcome, redactor

    def _missing_secrets(
        self,
        info: RunInfo,
        node_id: str,
        node_type: str,
        names: frozenset[str],
        found: Mapping[str, str],
    ) -> CredentialMissing | None:
        """The error naming the credentials this node uses that exist nowhere (``None``
        when all do; names used only in a child run's document are that run's business)."""
        if not names or names.issubset(found):
            return None
        deferred = secret_params(self.registry.get(node_type).manifest.input_schema, DEFERRED_PARAM)
        uses = info.plan.secret_uses.get(node_id, {})
        missing = sorted(
            name
            for name in names
            if name and name not in found and name in uses and used_here(uses[name], deferred)
        )
        if not missing:
            return None
        listed = ", ".join(repr(n) for n in missing)
        first = missing[0]
        return CredentialMissing(
            f"node {node_id!r} uses credential{'s' if len(missing) > 1 else ''} {listed}, "
            f"not stored in namespace {info.namespace!r}: store it with "
            f"`flowplane secrets set {first} -n {info.namespace}` or POST /v1/credentials "
            f"(or set FLOWPLANE_SECRET_{first} for local runs)",
            credentials=missing,
            namespace=info.namespace,
            node_id=node_id,
        )

    async def _check_secret_uses(
        self, info: RunInfo, node_id: str, node_type: str, names: frozenset[str]
    ) -> None:
        """Refuse (before any value is decrypted) a use of a secret its policy forbids."""
        policies = await until_stored(
            lambda: self.secrets.policies(info.namespace, names), what="reading secret policies"
        )
        schema = self.registry.get(node_type).manifest.input_schema
        site = UseSite(
            node_id=node_id,
            node_type=node_type,
            workflow_name=info.workflow_name,
            workflow_id=info.workflow_id,
            secret_params=secret_params(schema),
            deferred_params=secret_params(schema, DEFERRED_PARAM),
        )
        uses = info.plan.secret_uses[node_id]
        for name in sorted(names):
            check_use(name, uses[name], policies.get(name, DEFAULT_POLICY), site)

    async def _produce_with(
        self,
        info: RunInfo,
        row: NodeRunRecord,
        logs: list[tuple[int, str, str]],
        secret_values: dict[str, str],
        redactor: Redactor,
        cancel_event: asyncio.Event,
    ) -> transitions.Outcome:
        plan = info.plan
        node = plan.node(row.node_id)
        try:
            refs = plan.refs[node.id]
            if refs:
                await self._load_outputs(info, refs)
            context = self._context(info, row, refs, secret_values)
            is_level = row.iteration == plan.level_iteration(node.id)
            if is_level and node.when is not None:
                if not templates.truthy(templates.evaluate(node.when, context)):
                    return transitions.Outcome(kind="skip")
            if is_level and node.foreach is not None:
                items = (
                    node.foreach
                    if isinstance(node.foreach, list)
                    else templates.evaluate(node.foreach, context)
                )
                if not isinstance(items, list | tuple):
                    raise TemplateError(
                        f"foreach of node {node.id!r} must give a list, got {type(items).__name__}"
                    )
                limit = self.settings.max_foreach_items
                if len(items) > limit:
                    raise ForeachTooLarge(
                        f"foreach of node {node.id!r} gave {len(items):,} items, more than "
                        f"the limit of {limit:,} (FLOWPLANE_MAX_FOREACH_ITEMS)",
                        items=len(items),
                        limit=limit,
                    )
                return transitions.Outcome(kind="expand", items=list(items))
            connector = self.registry.get(node.type)
            rendered = resolve_params(node, connector.manifest.input_schema, context)
            ctx = NodeContext(
                run_id=info.id,
                node_id=node.id,
                iteration=row.iteration,
                attempt=row.attempt,
                namespace=info.namespace,
                workflow_name=info.workflow_name,
                logger=NodeLogger(
                    lambda lvl, msg: logs.append((int(time.time() * 1000), lvl, msg))
                ),
                credentials=secret_values,
                settings=self.settings,
                kv=self.kv_factory(info.namespace) if self.kv_factory else None,
                heartbeat_fn=lambda: self.heartbeat(row),
                cancel_event=cancel_event,
                extras={"template_context": context},
            )
            timeout = node.timeout_seconds
            try:
                if timeout is None:  # asyncio.timeout(None) would never expire
                    result = await connector(rendered, ctx)
                else:
                    async with asyncio.timeout(timeout):
                        result = await connector(rendered, ctx)
            except TimeoutError as exc:
                raise NodeTimeout(
                    f"node {node.id!r} exceeded its timeout of {node.timeout}"
                ) from exc
            if isinstance(result, _DIRECTIVES):
                return await self._directive_outcome(info, row, result, redactor)
            return transitions.Outcome(
                kind="success", output=normalise_output(redactor.value(result))
            )
        except ConnectorError as exc:
            return _failure(exc.to_dict(), exc.retryable, redactor)
        except DatabaseUnavailable as exc:  # (a connector's own store access): transient
            return _failure(exc.to_dict(), True, redactor)
        except FlowplaneError as exc:
            return _failure(exc.to_dict(), False, redactor)
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            return _failure({"code": "connector_error", "message": message}, True, redactor)

    async def _directive_outcome(
        self, info: RunInfo, row: NodeRunRecord, result: Any, redactor: Redactor
    ) -> transitions.Outcome:
        if isinstance(result, WaitForApproval | WaitForSignal | WaitForTimer | StopRun):
            if isinstance(result, StopRun):
                result = StopRun(
                    result.status, redactor.text(result.message), redactor.value(result.output)
                )
            return transitions.Outcome(kind="directive", directive=result)
        if isinstance(result, StartChildRun):
            document = result.document
            if document is None:
                name = result.workflow or ""
                stored = await self.store.read(lambda tx: tx.workflow_by_name(info.namespace, name))
                if stored is None:
                    raise ConnectorError(
                        f"sub-workflow {name!r} not found in namespace {info.namespace!r}",
                        retryable=False,
                    )
                document = stored.document
            document = {**document, "namespace": info.namespace}
            child = starting.prepare(
                document, result.input, self.registry, namespace=info.namespace
            )
            return transitions.Outcome(
                kind="directive",
                directive=StartChildRun(
                    workflow=child.workflow.name, document=None, input=child.input
                ),
                child=child,
            )
        return transitions.Outcome(kind="success", output=normalise_output(redactor.value(result)))

    async def _load_outputs(self, info: RunInfo, refs: frozenset[str]) -> None:
        """Read the settled outputs of ``refs`` the run's cache does not hold yet."""
        missing = [ref for ref in refs if ref not in info.outputs]
        if missing:
            loaded = await until_stored(
                lambda: self.store.read(lambda tx: tx.node_outputs(info.id, missing)),
                what="reading outputs",
            )
            for (node_id, iteration), (status, output, error) in loaded.items():
                if iteration == info.plan.level_iteration(node_id):
                    entry = {"output": output, "status": status, "error": error}
                    if status in ("finished", "failed", "skipped"):
                        info.outputs[node_id] = entry

    def _context(
        self, info: RunInfo, row: NodeRunRecord, refs: frozenset[str], secret_values: dict[str, str]
    ) -> dict[str, Any]:
        """The template context of ``row`` (outputs of ``refs`` as cached, else pending)."""
        nodes = {ref: info.outputs.get(ref, {"output": None, "status": "pending"}) for ref in refs}
        context: dict[str, Any] = {
            "input": info.input,
            "nodes": nodes,
            "secrets": secret_values,
            "run": {
                "id": info.id,
                "attempt": row.attempt,
                "startedAt": info.started_at_ms,
                "iteration": row.iteration,
            },
            "workflow": {
                "name": info.workflow_name,
                "namespace": info.namespace,
                "version": info.workflow_version,
            },
        }
        if row.iteration >= 0 and row.node_id in info.plan.foreach:
            context["item"] = row.item
            context["index"] = row.iteration
        return context


def _failure(error: dict[str, Any], retryable: bool, redactor: Redactor) -> transitions.Outcome:
    return transitions.Outcome(kind="failure", error=redactor.value(error), retryable=retryable)


_DIRECTIVES = (WaitForApproval, WaitForSignal, WaitForTimer, StopRun, StartChildRun)
