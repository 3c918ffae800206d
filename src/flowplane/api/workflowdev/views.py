"""workflowdev's answers: what a flow, an execution, a task, a plugin ... look like on its wire.

Plain functions from the services' records to JSON-ready dicts, camelCase and ISO-8601
times as workflowdev prints them. Flowplane's extra information rides along as extra
members (``version``, ``namespace``, ``error``, ...).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from flowplane.api.models.common import iso
from flowplane.api.workflowdev.statuses import NODE_STATUS, RUN_STATUS
from flowplane.connectors.base import Manifest
from flowplane.model.dialects import workflowdev as dialect
from flowplane.services.credentials import Credential
from flowplane.services.kv import KVEntry
from flowplane.services.records import AuditRecord, ScheduleRecord, TriggerRecord
from flowplane.services.runs import ApprovalRecord, NodeRunRecord, RunRecord, RunSnapshot
from flowplane.services.workflows import Revision, StoredWorkflow

__all__ = [
    "approval_view",
    "audit_view",
    "credential_view",
    "execution_detail",
    "execution_view",
    "flow_view",
    "kv_view",
    "plugin_view",
    "revision_view",
    "schedule_view",
    "started_view",
    "task_views",
    "trigger_view",
]


def flow_view(wf: StoredWorkflow) -> dict[str, Any]:
    """A flow: ``{id, name, namespace, yamlContent, createdAt, updatedAt}`` (+ ``version``)."""
    return {
        "id": wf.id,
        "name": wf.name,
        "namespace": wf.namespace,
        "description": wf.description,
        "yamlContent": dialect.from_document(wf.document),
        "version": wf.version,
        "createdAt": iso(wf.created_at_ms),
        "updatedAt": iso(wf.updated_at_ms),
        "createdBy": wf.created_by,
    }


def revision_view(revision: Revision) -> dict[str, Any]:
    """One saved revision of a flow."""
    view: dict[str, Any] = {
        "flowId": revision.workflow_id,
        "revision": revision.version,
        "createdAt": iso(revision.created_at_ms),
        "createdBy": revision.created_by,
        "message": revision.message,
    }
    if revision.document is not None:
        view["yamlContent"] = dialect.from_document(revision.document)
    return view


def started_view(run: RunRecord, tasks_total: int) -> dict[str, Any]:
    """What ``execute`` and ``retry`` answer: the execution is accepted and queued."""
    return {
        "executionId": run.id,
        "status": "QUEUED",
        "tasksTotal": tasks_total,
        "flowId": run.workflow_id,
    }


def _duration(run: RunRecord) -> int | None:
    if run.started_at_ms is None or run.finished_at_ms is None:
        return None
    return max(0, run.finished_at_ms - run.started_at_ms)


def execution_view(
    run: RunRecord, *, tasks_total: int | None = None, tasks_executed: int | None = None
) -> dict[str, Any]:
    """An execution (the ``execution`` member of ``GET /executions/{id}``)."""
    return {
        "id": run.id,
        "flowId": run.workflow_id,
        "flowName": run.workflow_name,
        "flowVersion": run.workflow_version,
        "namespace": run.namespace,
        "status": RUN_STATUS[run.status],
        "tasksTotal": tasks_total,
        "tasksExecuted": tasks_executed,
        "trigger": run.trigger,
        "triggeredBy": run.triggered_by,
        "createdAt": iso(run.created_at_ms),
        "startedAt": iso(run.started_at_ms),
        "finishedAt": iso(run.finished_at_ms),
        "durationMs": _duration(run),
        "error": run.error,
    }


def _task_rows(nodes: Sequence[NodeRunRecord]) -> list[NodeRunRecord]:
    """One node run per node, in node order: the node level (-1) of a ``foreach``."""
    chosen: dict[str, NodeRunRecord] = {}
    for node in nodes:
        held = chosen.get(node.node_id)
        if (
            held is None
            or node.iteration == -1
            or (held.iteration != -1 and node.iteration < held.iteration)
        ):
            chosen[node.node_id] = node
    return list(chosen.values())


def _outputs(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def task_views(
    nodes: Sequence[NodeRunRecord],
    types: Mapping[str, str],
    approvals: Sequence[ApprovalRecord] = (),
) -> list[dict[str, Any]]:
    """The ``tasks`` of an execution; ``outputs`` is JSON text, as workflowdev gives it.

    A gate's task carries the ``approvalId`` to approve or reject it by.
    """
    approval_of = {(a.node_id, a.iteration): a.id for a in approvals}
    return [
        {
            "taskName": node.node_id,
            "taskType": types.get(node.node_id),
            "status": NODE_STATUS[node.status],
            "outputs": _outputs(node.output),
            "error": node.error,
            "attempt": node.attempt,
            "startedAt": iso(node.started_at_ms),
            "finishedAt": iso(node.finished_at_ms),
            **(
                {"approvalId": approval_of[(node.node_id, max(node.iteration, 0))]}
                if (node.node_id, max(node.iteration, 0)) in approval_of
                else {}
            ),
        }
        for node in _task_rows(nodes)
    ]


def execution_detail(
    snapshot: RunSnapshot,
    document: Mapping[str, Any],
    approvals: Sequence[ApprovalRecord] = (),
) -> dict[str, Any]:
    """``{execution: {...}, tasks: [...]}``."""
    types = {str(n.get("id")): str(n.get("type")) for n in document.get("nodes") or []}
    tasks = task_views(snapshot.nodes, types, approvals)
    executed = sum(1 for t in tasks if t["status"] in ("SUCCESS", "FAILED"))
    return {
        "execution": execution_view(
            snapshot.run, tasks_total=len(types) or len(tasks), tasks_executed=executed
        ),
        "tasks": tasks,
    }


def plugin_view(manifest: Manifest) -> dict[str, Any]:
    """A plugin manifest: ``{id, name, category, description, inputSchema, outputSchema}``."""
    return {
        "id": manifest.type,
        "name": manifest.name,
        "category": manifest.category,
        "description": manifest.description,
        "kind": manifest.kind,
        "inputSchema": manifest.input_schema,
        "outputSchema": manifest.output_schema,
        "secrets": list(manifest.secrets),
        "examples": list(manifest.examples),
    }


def credential_view(credential: Credential) -> dict[str, Any]:
    """A credential's metadata (never its value)."""
    return {
        "id": credential.id,
        "name": credential.name,
        "namespace": credential.namespace,
        "type": credential.type,
        "description": credential.description,
        "version": credential.version,
        "createdAt": iso(credential.created_at_ms),
        "updatedAt": iso(credential.updated_at_ms),
        "createdBy": credential.created_by,
        "updatedBy": credential.updated_by,
    }


