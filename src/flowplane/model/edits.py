"""EditOps: apply a batch of small edits to a workflow document, keeping what works.

This is the engine of ``POST /v1/workflows/{id}/operations``, built for LLM agents: a batch
is never rejected as a whole. Each op either applies (in order, seeing the effects of the
ops before it) or is returned as a typed :class:`SkippedItem`; the resulting document is then
validated and every problem is listed with the node, field and value concerned. The
``summary`` paragraph says what applied, what was skipped and why, and how to fix what is
invalid, with the exact op to send where one exists.

Ops (``node_id`` is always the node the op is about)::

    {"op": "add", "node_id", "type", "params"?, "needs"?, "when"?, ...any node field}
    {"op": "edit", "node_id", "params"? (merged; a null value removes a key), "type"?, ...}
    {"op": "delete", "node_id"}                      # removes its edges
    {"op": "connect", "node_id", "target_node_id"}   # target now needs node_id
    {"op": "disconnect", "node_id", "target_node_id"}
    {"op": "rename", "node_id", "new_id"}            # rewrites needs and nodes.<id> references
    {"op": "set", "field", "value"}                  # workflow-level fields; null removes

Edges follow the document rule: when no node declares ``needs`` the nodes run in listed
order. An op that changes edges explicitly (``connect``, ``disconnect``, ``needs`` on
``add``/``edit``) first writes those implicit edges out as ``needs``, so the order the
workflow had is kept. ``add`` without ``needs`` appends the node: in a listed-order document
it runs last, in a document with explicit ``needs`` it is a root.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import pydantic

from flowplane.errors import WorkflowInvalid
from flowplane.model.document import NODE_ID_PATTERN, Node, Workflow
from flowplane.model.graph import Catalog, ValidationIssue, validate_workflow
from flowplane.model.yaml import parse_workflow

__all__ = [
    "OPS",
    "SKIP_CODES",
    "AppliedItem",
    "PatchResult",
    "SkippedItem",
    "apply_ops",
    "rewrite_references",
]

OPS = ("add", "edit", "delete", "connect", "disconnect", "rename", "set")
SKIP_CODES = (
    "node_already_exists",
    "node_type_not_registered",
    "node_not_found",
    "invalid_edge_source",
    "invalid_edge_target",
    "duplicate_connection",
    "cycle_introduced",
    "edge_not_found",
    "invalid_op",
)
NODE_FIELDS = (
    "name",
    "description",
    "params",
    "needs",
    "when",
    "foreach",
    "max_parallel",
    "retry",
    "timeout",
    "trigger_rule",
    "on_error",
)
SET_FIELDS = ("name", "description", "inputs", "timeout", "triggers")
MAX_LISTED = 10
"""How many applied ops, skips and errors the summary spells out before "and N more"."""

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_NODE_ID = re.compile(NODE_ID_PATTERN)
_TEMPLATE_SPAN = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)


@dataclass(frozen=True)
class SkippedItem:
    """An op that was not applied.

    Attributes:
        index: the op's position in the batch (0-based).
        op: the op name (``None`` when the op had none).
        node_id: the node the op was about, when it named one.
        reason_code: one of :data:`SKIP_CODES`.
        reason: a sentence saying what is wrong and what to do instead.
        details: machine-readable specifics (close matches, existing ids, cycle path...).
    """

    index: int
    op: str | None
    node_id: str | None
    reason_code: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the item as a JSON-safe mapping."""
        return asdict(self)


@dataclass(frozen=True)
class AppliedItem:
    """An op that was applied, with a short description of its effect."""

    index: int
    op: str
    node_id: str | None
    description: str

    def to_dict(self) -> dict[str, Any]:
        """Return the item as a JSON-safe mapping."""
        return asdict(self)


