"""Schedules and webhook triggers declared in a workflow document's ``triggers:``.

They belong to the workflow (``owner="workflow"``) and follow its document:
:func:`sync_workflow_triggers` runs in the workflow's own write transaction, so a document
and its schedules and triggers never disagree. Declared schedules are matched by name,
declared webhooks by key; what the API may still change on them (``enabled``, a webhook's
secret) survives a document update.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowplane.errors import Conflict, InvalidInput, TriggerKeyExists, WorkflowInvalid
from flowplane.ids import new_id
from flowplane.model import cron, templates
from flowplane.model.durations import parse_duration
from flowplane.security import webhooks
from flowplane.services.schedules import (
    DEFAULT_CATCHUP,
    DEFAULT_CATCHUP_WINDOW_SECONDS,
    TIMING_FIELDS,
    check_schedule,
    next_fire,
    parse_instant,
)
from flowplane.services.triggers import KEY_PATTERN, KINDS
from flowplane.store import trigger_queries as q
from flowplane.store.records import WorkflowRecord
from flowplane.store.tx import Tx

__all__ = ["declared_triggers", "sync_workflow_triggers"]


def declared_triggers(workflow: WorkflowRecord, type_: str) -> list[Mapping[str, Any]]:
    """The items of type ``type_`` in a workflow's ``triggers:`` (none once it is deleted)."""
    if workflow.deleted_at_ms is not None:
        return []
    document = workflow.document or {}
    declared = list(document.get("triggers") or [])
    return [t for t in declared if isinstance(t, Mapping) and t.get("type") == type_]


