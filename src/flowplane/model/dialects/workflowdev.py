"""workflowdev's flow dialect, both ways: ``yamlContent`` to a Flowplane document and back.

A workflowdev flow is YAML with a ``name`` and a list of ``tasks``, each
``{name, type, properties}``::

    name: my-workflow
    tasks:
      - name: hello
        type: util.log
        properties:
          message: Hello world

:func:`to_document` turns such a text into a Flowplane workflow document (a plain dict that
:class:`~flowplane.model.document.Workflow` validates): each task becomes a node whose
``id`` is the task's ``name``, whose ``type`` is the task's type (or the Flowplane connector
:data:`TYPE_ALIASES` names for it) and whose ``params`` are its ``properties``. Tasks run in
listed order unless one declares ``depends_on``. The text itself is kept in the document's
``source``, so :func:`from_document` gives it back exactly as it was sent; a document that
has no source (written through ``/v1``), or whose nodes no longer match its source, is
written out in the dialect instead (:func:`to_yaml`).

Flowplane's own node fields that workflowdev has no word for (``foreach``, ``retry``,
``trigger_rule``, ...) are accepted on a task under their Flowplane names, so that every
Flowplane document has a workflowdev form and the translation round-trips.

Pure: no I/O, nothing of the server; errors are :class:`~flowplane.errors.WorkflowInvalid`
with one item per problem (``node_id`` is the task's name).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pydantic

from flowplane.errors import DocumentError, WorkflowInvalid
from flowplane.model.document import DEFAULT_NAMESPACE, NODE_ID_PATTERN, Workflow
from flowplane.model.yaml import dump_yaml, load_document

__all__ = [
    "DIALECT",
    "FLOW_KEYS",
    "TASK_KEYS",
    "TYPE_ALIASES",
    "TypeAlias",
    "from_document",
    "to_document",
    "to_yaml",
]

DIALECT = "workflowdev"
"""The ``source.dialect`` of a document translated from a workflowdev flow."""


@dataclass(frozen=True)
class TypeAlias:
    """A workflowdev task type that Flowplane calls otherwise.

    Attributes:
        type: the Flowplane connector that does the same thing.
        renames: workflowdev property name -> the connector's param name.
    """

    type: str
    renames: dict[str, str] = field(default_factory=dict)


TYPE_ALIASES: dict[str, TypeAlias] = {
    # workflowdev's approval gate ("gate approval", /api/v1/approvals/{id}) asks a question.
    "control.gate": TypeAlias("control.approval", {"message": "title"}),
    "util.gate": TypeAlias("control.approval", {"message": "title"}),
    # Pauses: Flowplane waits durably (the run is `waiting-timer`, no worker is held).
    "util.sleep": TypeAlias("wait.duration"),
    "util.delay": TypeAlias("wait.duration"),
    "util.wait": TypeAlias("wait.duration"),
}
"""The one table of workflowdev task types that Flowplane names differently. Every other
type is looked up as it is among Flowplane's connectors (``util.log``, ``http.request``,
...); a type that is neither is refused by validation, naming the task and the type."""

FLOW_KEYS = ("name", "namespace", "description", "inputs", "timeout", "tasks", "triggers")
"""Top-level keys of a flow."""

_TASK_FIELDS: dict[str, str] = {
    # workflowdev key -> Flowplane node field
    "name": "id",
    "type": "type",
    "properties": "params",
    "description": "description",
    "depends_on": "needs",
    "condition": "when",
    "timeout": "timeout",
    # Flowplane's own node fields, under their own names.
    "display_name": "name",
    "foreach": "foreach",
    "max_parallel": "max_parallel",
    "retry": "retry",
    "trigger_rule": "trigger_rule",
    "on_error": "on_error",
}
TASK_KEYS = tuple(_TASK_FIELDS)
"""Keys a task may have."""
_NODE_FIELDS = {node: task for task, node in _TASK_FIELDS.items()}
_NODE_ID = re.compile(NODE_ID_PATTERN)


def _problem(task: str | None, type_: str | None, where: str | None, error: str) -> dict[str, Any]:
    return {
        "node_id": task,
        "node_type": type_,
        "field": where,
        "value": None,
        "error": error,
        "code": "invalid_document",
        "path": where,
        "line": None,
    }


def to_document(
    text: str, *, name: str | None = None, namespace: str | None = None
) -> dict[str, Any]:
    """Translate a workflowdev flow into a Flowplane workflow document.

    Args:
        text: the flow's ``yamlContent``.
        name: the flow's name, when the request gives one (it wins over the text's).
        namespace: the flow's namespace, likewise.

    Returns:
        The document, with ``source: {dialect: "workflowdev", text}``; not yet validated
        against the connectors (the workflow service does that).

    Raises:
        DocumentError: the text is not YAML (or too large, too deep, ...).
        WorkflowInvalid: the flow is not one (missing ``tasks``, a task without a
            ``name``, an unknown key, ...); ``errors`` lists each problem.
    """
    data = load_document(text, source="yamlContent")
    problems: list[dict[str, Any]] = []
    for key in data:
        if key not in FLOW_KEYS:
            problems.append(
                _problem(None, None, key, f"unknown key {key!r}; a flow has {', '.join(FLOW_KEYS)}")
            )
    flow_name = name or data.get("name")
    if not isinstance(flow_name, str) or not flow_name:
        problems.append(_problem(None, None, "name", "a flow needs a name"))
    tasks = data.get("tasks")
    nodes: list[dict[str, Any]] = []
    if not isinstance(tasks, list) or not tasks:
        problems.append(_problem(None, None, "tasks", "a flow needs a list of at least one task"))
    else:
        for index, task in enumerate(tasks):
            node = _node(task, index, problems)
            if node is not None:
                nodes.append(node)
    if problems:
        raise WorkflowInvalid(_summary(problems), errors=problems)
    doc: dict[str, Any] = {"name": flow_name}
    chosen_namespace = namespace or data.get("namespace")
    if chosen_namespace is not None:
        doc["namespace"] = chosen_namespace
    for key in ("description", "inputs", "timeout"):
        if key in data:
            doc[key] = data[key]
    doc["nodes"] = nodes
    if "triggers" in data:
        doc["triggers"] = data["triggers"]
    doc["source"] = {"dialect": DIALECT, "text": text}
    return doc


def _node(task: Any, index: int, problems: list[dict[str, Any]]) -> dict[str, Any] | None:
    where = f"tasks.{index}"
    if not isinstance(task, dict):
        problems.append(_problem(None, None, where, "a task is a mapping {name, type, properties}"))
        return None
    task_name = task.get("name")
    label = task_name if isinstance(task_name, str) else None
    type_ = task.get("type")
    found = len(problems)
    for key in task:
        if key not in _TASK_FIELDS:
            problems.append(
                _problem(
                    label,
                    type_ if isinstance(type_, str) else None,
                    f"{where}.{key}",
                    f"unknown key {key!r} in task {label or index!r}; a task has "
                    + ", ".join(TASK_KEYS),
                )
            )
    if not isinstance(task_name, str) or not _NODE_ID.match(task_name):
        problems.append(
            _problem(
                label,
                None,
                f"{where}.name",
                f"task {index}: name {task_name!r} must start with a letter or '_' and hold "
                "only letters, digits, '_' and '-' (at most 64)",
            )
        )
    if not isinstance(type_, str) or not type_:
        problems.append(
            _problem(label, None, f"{where}.type", f"task {label or index!r} needs a type")
        )
    properties = task.get("properties", {})
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        problems.append(
            _problem(label, None, f"{where}.properties", "properties must be a mapping")
        )
    if len(problems) > found:
        return None
    assert isinstance(type_, str)  # checked above: a problem was recorded otherwise
    alias = TYPE_ALIASES.get(type_)
    params = dict(properties)
    if alias is not None:
        type_ = alias.type
        params = {alias.renames.get(k, k): v for k, v in properties.items()}
    node: dict[str, Any] = {}
    for key, value in task.items():
        node[_TASK_FIELDS[key]] = value
    node.update(type=type_, params=params)
    return node


def _summary(problems: list[dict[str, Any]]) -> str:
    lines = [f"  - {p['path'] or '(flow)'}: {p['error']}" for p in problems[:20]]
    return "the flow is invalid:\n" + "\n".join(lines)


def to_yaml(document: dict[str, Any]) -> str:
    """Write a Flowplane document in workflowdev's dialect (``source`` left out).

    Every node field has a task key (:data:`TASK_KEYS`), so :func:`to_document` of the
    result gives the same nodes back.
    """
    flow: dict[str, Any] = {"name": document.get("name")}
    if document.get("namespace", DEFAULT_NAMESPACE) != DEFAULT_NAMESPACE:
        flow["namespace"] = document["namespace"]
    for key in ("description", "inputs", "timeout"):
        if key in document:
            flow[key] = document[key]
    tasks = []
    for node in document.get("nodes") or []:
        task: dict[str, Any] = {
            "name": node.get("id"),
            "type": node.get("type"),
            "properties": node.get("params") or {},
        }
        for key, value in node.items():
            if key not in ("id", "type", "params"):
                task[_NODE_FIELDS.get(key, key)] = value
        tasks.append(task)
    flow["tasks"] = tasks
    if document.get("triggers"):
        flow["triggers"] = document["triggers"]
    return dump_yaml(flow)


_FLOW_FIELDS = ("name", "namespace", "description", "version", "source")
"""What a flow carries beside its text (its request's members win over the text's)."""


def _normal(document: dict[str, Any]) -> dict[str, Any] | None:
    """What the document runs, as validation normalises it (None if invalid): everything
    but the flow's own fields (:data:`_FLOW_FIELDS`)."""
    try:
        data = Workflow.model_validate(document).to_document()
    except pydantic.ValidationError:
        return None
    for key in _FLOW_FIELDS:
        data.pop(key, None)
    return data


def from_document(document: dict[str, Any]) -> str:
    """The ``yamlContent`` of a stored document.

    The text it was translated from when there is one and it still translates to the same
    workflow (a ``/v1`` edit of the nodes makes the text stale; a new name or description
    does not, as the flow carries those itself); else :func:`to_yaml`.
    """
    source = document.get("source")
    if isinstance(source, dict) and source.get("dialect") == DIALECT:
        text = source.get("text")
        if isinstance(text, str):
            try:
                again = to_document(
                    text, name=document.get("name"), namespace=document.get("namespace")
                )
            except (DocumentError, WorkflowInvalid):
                again = None
            if again is not None and _normal(again) == _normal(document):
                return text
    return to_yaml(document)