@dataclass
class PatchResult:
    """The outcome of :func:`apply_ops`.

    Attributes:
        workflow: the edited document (a new dict; the input is not modified).
        applied: the ops that applied, in order.
        skipped_items: the ops that did not, in order.
        validation_errors: ``{node_id, node_type, field, value, error, code}`` for each
            problem of the edited document.
        summary: one paragraph for a person or an LLM.
        changed: whether the document differs from the input.
        parsed: whether the edited document is a structurally valid workflow (a document
            that is not cannot be saved).
    """

    workflow: dict[str, Any]
    applied: list[AppliedItem]
    skipped_items: list[SkippedItem]
    validation_errors: list[dict[str, Any]]
    summary: str
    changed: bool
    parsed: bool

    @property
    def ok(self) -> bool:
        """Nothing was skipped and nothing is invalid."""
        return not self.skipped_items and not self.validation_errors


class _Skip(Exception):
    """Raised by an op handler: the op is skipped with this code and reason."""

    def __init__(self, code: str, reason: str, **details: Any) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.details = details


def _quote_list(items: list[str], limit: int = 20) -> str:
    shown = ", ".join(items[:limit]) or "none"
    return shown + (f" (and {len(items) - limit} more)" if len(items) > limit else "")


def _ref(node_id: str) -> str:
    return f"nodes.{node_id}" if _IDENTIFIER.match(node_id) else f"nodes[{node_id!r}]"


def _op_json(**values: Any) -> str:
    return json.dumps(values, separators=(", ", ": "))


# --- reference rewriting -----------------------------------------------------------------


def _rewrite_expression(text: str, old: str, new: str) -> tuple[str, int]:
    count = 0
    replacement = _ref(new)
    if _IDENTIFIER.match(old):
        dotted = re.compile(rf"(?<![\w.])nodes\s*\.\s*{re.escape(old)}(?!\w)")
        text, n = dotted.subn(lambda _m: replacement, text)
        count += n
    indexed = re.compile(rf"(?<![\w.])nodes\s*\[\s*(['\"]){re.escape(old)}\1\s*\]")
    text, n = indexed.subn(lambda m: f"nodes[{m.group(1)}{new}{m.group(1)}]", text)
    return text, count + n


def _rewrite_string(text: str, old: str, new: str, *, bare: bool) -> tuple[str, int]:
    if bare:
        return _rewrite_expression(text, old, new)
    total = 0

    def span(match: re.Match[str]) -> str:
        nonlocal total
        rewritten, n = _rewrite_expression(match.group(0), old, new)
        total += n
        return rewritten

    return _TEMPLATE_SPAN.sub(span, text), total


def rewrite_references(value: Any, old: str, new: str, *, bare: bool = False) -> tuple[Any, int]:
    """Rewrite ``nodes.<old>`` / ``nodes['<old>']`` to name ``new`` inside templates.

    Args:
        value: a string or a JSON structure (params, ``when``, ``foreach``); only text inside
            ``{{ }}`` and ``{% %}`` is touched.
        old: the node id being renamed.
        new: its new id (written as ``nodes['new']`` when it is not an identifier).
        bare: read a string without template markers as a bare expression (``when``).

    Returns:
        The rewritten value (a new structure) and the number of references rewritten.
    """
    if isinstance(value, str):
        if "{" not in value and not bare:
            return value, 0
        return _rewrite_string(value, old, new, bare=bare and "{" not in value)
    if isinstance(value, dict):
        total = 0
        out: dict[str, Any] = {}
        for key, item in value.items():
            out[key], n = rewrite_references(item, old, new)
            total += n
        return out, total
    if isinstance(value, list):
        total = 0
        items: list[Any] = []
        for item in value:
            rewritten, n = rewrite_references(item, old, new)
            items.append(rewritten)
            total += n
        return items, total
    return value, 0


# --- the editor --------------------------------------------------------------------------


def _needs_of(node: dict[str, Any]) -> list[str] | None:
    needs = node.get("needs")
    if needs is None:
        return None
    if isinstance(needs, str):
        return [needs]
    return [n for n in needs if isinstance(n, str)] if isinstance(needs, list) else []


