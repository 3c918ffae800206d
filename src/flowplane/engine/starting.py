"""Starting a run: the one way, whoever starts it.

The API, serve mode and webhooks (through ``RunService.start``), retry and fork, the cron
scheduler and ``flow.run`` child runs all start a run in the same two steps:

1. :func:`prepare`, outside any transaction: the workflow document validated against the
   connectors (a document validated before comes from
   :data:`~flowplane.engine.plan.validated`, with its shared plan), and the run input checked
   against the workflow's inputs;
2. :func:`start`, inside the caller's transaction: the run, its node runs and its first
   events inserted (:func:`~flowplane.engine.dispatch.dispatch`), atomically with whatever
   else the caller writes (an audit entry, a schedule slot, the parent's wait).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flowplane.engine.dispatch import DispatchRequest, dispatch
from flowplane.engine.plan import Plan, Validated, ValidatedCache, validated
from flowplane.model.document import Workflow
from flowplane.model.graph import Catalog, check_workflow
from flowplane.model.inputs import validate_input
from flowplane.store.records import RunRecord, WorkflowHead
from flowplane.store.tx import Tx


@dataclass(frozen=True, slots=True)
class Prepared:
    """A run ready to start: its checked workflow, pinned document and checked input."""

    workflow: Workflow
    document: dict[str, Any]
    input: dict[str, Any]
    # The plan of ``workflow`` when it came from the validated cache (shared by the runs
    # of the document); ``None``: dispatch builds one.
    plan: Plan | None = None


def prepare(
    workflow: Workflow | dict[str, Any],
    run_input: Any,
    registry: Catalog,
    *,
    namespace: str | None = None,
) -> Prepared:
    """Validate ``workflow`` (in ``namespace`` when given) and ``run_input`` against it.

    Raises:
        FlowplaneError: the workflow or the input is invalid (``pydantic.ValidationError``,
            a ``ValueError``, for a document that is not a workflow).
    """
    wf, document, plan = validate_workflow(workflow, registry, namespace)
    return Prepared(wf, document, validate_input(wf.inputs, run_input), plan)


def validate_workflow(
    workflow: Workflow | dict[str, Any], registry: Catalog, namespace: str | None = None
) -> tuple[Workflow, dict[str, Any], Plan | None]:
    """The checked workflow, its document and (for a cached document) its plan.

    A document (a mapping) that passed validation before, against the same connectors,
    is not validated again (see :class:`~flowplane.engine.plan.ValidatedCache`).
    """
    key = None if isinstance(workflow, Workflow) else ValidatedCache.key(workflow, namespace)
    if key is not None:
        hit = validated.get(key, registry)
        if hit is not None:
            return hit.workflow, hit.document(), hit.plan
    wf = workflow if isinstance(workflow, Workflow) else Workflow.model_validate(workflow)
    if namespace is not None and namespace != wf.namespace:
        wf = wf.model_copy(update={"namespace": namespace})
    check_workflow(wf, registry)
    document = wf.to_document()
    if key is None:
        return wf, document, None
    entry = validated.put(key, wf, document, registry)
    return wf, document, entry.plan


def stored_key(head: WorkflowHead) -> bytes:
    """The validated-cache key of a stored workflow's current version.

    ``(id, version, updated_at_ms)`` names one document (every change writes version + 1),
    so a start by workflow id finds the validated document and its plan without reading
    the document; never equal to a content hash (those are 32-byte digests).
    """
    return f"stored\0{head.id}\0{head.version}\0{head.updated_at_ms}\0{head.namespace}".encode()


def cached_stored(head: WorkflowHead, registry: Catalog) -> Validated | None:
    """The validated document of ``head``'s version, if this process validated it (against
    ``registry`` as it is now)."""
    return validated.get(stored_key(head), registry)


def validate_stored(head: WorkflowHead, document: dict[str, Any], registry: Catalog) -> Validated:
    """Validate ``document`` (the stored document of ``head``'s version) in its namespace
    and cache it under :func:`stored_key`.

    Raises:
        FlowplaneError: the document is not a valid workflow (as :func:`prepare`).
    """
    wf = Workflow.model_validate(document)
    if wf.namespace != head.namespace:
        wf = wf.model_copy(update={"namespace": head.namespace})
    check_workflow(wf, registry)
    return validated.put(stored_key(head), wf, wf.to_document(), registry)


def prepare_validated(entry: Validated, run_input: Any) -> Prepared:
    """A run of the validated document ``entry`` with ``run_input`` checked against it."""
    wf = entry.workflow
    return Prepared(wf, entry.document(), validate_input(wf.inputs, run_input), entry.plan)


def start(
    tx: Tx,
    prepared: Prepared,
    *,
    run_id: str | None = None,
    workflow_id: str | None = None,
    workflow_version: int | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    trigger: str = "api",
    triggered_by: str | None = None,
    parent: tuple[str, str, int] | None = None,
    source_path: str | None = None,
    forked_from: str | None = None,
    trace_context: str | None = None,
) -> tuple[RunRecord, bool]:
    """Dispatch a prepared run in the open transaction, in its workflow's namespace.

    Returns ``(run, created)``; ``created`` is false when ``idempotency_key`` names a
    run that already exists; a taken ``run_id`` is ``RunAlreadyExists`` (see
    :func:`~flowplane.engine.dispatch.dispatch`).
    """
    return dispatch(
        tx,
        DispatchRequest(
            workflow=prepared.workflow,
            document=prepared.document,
            input=prepared.input,
            namespace=prepared.workflow.namespace,
            run_id=run_id,
            workflow_id=workflow_id,
            workflow_version=workflow_version,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            trigger=trigger,
            triggered_by=triggered_by,
            parent=parent,
            source_path=source_path,
            forked_from=forked_from,
            plan=prepared.plan,
            trace_context=trace_context,
        ),
    )