def _declared_schedule(item: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The columns of a ``{type: schedule, ...}`` trigger of a document."""
    known = {
        "type",
        "name",
        "cron",
        "timezone",
        "input",
        "enabled",
        "start_at",
        "end_at",
        "catchup",
        "catchup_window",
    }
    unknown = sorted(set(item) - known)
    if unknown:
        raise WorkflowInvalid(f"{where}: unknown schedule field(s) {', '.join(unknown)}")
    if not isinstance(item.get("cron"), str):
        raise WorkflowInvalid(f"{where}: a schedule trigger needs `cron`")
    timezone = str(item.get("timezone") or "UTC")
    window = item.get("catchup_window", DEFAULT_CATCHUP_WINDOW_SECONDS)
    values: dict[str, Any] = {
        "cron": item["cron"],
        "timezone": timezone,
        "input": item.get("input") or {},
        "start_at_ms": parse_instant(item.get("start_at"), timezone, f"{where}.start_at"),
        "end_at_ms": parse_instant(item.get("end_at"), timezone, f"{where}.end_at"),
        "catchup": item.get("catchup") or DEFAULT_CATCHUP,
        "catchup_window_seconds": int(parse_duration(window)),
    }
    if "enabled" in item:
        values["enabled"] = bool(item["enabled"])
    try:
        check_schedule(values)
    except InvalidInput as exc:
        # Keep the precise class (InvalidCron, ...) and say where in the document it is.
        raise type(exc)(f"{where}: {exc.detail}", **exc.extra) from None
    return values


def sync_workflow_schedules(tx: Tx, workflow: WorkflowRecord) -> None:
    """Make the workflow-owned schedules match the document's ``triggers:`` (in ``tx``).

    Schedules are matched by ``name`` (default ``schedule-<n>``, n counting the document's
    schedule triggers from 1). A matched schedule keeps its fire history and, unless the
    document says ``enabled``, its enabled flag; a changed cron, time zone or date range
    restarts it from now.
    """
    items = declared_triggers(workflow, "schedule")
    existing = {r.name: r for r in q.schedules_of_workflow(tx, workflow.id, owner="workflow")}
    seen: set[str] = set()
    for number, item in enumerate(items, start=1):
        name = str(item.get("name") or f"schedule-{number}")
        where = f"triggers (schedule {name!r})"
        if name in seen:
            raise WorkflowInvalid(f"{where}: two schedule triggers are named {name!r}")
        seen.add(name)
        values = _declared_schedule(item, where)
        spec = cron.parse_cron(values["cron"], values["timezone"])
        old = existing.get(name)
        if old is None:
            if q.schedule_by_name(tx, workflow.id, name) is not None:
                raise Conflict(f"{where}: the workflow already has an API schedule named {name!r}")
            row = {
                "id": new_id(),
                "namespace": workflow.namespace,
                "workflow_id": workflow.id,
                "name": name,
                "enabled": True,
                "owner": "workflow",
                "last_fired_slot_ms": None,
                "created_at_ms": tx.now_ms,
                "updated_at_ms": tx.now_ms,
                "created_by": workflow.created_by,
                **values,
            }
            row["next_fire_ms"] = next_fire(row, spec, tx.now_ms)
            q.insert_schedule(tx, row)
            continue
        before = old.columns()
        merged = {**before, **values, "namespace": workflow.namespace}
        if any(merged[f] != before[f] for f in TIMING_FIELDS) or (
            merged["enabled"] and not old.enabled
        ):
            merged["next_fire_ms"] = next_fire(merged, spec, tx.now_ms)
        if merged != before:
            q.update_schedule(tx, old.id, **{k: v for k, v in merged.items() if k != "id"})
    for name, old in existing.items():
        if name not in seen:
            q.delete_schedule(tx, old.id)
    if workflow.deleted_at_ms is not None:
        # API schedules of a deleted workflow would only fail: remove them too.
        for old in q.schedules_of_workflow(tx, workflow.id):
            q.delete_schedule(tx, old.id)
    tx.notify("schedules")


def sync_workflow_triggers(tx: Tx, workflow: WorkflowRecord) -> None:
    """Sync everything a workflow's ``triggers:`` declares: schedules and webhook triggers.

    Call it inside the transaction that creates, updates or deletes the workflow, with the
    workflow row as written (``deleted_at_ms`` set for a deletion). Raises the
    :class:`~flowplane.errors.InvalidInput` family when a declared trigger is wrong, which
    rolls the workflow write back.
    """
    sync_workflow_schedules(tx, workflow)
    sync_workflow_webhooks(tx, workflow)


def sync_workflow_webhooks(tx: Tx, workflow: WorkflowRecord) -> None:
    """Make the workflow-owned webhook triggers match the document's ``triggers:``.

    Declared as ``{type: webhook, key, kind?, signal?, correlation?, scheme?, enabled?}``
    and matched by ``key``; the secret (never in a document) is set with ``PUT`` and kept
    across document updates.
    """
    items = declared_triggers(workflow, "webhook")
    existing = {r.key: r for r in q.triggers_of_workflow(tx, workflow.id, owner="workflow")}
    seen: set[str] = set()
    known = {"type", "key", "kind", "signal", "correlation", "scheme", "enabled"}
    for item in items:
        where = f"triggers (webhook {item.get('key')!r})"
        unknown = sorted(set(item) - known)
        if unknown:
            raise WorkflowInvalid(f"{where}: unknown webhook field(s) {', '.join(unknown)}")
        key = item.get("key")
        if not isinstance(key, str) or not KEY_PATTERN.match(key):
            raise WorkflowInvalid(f"{where}: `key` must match {KEY_PATTERN.pattern}")
        if key in seen:
            raise WorkflowInvalid(f"{where}: two webhook triggers use key {key!r}")
        seen.add(key)
        kind = item.get("kind") or "run"
        scheme = item.get("scheme") or "none"
        if kind not in KINDS or scheme not in webhooks.SCHEMES:
            raise WorkflowInvalid(
                f"{where}: kind must be run|signal, scheme one of {webhooks.SCHEMES}"
            )
        if kind == "signal" and not item.get("signal"):
            raise WorkflowInvalid(f"{where}: a signal webhook needs `signal` (the signal name)")
        if item.get("correlation"):
            templates.check_template(str(item["correlation"]), expression=True)
        values: dict[str, Any] = {
            "namespace": workflow.namespace,
            "kind": kind,
            "signal_name": item.get("signal") if kind == "signal" else None,
            "correlation": item.get("correlation") if kind == "signal" else None,
            "scheme": scheme,
        }
        if "enabled" in item:
            values["enabled"] = bool(item["enabled"])
        old = existing.get(key)
        if old is None:
            if q.trigger_by_key(tx, key) is not None:
                raise TriggerKeyExists(f"{where}: webhook key {key!r} is already in use")
            q.insert_trigger(
                tx,
                {
                    "id": new_id(),
                    "workflow_id": workflow.id,
                    "key": key,
                    "secret": None,
                    "enabled": True,
                    "owner": "workflow",
                    "created_at_ms": tx.now_ms,
                    "updated_at_ms": tx.now_ms,
                    "created_by": workflow.created_by,
                    **values,
                },
            )
        elif any(getattr(old, k) != v for k, v in values.items()):
            q.update_trigger(tx, old.id, **values)
    for key, old in existing.items():
        if key not in seen:
            q.delete_trigger(tx, old.id)