def _pydantic_message(exc: pydantic.ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"])
        message = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


class _Editor:
    """Applies ops to one working document."""

    def __init__(self, doc: dict[str, Any], catalog: Catalog | None) -> None:
        self.doc = doc
        nodes = doc.get("nodes")
        if not isinstance(nodes, list):
            nodes = doc["nodes"] = []
        self.nodes: list[dict[str, Any]] = nodes
        self.catalog = catalog
        self.materialised = False

    # queries

    def ids(self) -> list[str]:
        return [str(n.get("id")) for n in self.nodes]

    def find(self, node_id: str) -> dict[str, Any] | None:
        return next((n for n in self.nodes if n.get("id") == node_id), None)

    def explicit(self) -> bool:
        return any(n.get("needs") is not None for n in self.nodes)

    def upstream(self) -> dict[str, list[str]]:
        """The effective edges ``{node: [needs]}`` (listed order when nothing declares needs)."""
        ids = self.ids()
        if not self.explicit():
            return {node_id: ids[i - 1 : i] for i, node_id in enumerate(ids)}
        return {str(n.get("id")): _needs_of(n) or [] for n in self.nodes}

    def path(self, start: str, goal: str) -> list[str] | None:
        """Return ``[start, ..., goal]`` following needs upstream, or ``None``."""
        upstream = self.upstream()
        parents: dict[str, str | None] = {start: None}
        stack = [start]
        while stack:
            current = stack.pop()
            if current == goal:
                chain = [current]
                while (parent := parents[chain[-1]]) is not None:
                    chain.append(parent)
                return chain[::-1]
            for need in upstream.get(current, ()):
                if need not in parents:
                    parents[need] = current
                    stack.append(need)
        return None

    def require_node(self, node_id: str) -> dict[str, Any]:
        node = self.find(node_id)
        if node is None:
            raise _Skip("node_not_found", self.not_found(node_id), **self.known(node_id))
        return node

    def known(self, node_id: str) -> dict[str, Any]:
        close = difflib.get_close_matches(node_id, self.ids(), n=3, cutoff=0.6)
        return {"existing_node_ids": self.ids(), "close_matches": close}

    def not_found(self, node_id: str) -> str:
        close = difflib.get_close_matches(node_id, self.ids(), n=3, cutoff=0.6)
        hint = f"; did you mean {_quote_list(close)}?" if close else ""
        return f"there is no node {node_id!r}{hint} Existing nodes: {_quote_list(self.ids())}"

    # mutations shared by ops

    def materialise(self) -> None:
        """Write listed-order edges out as ``needs`` (before the first explicit edge)."""
        if self.explicit() or len(self.nodes) < 2:
            return
        for previous, node in zip(self.nodes, self.nodes[1:], strict=False):
            node["needs"] = [previous["id"]]
        self.materialised = True

    def check_type(self, node_type: Any) -> None:
        if not isinstance(node_type, str) or not node_type:
            raise _Skip("invalid_op", "type must be a non-empty string")
        if self.catalog is None or self.catalog.lookup(node_type) is not None:
            return
        finder: Callable[[str], list[str]] | None = getattr(self.catalog, "close_matches", None)
        if finder is not None:
            close = list(finder(node_type))
        else:
            close = difflib.get_close_matches(node_type, list(self.catalog.types()), n=3)
        hint = (
            f"close matches: {', '.join(close)}"
            if close
            else "no close match; list the types with GET /v1/connectors?detail=summary"
        )
        raise _Skip(
            "node_type_not_registered",
            f"connector type {node_type!r} is not registered; {hint}",
            type=node_type,
            close_matches=close,
        )

    def check_needs(self, node_id: str, needs: Any) -> list[str]:
        if isinstance(needs, str):
            needs = [needs]
        if not isinstance(needs, list) or not all(isinstance(n, str) for n in needs):
            raise _Skip("invalid_op", "needs must be a list of node ids")
        unique: list[str] = list(dict.fromkeys(needs))
        for need in unique:
            if need == node_id:
                raise _Skip(
                    "cycle_introduced", f"node {node_id!r} cannot need itself", path=[node_id]
                )
            if self.find(need) is None:
                raise _Skip(
                    "invalid_edge_source",
                    f"node {node_id!r} cannot need {need!r}: {self.not_found(need)}",
                    source=need,
                    **self.known(need),
                )
            cycle = self.path(need, node_id) if self.find(node_id) is not None else None
            if cycle is not None:
                loop = [*cycle[::-1], node_id]
                raise _Skip(
                    "cycle_introduced",
                    f"node {node_id!r} cannot need {need!r}: {need!r} already depends on "
                    f"{node_id!r}, so this would make the cycle {' -> '.join(loop)}",
                    path=loop,
                )
        return unique

    def validated_node(self, node: dict[str, Any]) -> dict[str, Any]:
        try:
            Node.model_validate(node)
        except pydantic.ValidationError as exc:
            raise _Skip(
                "invalid_op", f"node {node.get('id')!r}: {_pydantic_message(exc)}"
            ) from None
        return node

    # ops

    def add(self, op: dict[str, Any]) -> str:
        node_id = op["node_id"]
        existing = self.find(node_id)
        if existing is not None:
            raise _Skip(
                "node_already_exists",
                f"node {node_id!r} already exists (type {existing.get('type')}); use an edit "
                "op to change it, or add it under another node_id",
                existing_type=existing.get("type"),
            )
        if not _NODE_ID.match(node_id):
            raise _Skip(
                "invalid_op",
                f"{node_id!r} is not a valid node id (letters, digits, _ and -, starting with "
                "a letter or _, at most 64 characters)",
            )
        self.check_type(op["type"])
        node: dict[str, Any] = {"id": node_id, "type": op["type"]}
        node.update({k: op[k] for k in NODE_FIELDS if k in op and op[k] is not None})
        if "needs" in node:
            node["needs"] = self.check_needs(node_id, node["needs"])
        self.validated_node(node)
        if "needs" in node:
            self.materialise()
        self.nodes.append(node)
        after = f" after {', '.join(node['needs'])}" if node.get("needs") else ""
        return f"added node {node_id!r} ({op['type']}){after}"

    def edit(self, op: dict[str, Any]) -> str:
        node_id = op["node_id"]
        node = self.require_node(node_id)
        changes = [k for k in ("type", *NODE_FIELDS) if k in op]
        if not changes:
            raise _Skip(
                "invalid_op",
                f"an edit op needs at least one of: type, {', '.join(NODE_FIELDS)}",
            )
        updated = copy.deepcopy(node)
        for key in changes:
            value = op[key]
            if key == "type":
                self.check_type(value)
            elif key == "params" and value is not None:
                if not isinstance(value, dict):
                    raise _Skip("invalid_op", "params must be an object (merged into params)")
                params = dict(updated.get("params") or {})
                for name, item in value.items():
                    if item is None:
                        params.pop(name, None)
                    else:
                        params[name] = item
                updated["params"] = params
                continue
            elif key == "needs" and value is not None:
                value = self.check_needs(node_id, value)
            if value is None:
                updated.pop(key, None)
            else:
                updated[key] = value
        self.validated_node(updated)
        if "needs" in op:
            self.materialise()
            if op["needs"] is None:
                updated["needs"] = []  # explicit mode: no needs means a root
        self.nodes[self.nodes.index(node)] = updated
        return f"edited node {node_id!r} ({', '.join(changes)})"

    def delete(self, op: dict[str, Any]) -> str:
        node_id = op["node_id"]
        node = self.require_node(node_id)
        explicit = self.explicit()
        position = self.nodes.index(node)
        self.nodes.remove(node)
        if not explicit:
            ids = self.ids()
            if 0 < position < len(ids):
                return (
                    f"deleted node {node_id!r} ({ids[position]!r} now follows "
                    f"{ids[position - 1]!r} in listed order)"
                )
            return f"deleted node {node_id!r}"
        downstream = []
        for other in self.nodes:
            needs = _needs_of(other)
            if needs is not None and node_id in needs:
                other["needs"] = [n for n in needs if n != node_id]
                downstream.append(str(other["id"]))
        removed = f" and its edges to {', '.join(downstream)}" if downstream else ""
        return f"deleted node {node_id!r}{removed}"

    def endpoints(self, op: dict[str, Any]) -> tuple[str, str]:
        source, target = op["node_id"], op["target_node_id"]
        if self.find(source) is None:
            raise _Skip(
                "invalid_edge_source",
                f"edge source: {self.not_found(source)}",
                **self.known(source),
            )
        if self.find(target) is None:
            raise _Skip(
                "invalid_edge_target",
                f"edge target: {self.not_found(target)}",
                **self.known(target),
            )
        return source, target

    def connect(self, op: dict[str, Any]) -> str:
        source, target = self.endpoints(op)
        if source == target:
            raise _Skip("cycle_introduced", f"node {source!r} cannot need itself", path=[source])
        if source in self.upstream()[target]:
            raise _Skip(
                "duplicate_connection",
                f"{target!r} already needs {source!r}; nothing to connect",
                source=source,
                target=target,
            )
        cycle = self.path(source, target)
        if cycle is not None:
            shown = " -> ".join([*cycle[::-1], target])
            raise _Skip(
                "cycle_introduced",
                f"connecting {source!r} -> {target!r} would make the cycle {shown}, because "
                f"{source!r} already depends on {target!r}",
                path=[*cycle[::-1], target],
            )
        self.materialise()
        node = self.require_node(target)
        node["needs"] = [*(_needs_of(node) or []), source]
        return f"connected {source!r} -> {target!r} ({target!r} now needs {source!r})"

    def disconnect(self, op: dict[str, Any]) -> str:
        source, target = self.endpoints(op)
        needs = self.upstream()[target]
        if source not in needs:
            raise _Skip(
                "edge_not_found",
                f"{target!r} does not need {source!r}; its needs are: {_quote_list(needs)}",
                source=source,
                target=target,
                needs=needs,
            )
        self.materialise()
        node = self.require_node(target)
        node["needs"] = [n for n in _needs_of(node) or [] if n != source]
        return f"disconnected {source!r} -> {target!r}"

    def rename(self, op: dict[str, Any]) -> str:
        old, new = op["node_id"], op["new_id"]
        node = self.require_node(old)
        if new == old:
            raise _Skip("invalid_op", f"new_id is the same as node_id {old!r}")
        if self.find(new) is not None:
            raise _Skip(
                "node_already_exists",
                f"cannot rename {old!r} to {new!r}: a node {new!r} already exists",
            )
        if not _NODE_ID.match(new):
            raise _Skip("invalid_op", f"{new!r} is not a valid node id")
        node["id"] = new
        needs_updated: list[str] = []
        references = 0
        for other in self.nodes:
            needs = _needs_of(other)
            if needs is not None and old in needs:
                other["needs"] = [new if n == old else n for n in needs]
                needs_updated.append(str(other["id"]))
            references += self.rewrite_node(other, old, new)
        notes = []
        if needs_updated:
            notes.append(f"updated the needs of {', '.join(needs_updated)}")
        if references:
            notes.append(f"rewrote {references} template reference(s)")
        extra = f" ({'; '.join(notes)})" if notes else ""
        return f"renamed node {old!r} to {new!r}{extra}"

    @staticmethod
    def rewrite_node(node: dict[str, Any], old: str, new: str) -> int:
        total = 0
        for key in ("params", "when", "foreach"):
            if key in node:
                bare = key == "when" and isinstance(node[key], str)
                node[key], n = rewrite_references(node[key], old, new, bare=bare)
                total += n
        return total

    def set(self, op: dict[str, Any]) -> str:
        name, value = op["field"], op["value"]
        if name not in SET_FIELDS:
            why = {
                "nodes": "change nodes with add, edit, delete, connect, disconnect and rename ops",
                "namespace": "the namespace of a stored workflow cannot be changed by an edit",
                "version": "the version is set by the server",
            }.get(name, f"settable fields are: {', '.join(SET_FIELDS)}")
            raise _Skip("invalid_op", f"cannot set {name!r}: {why}", field=name)
        candidate = {k: v for k, v in self.doc.items() if k != name}
        if value is not None:
            candidate[name] = value
        try:
            Workflow.model_validate(candidate)
        except pydantic.ValidationError as exc:
            errors = [e for e in exc.errors() if e["loc"][:1] == (name,)]
            if errors:
                message = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in errors)
                raise _Skip(
                    "invalid_op", f"invalid value for {name}: {message}", field=name
                ) from None
        if value is None:
            self.doc.pop(name, None)
            return f"removed {name}"
        self.doc[name] = value
        return f"set {name}"


