"""The steps every change of a stored workflow shares, inside its transaction.

Visibility and version checks, then writing version 1 (:func:`insert`) or version n+1 with a
compare-and-swap (:func:`save`), each with its revision row, trigger sync and audit record.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from flowplane.errors import Forbidden, VersionMismatch, WorkflowExists, WorkflowNotFound
from flowplane.ids import new_id
from flowplane.services.declared import sync_workflow_triggers
from flowplane.services.workflows.records import ANY_VERSION, StoredWorkflow
from flowplane.store import audit
from flowplane.store import workflow_queries as q
from flowplane.store.tx import Row, Tx

__all__ = ["check_version", "check_writable", "insert", "save", "visible"]


def visible(
    workflow: StoredWorkflow | None, ref: str, namespaces: Sequence[str] | None
) -> StoredWorkflow:
    """``workflow``, or :class:`WorkflowNotFound` if absent or not in ``namespaces``."""
    if workflow is None or (namespaces is not None and workflow.namespace not in namespaces):
        raise WorkflowNotFound(f"workflow {ref!r} not found")
    return workflow


def check_name_free(tx: Tx, namespace: str, name: str, *, owner: str | None = None) -> None:
    """Raise :class:`WorkflowExists` if another workflow than ``owner`` has ``name``."""
    other = q.get_workflow_by_name(tx, namespace, name)
    if other is not None and other.id != owner:
        raise WorkflowExists(
            f"a workflow named {name!r} already exists in namespace {namespace!r}",
            id=other.id,
        )


def insert(
    tx: Tx,
    doc: dict[str, Any],
    by: str | None,
    message: str,
    *,
    actor: audit.Actor = audit.SYSTEM,
    action: str = "workflow.create",
) -> StoredWorkflow:
    """Write ``doc`` as version 1 of a new workflow, with its revision."""
    check_name_free(tx, doc["namespace"], doc["name"])
    row: Row = {
        "id": new_id(),
        "namespace": doc["namespace"],
        "name": doc["name"],
        "version": 1,
        "document": doc,
        "created_at_ms": tx.now_ms,
        "updated_at_ms": tx.now_ms,
        "deleted_at_ms": None,
        "created_by": by,
    }
    q.insert_workflow(tx, row)
    q.insert_revision(
        tx,
        workflow_id=row["id"],
        version=1,
        document=doc,
        created_at_ms=tx.now_ms,
        created_by=by,
        message=message,
    )
    workflow = StoredWorkflow.from_row(row)
    sync_workflow_triggers(tx, workflow)
    audit.record(
        tx,
        actor=actor,
        action=action,
        namespace=row["namespace"],
        target_type="workflow",
        target_id=row["id"],
        after_version=1,
        details={"name": row["name"]},
    )
    return workflow


def save(
    tx: Tx,
    current: StoredWorkflow,
    doc: dict[str, Any],
    by: str | None,
    message: str,
    *,
    actor: audit.Actor = audit.SYSTEM,
    action: str = "workflow.update",
) -> StoredWorkflow:
    """Write ``doc`` as version ``current.version + 1`` (compare-and-swap) + a revision."""
    name = str(doc.get("name", current.name))
    if name != current.name:
        check_name_free(tx, current.namespace, name, owner=current.id)
    version = current.version + 1
    values: dict[str, Any] = {
        "name": name,
        "document": doc,
        "version": version,
        "updated_at_ms": tx.now_ms,
    }
    if not q.update_workflow_if_version(tx, current.id, current.version, values):
        latest = q.get_workflow_row(tx, current.id)
        if latest is None:
            raise WorkflowNotFound(f"workflow {current.id!r} not found")
        raise VersionMismatch(
            f"workflow {current.id!r} changed concurrently; it is now at version {latest.version}",
            current=latest.version,
        )
    q.insert_revision(
        tx,
        workflow_id=current.id,
        version=version,
        document=doc,
        created_at_ms=tx.now_ms,
        created_by=by,
        message=message,
    )
    saved = dataclasses.replace(current, **values)
    sync_workflow_triggers(tx, saved)
    audit.record(
        tx,
        actor=actor,
        action=action,
        namespace=current.namespace,
        target_type="workflow",
        target_id=current.id,
        before_version=current.version,
        after_version=version,
        details={"name": name},
    )
    return saved


def check_writable(namespace: str, namespaces: Sequence[str] | None) -> None:
    """Raise :class:`Forbidden` unless the caller may write in ``namespace``."""
    if namespaces is not None and namespace not in namespaces:
        raise Forbidden(f"you may not write workflows in namespace {namespace!r}")


def check_version(current: StoredWorkflow, expected: int | str) -> None:
    """Raise :class:`VersionMismatch` unless ``current`` is at ``expected`` (or ``*``)."""
    if expected == ANY_VERSION or expected == current.version:
        return
    raise VersionMismatch(
        f"workflow {current.id!r} is at version {current.version}, not {expected}; "
        "read it again and retry",
        current=current.version,
    )
