"""Queries on stored workflows and their revisions (each takes the open transaction)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from flowplane.store import schema as t
from flowplane.store.prepared import Prepared, batching
from flowplane.store.records import RevisionRecord, WorkflowHead, WorkflowRecord
from flowplane.store.tx import Tx

_W = t.workflows.c
_HEAD = sa.select(_W.id, _W.namespace, _W.name, _W.version, _W.updated_at_ms).where(
    _W.deleted_at_ms.is_(None)
)
_HEAD_BY_ID = Prepared(_HEAD.where(_W.id == sa.bindparam("_id")), record=WorkflowHead)
_HEAD_BY_NAME = Prepared(
    _HEAD.where(_W.namespace == sa.bindparam("_ns"), _W.name == sa.bindparam("_name")),
    record=WorkflowHead,
)


def get_workflow_head(tx: Tx, workflow_id: str) -> WorkflowHead | None:
    """The live workflow ``workflow_id`` without its document (``None``: absent or deleted).

    A prepared statement: it is on the path of every run started by workflow id.
    """
    rows, _count = _HEAD_BY_ID.execute(tx.conn, {"_id": workflow_id})
    return rows[0] if rows else None


# A head assumed rather than read (see assume_workflow_head): one row if it is still the
# live head, and then 1 / 1; else 1 / 0, and the statement fails with SQLSTATE 22012.
_HEAD_STILL = Prepared(
    sa.select((sa.literal_column("1", sa.Integer) // sa.func.count()).label("still"))
    .select_from(t.workflows)
    .where(
        _W.deleted_at_ms.is_(None),
        _W.id == sa.bindparam("_id"),
        _W.namespace == sa.bindparam("_ns"),
        _W.name == sa.bindparam("_name"),
        _W.version == sa.bindparam("_v"),
        _W.updated_at_ms == sa.bindparam("_u"),
    )
)
HEAD_CHANGED = "22012"
"""The SQLSTATE (division_by_zero) of a transaction whose assumed head was not current."""


def assume_workflow_head(tx: Tx, head: WorkflowHead) -> bool:
    """Take ``head`` as the live head of its workflow without reading it: on a batching
    connection (PostgreSQL), queue a statement that fails the transaction (SQLSTATE
    :data:`HEAD_CHANGED`, which the store retries as transient) unless it still is, so
    the check costs no round trip of its own. ``False`` (nothing queued) elsewhere: read
    the head instead."""
    if not batching(tx.conn):
        return False
    params = {
        "_id": head.id,
        "_ns": head.namespace,
        "_name": head.name,
        "_v": head.version,
        "_u": head.updated_at_ms,
    }
    _HEAD_STILL.defer(tx.conn, params)
    return True


def get_workflow_head_by_name(tx: Tx, namespace: str, name: str) -> WorkflowHead | None:
    """The live workflow called ``name`` in ``namespace``, without its document."""
    rows, _count = _HEAD_BY_NAME.execute(tx.conn, {"_ns": namespace, "_name": name})
    return rows[0] if rows else None


def get_workflow_row(
    tx: Tx, workflow_id: str, *, include_deleted: bool = False
) -> WorkflowRecord | None:
    """Return the workflow row ``workflow_id`` (``None`` when absent or soft-deleted)."""
    c = t.workflows.c
    query = sa.select(t.workflows).where(c.id == workflow_id)
    if not include_deleted:
        query = query.where(c.deleted_at_ms.is_(None))
    return tx.one(WorkflowRecord, query)


def get_workflow_by_name(tx: Tx, namespace: str, name: str) -> WorkflowRecord | None:
    """Return the live workflow called ``name`` in ``namespace``."""
    c = t.workflows.c
    return tx.one(
        WorkflowRecord,
        sa.select(t.workflows).where(
            c.namespace == namespace, c.name == name, c.deleted_at_ms.is_(None)
        ),
    )


def list_workflow_rows(
    tx: Tx,
    *,
    namespaces: Sequence[str] | None = None,
    after_id: str | None = None,
    limit: int = 50,
) -> list[WorkflowRecord]:
    """Return live workflows ordered by id (creation order); ``after_id`` is the cursor."""
    c = t.workflows.c
    query = sa.select(t.workflows).where(c.deleted_at_ms.is_(None))
    if namespaces is not None:
        query = query.where(c.namespace.in_(list(namespaces)))
    if after_id is not None:
        query = query.where(c.id > after_id)
    query = query.order_by(c.id).limit(limit)
    return tx.records(WorkflowRecord, query)


def insert_workflow(tx: Tx, values: dict[str, Any]) -> None:
    """Insert a workflow row."""
    tx.conn.execute(t.workflows.insert().values(**values))


def update_workflow_if_version(
    tx: Tx, workflow_id: str, expected_version: int, values: dict[str, Any]
) -> bool:
    """Update a live workflow only if its version is still ``expected_version``.

    Returns whether the row was updated (a compare-and-swap: safe without a row lock).
    """
    c = t.workflows.c
    result = tx.conn.execute(
        t.workflows.update()
        .where(c.id == workflow_id, c.version == expected_version, c.deleted_at_ms.is_(None))
        .values(**values)
    )
    return bool(result.rowcount == 1)


def soft_delete_workflow(tx: Tx, workflow_id: str, deleted_at_ms: int) -> bool:
    """Mark a live workflow deleted; return whether it was live."""
    c = t.workflows.c
    result = tx.conn.execute(
        t.workflows.update()
        .where(c.id == workflow_id, c.deleted_at_ms.is_(None))
        .values(deleted_at_ms=deleted_at_ms, updated_at_ms=deleted_at_ms)
    )
    return bool(result.rowcount == 1)


def insert_revision(
    tx: Tx,
    *,
    workflow_id: str,
    version: int,
    document: dict[str, Any],
    created_at_ms: int,
    created_by: str | None,
    message: str | None,
) -> None:
    """Record the document of one workflow version."""
    tx.conn.execute(
        t.workflow_revisions.insert().values(
            workflow_id=workflow_id,
            version=version,
            document=document,
            created_at_ms=created_at_ms,
            created_by=created_by,
            message=message[:500] if message else None,
        )
    )


def list_revision_rows(tx: Tx, workflow_id: str) -> list[RevisionRecord]:
    """Return the revisions of a workflow without their documents, newest first."""
    c = t.workflow_revisions.c
    cols = [col for col in t.workflow_revisions.c if col.name != "document"]
    query = sa.select(*cols).where(c.workflow_id == workflow_id).order_by(c.version.desc())
    return tx.records(RevisionRecord, query)


def get_revision_row(tx: Tx, workflow_id: str, version: int) -> RevisionRecord | None:
    """Return one revision with its document."""
    c = t.workflow_revisions.c
    return tx.one(
        RevisionRecord,
        sa.select(t.workflow_revisions).where(c.workflow_id == workflow_id, c.version == version),
    )