# --- op shape ----------------------------------------------------------------------------

_REQUIRED: dict[str, tuple[str, ...]] = {
    "add": ("node_id", "type"),
    "edit": ("node_id",),
    "delete": ("node_id",),
    "connect": ("node_id", "target_node_id"),
    "disconnect": ("node_id", "target_node_id"),
    "rename": ("node_id", "new_id"),
    "set": ("field", "value"),
}
_OPTIONAL: dict[str, tuple[str, ...]] = {
    "add": NODE_FIELDS,
    "edit": ("type", *NODE_FIELDS),
}
_STRING_KEYS = ("node_id", "target_node_id", "new_id", "field")


def _check_shape(op: Any) -> tuple[str, dict[str, Any]]:
    """Return ``(name, op)`` or raise ``_Skip("invalid_op")``."""
    if not isinstance(op, dict):
        raise _Skip("invalid_op", f"an op must be an object, not {type(op).__name__}")
    name = op.get("op")
    if name not in _REQUIRED:
        raise _Skip(
            "invalid_op",
            f"unknown op {name!r}; ops are: {', '.join(OPS)}",
            allowed_ops=list(OPS),
        )
    required = _REQUIRED[name]
    allowed = {"op", *required, *_OPTIONAL.get(name, ())}
    missing = [k for k in required if k not in op]
    if missing:
        raise _Skip(
            "invalid_op",
            f"op {name!r} needs {', '.join(missing)}",
            missing=missing,
            required=list(required),
        )
    unknown = sorted(k for k in op if k not in allowed)
    if unknown:
        raise _Skip(
            "invalid_op",
            f"unknown key(s) {', '.join(unknown)} for op {name!r}; allowed: "
            f"{', '.join(sorted(allowed - {'op'}))}",
            unknown=unknown,
        )
    for key in _STRING_KEYS:
        if key in op and not (isinstance(op[key], str) and op[key]):
            raise _Skip("invalid_op", f"{key} must be a non-empty string")
    return name, op