def kv_view(entry: KVEntry) -> dict[str, Any]:
    """A key-value entry."""
    return {
        "namespace": entry.namespace,
        "key": entry.key,
        "value": entry.value,
        "version": entry.version,
        "expiresAt": iso(entry.expires_at_ms),
        "createdAt": iso(entry.created_at_ms),
        "updatedAt": iso(entry.updated_at_ms),
    }


def trigger_view(trigger: TriggerRecord) -> dict[str, Any]:
    """A webhook trigger (never its secret)."""
    return {
        "id": trigger.id,
        "type": "webhook",
        "flowId": trigger.workflow_id,
        "namespace": trigger.namespace,
        "key": trigger.key,
        "url": f"/api/v1/webhook/{trigger.key}",
        "kind": trigger.kind,
        "scheme": trigger.scheme,
        "hasSecret": bool(trigger.secret),
        "enabled": bool(trigger.enabled),
        "owner": trigger.owner,
        "createdAt": iso(trigger.created_at_ms),
        "updatedAt": iso(trigger.updated_at_ms),
    }


def schedule_view(schedule: ScheduleRecord) -> dict[str, Any]:
    """A cron trigger (a Flowplane schedule)."""
    return {
        "id": schedule.id,
        "type": "cron",
        "flowId": schedule.workflow_id,
        "namespace": schedule.namespace,
        "name": schedule.name,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "enabled": bool(schedule.enabled),
        "nextFireAt": iso(schedule.next_fire_ms),
        "owner": schedule.owner,
        "createdAt": iso(schedule.created_at_ms),
        "updatedAt": iso(schedule.updated_at_ms),
    }


def approval_view(approval: ApprovalRecord) -> dict[str, Any]:
    """A gate approval and its status (``PENDING``, ``APPROVED``, ``REJECTED``, ...)."""
    status = {"denied": "REJECTED"}.get(approval.status, approval.status.upper())
    return {
        "id": approval.id,
        "executionId": approval.run_id,
        "taskName": approval.node_id,
        "iteration": approval.iteration,
        "namespace": approval.namespace,
        "title": approval.title,
        "description": approval.description,
        "status": status,
        "requestedAt": iso(approval.requested_at_ms),
        "decidedAt": iso(approval.decided_at_ms),
        "decidedBy": approval.decided_by,
        "comment": approval.note,
        "waitingMs": approval.waiting_ms,
        "flowName": approval.workflow_name,
        "executionStatus": None if approval.run_status is None else RUN_STATUS[approval.run_status],
    }


def audit_view(entry: AuditRecord) -> dict[str, Any]:
    """One audit log entry."""
    return {
        "id": entry.id,
        "timestamp": iso(entry.ts_ms),
        "actor": entry.actor,
        "actorKind": entry.actor_kind,
        "action": entry.action,
        "namespace": entry.namespace,
        "targetType": entry.target_type,
        "targetId": entry.target_id,
        "requestId": entry.request_id,
        "details": entry.details,
    }