# --- validation and summary --------------------------------------------------------------


def _issue_dict(issue: ValidationIssue) -> dict[str, Any]:
    return {
        "node_id": issue.node_id,
        "node_type": issue.node_type,
        "field": issue.field,
        "value": issue.value,
        "error": issue.error,
        "code": issue.code,
    }


def _validate(doc: dict[str, Any], catalog: Catalog | None) -> tuple[list[dict[str, Any]], bool]:
    """Return the validation errors of ``doc`` and whether it parsed as a workflow."""
    try:
        wf = parse_workflow(doc)
    except WorkflowInvalid as exc:
        types = {n.get("id"): n.get("type") for n in doc.get("nodes") or [] if isinstance(n, dict)}
        errors = [
            {
                "node_id": err.get("node_id"),
                "node_type": types.get(err.get("node_id")),
                "field": err.get("field") or err.get("path") or None,
                "value": None,
                "error": err.get("error", ""),
                "code": "invalid_document",
            }
            for err in exc.extra.get("errors", [])
        ]
        return errors, False
    return [_issue_dict(issue) for issue in validate_workflow(wf, catalog)], True


def _hint(error: dict[str, Any], editor: _Editor) -> str:
    """An actionable next step for one validation error ('' when there is none)."""
    code, node_id, field_ = error.get("code"), error.get("node_id"), error.get("field") or ""
    param = field_.removeprefix("params.").split(".")[0].split("[")[0]
    if code == "not_upstream":
        ref = str(error["value"])
        if node_id is not None and editor.path(ref, node_id) is not None:
            return (
                f"{ref!r} depends on {node_id!r} and runs after it, so {node_id!r} cannot read "
                f"its output: reverse that dependency or drop the reference"
            )
        return "fix: " + _op_json(op="connect", node_id=ref, target_node_id=node_id)
    if code == "missing_param":
        return "fix: " + _op_json(op="edit", node_id=node_id, params={param: "..."})
    if code == "unknown_param":
        return "fix: remove it with " + _op_json(op="edit", node_id=node_id, params={param: None})
    if code == "unknown_type":
        return 'fix: an edit op with a registered "type"'
    if code in ("unknown_need", "self_need"):
        return 'fix: an edit op with the right "needs"'
    if code == "cycle":
        return "fix: disconnect one edge of the cycle"
    if code == "unknown_node_reference":
        return "fix: reference an existing node, or add the missing one"
    if code == "undeclared_output":
        return "fix: read one of the declared output fields"
    return ""


def _listed(items: list[str]) -> str:
    shown = "; ".join(items[:MAX_LISTED])
    if len(items) > MAX_LISTED:
        shown += f"; and {len(items) - MAX_LISTED} more"
    return shown


def _summary(
    total: int,
    applied: list[AppliedItem],
    skipped: list[SkippedItem],
    errors: list[dict[str, Any]],
    editor: _Editor,
    *,
    parsed: bool,
) -> str:
    parts: list[str] = []
    if total == 0:
        parts.append("No operations were given.")
    elif applied:
        described = [f"#{a.index} {a.description}" for a in applied]
        parts.append(f"Applied {len(applied)} of {total} operation(s): {_listed(described)}.")
    else:
        parts.append(f"None of the {total} operation(s) applied; the workflow is unchanged.")
    if editor.materialised:
        parts.append(
            "The workflow's listed-order edges were first written out as explicit needs, "
            "so its execution order is unchanged."
        )
    if skipped:
        described = [
            f"#{s.index} {s.op or 'op'}"
            + (f" {s.node_id!r}" if s.node_id else "")
            + f" [{s.reason_code}]: {s.reason}"
            for s in skipped
        ]
        parts.append(f"Skipped {len(skipped)}: {_listed(described)}.")
    if errors:
        described = []
        for error in errors:
            hint = _hint(error, editor)
            described.append(error["error"] + (f" ({hint})" if hint else ""))
        parts.append(
            f"The resulting workflow has {len(errors)} validation error(s) to fix: "
            f"{_listed(described)}."
        )
        if not parsed:
            parts.append("It is not a structurally valid workflow, so it cannot be saved.")
    else:
        parts.append("The resulting workflow is valid.")
    return " ".join(parts)


def apply_ops(workflow_doc: dict[str, Any], ops: list[Any], catalog: Catalog | None) -> PatchResult:
    """Apply ``ops`` in order to a copy of ``workflow_doc``, skipping those that cannot apply.

    Args:
        workflow_doc: a workflow document (JSON form); not modified.
        ops: the EditOps (see the module docstring); anything else is skipped as
            ``invalid_op``.
        catalog: the connector catalog for type checks and validation (``None`` skips
            type and params checks).

    Returns:
        The edited document with what applied, what was skipped, its validation errors
        and a summary paragraph.
    """
    doc = copy.deepcopy(workflow_doc)
    editor = _Editor(doc, catalog)
    handlers: dict[str, Callable[[dict[str, Any]], str]] = {
        "add": editor.add,
        "edit": editor.edit,
        "delete": editor.delete,
        "connect": editor.connect,
        "disconnect": editor.disconnect,
        "rename": editor.rename,
        "set": editor.set,
    }
    applied: list[AppliedItem] = []
    skipped: list[SkippedItem] = []
    for index, raw in enumerate(ops):
        name = raw.get("op") if isinstance(raw, dict) else None
        node_id = raw.get("node_id") if isinstance(raw, dict) else None
        try:
            name, op = _check_shape(raw)
            description = handlers[name](op)
        except _Skip as skip:
            skipped.append(
                SkippedItem(
                    index=index,
                    op=name if isinstance(name, str) else None,
                    node_id=node_id if isinstance(node_id, str) else None,
                    reason_code=skip.code,
                    reason=skip.reason,
                    details=skip.details,
                )
            )
            continue
        applied.append(AppliedItem(index, name, node_id, description))
    errors, parsed = _validate(doc, catalog)
    summary = _summary(len(ops), applied, skipped, errors, editor, parsed=parsed)
    return PatchResult(
        workflow=doc,
        applied=applied,
        skipped_items=skipped,
        validation_errors=errors,
        summary=summary,
        changed=doc != workflow_doc,
        parsed=parsed,
    )
