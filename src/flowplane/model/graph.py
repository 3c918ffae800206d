"""The workflow graph: topology queries for the engine and static validation of a workflow.

:class:`Graph` precomputes edges, roots, leaves and the topological order so the engine can
query it cheaply. :func:`validate_workflow` reports every problem it can find (ids, needs,
cycles, connector types, params against the connector's ``inputSchema``, template syntax and
references, the ``inputs`` schema) as :class:`ValidationIssue` values; :func:`check_workflow`
raises them as one :class:`~flowplane.errors.WorkflowInvalid`.
"""

from __future__ import annotations

import difflib
import heapq
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import pydantic
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from flowplane.errors import TemplateError, WorkflowEmpty, WorkflowInvalid
from flowplane.model.document import Node, Workflow, is_template
from flowplane.model.inputs import check_inputs_schema, format_error_path
from flowplane.model.templates import (
    check_template,
    iter_template_strings,
    output_fields,
    references,
    secret_names,
)

__all__ = [
    "Catalog",
    "Graph",
    "ManifestLike",
    "ValidationIssue",
    "check_workflow",
    "credential_references",
    "format_issues",
    "salvage_issues",
    "validate_workflow",
]


class ManifestLike(Protocol):
    """What validation needs from a connector manifest."""

    @property
    def input_schema(self) -> dict[str, Any]: ...  # pragma: no cover - protocol

    @property
    def output_schema(self) -> dict[str, Any]: ...  # pragma: no cover - protocol


class Catalog(Protocol):
    """Connector lookup (the connector registry implements it)."""

    def lookup(self, type: str) -> ManifestLike | None: ...  # pragma: no cover

    def types(self) -> Iterable[str]: ...  # pragma: no cover - protocol


@dataclass(frozen=True)
class ValidationIssue:
    """One problem found in a workflow.

    Attributes:
        node_id: the node concerned, ``None`` for workflow-level problems.
        node_type: that node's connector type.
        field: where in the node (``needs``, ``params.url``, ``when``, ...), or ``inputs``.
        value: the offending value, when useful.
        error: a human-readable message.
        code: a stable machine code (``duplicate_id``, ``cycle``, ``not_upstream``, ...).
    """

    node_id: str | None
    node_type: str | None
    field: str | None
    value: Any
    error: str
    code: str

    def to_dict(self) -> dict[str, Any]:
        """Return the issue as a JSON-safe mapping."""
        return asdict(self)


class Graph:
    """The dependency graph of a workflow, precomputed for cheap queries.

    Unknown needs and self-needs are ignored (validation reports them); on a cycle every
    query works except :meth:`topological_order`, which raises.
    """

    __slots__ = (
        "_ancestors",
        "_downstream",
        "_index",
        "_leaves",
        "_nodes",
        "_roots",
        "_topo",
        "_upstream",
    )

    def __init__(self, nodes: Iterable[Node], edges: dict[str, list[str]]) -> None:
        self._nodes: dict[str, Node] = {}
        for node in nodes:
            self._nodes.setdefault(node.id, node)
        self._index = {node_id: i for i, node_id in enumerate(self._nodes)}
        self._upstream: dict[str, tuple[str, ...]] = {}
        downstream: dict[str, list[str]] = {node_id: [] for node_id in self._nodes}
        for node_id in self._nodes:
            needs = [n for n in dict.fromkeys(edges.get(node_id, ())) if n in self._nodes]
            needs = [n for n in needs if n != node_id]
            self._upstream[node_id] = tuple(needs)
            for need in needs:
                downstream[need].append(node_id)
        self._downstream = {k: tuple(v) for k, v in downstream.items()}
        self._roots = tuple(n for n in self._nodes if not self._upstream[n])
        self._leaves = tuple(n for n in self._nodes if not self._downstream[n])
        self._ancestors: dict[str, frozenset[str]] = {}
        self._topo = self._kahn()

    @classmethod
    def from_workflow(cls, wf: Workflow) -> Graph:
        """Build the graph of ``wf`` (edges from :meth:`Workflow.edges`)."""
        return cls(wf.nodes, wf.edges())

    def _kahn(self) -> tuple[str, ...] | None:
        """Return a topological order (document order among ready nodes), or ``None``."""
        pending = {n: len(up) for n, up in self._upstream.items()}
        heap = [self._index[n] for n in self._roots]
        ids = list(self._nodes)
        order: list[str] = []
        while heap:
            node_id = ids[heapq.heappop(heap)]
            order.append(node_id)
            for child in self._downstream[node_id]:
                pending[child] -= 1
                if pending[child] == 0:
                    heapq.heappush(heap, self._index[child])
        return tuple(order) if len(order) == len(ids) else None

    @property
    def node_ids(self) -> tuple[str, ...]:
        """All node ids, in document order."""
        return tuple(self._nodes)

    def node(self, node_id: str) -> Node:
        """Return the node ``node_id`` (``KeyError`` when absent)."""
        return self._nodes[node_id]

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._nodes

    def __len__(self) -> int:
        return len(self._nodes)

    def upstream(self, node_id: str) -> tuple[str, ...]:
        """Return the direct needs of ``node_id``."""
        return self._upstream[node_id]

    def downstream(self, node_id: str) -> tuple[str, ...]:
        """Return the nodes that directly need ``node_id``, in document order."""
        return self._downstream[node_id]

    def ancestors(self, node_id: str) -> frozenset[str]:
        """Return every node ``node_id`` transitively needs (cached)."""
        cached = self._ancestors.get(node_id)
        if cached is not None:
            return cached
        seen: set[str] = set()
        stack = list(self._upstream[node_id])
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            known = self._ancestors.get(current)
            if known is not None:
                seen.update(known)
            else:
                stack.extend(self._upstream[current])
        seen.discard(node_id)  # on a cycle a node reaches itself
        result = frozenset(seen)
        self._ancestors[node_id] = result
        return result

    def roots(self) -> tuple[str, ...]:
        """Return the nodes without needs, in document order."""
        return self._roots

    def leaves(self) -> tuple[str, ...]:
        """Return the nodes nothing needs, in document order."""
        return self._leaves

    def topological_order(self) -> list[str]:
        """Return all node ids, each after its needs (document order breaks ties).

        Raises:
            WorkflowInvalid: the graph has a cycle.
        """
        if self._topo is None:
            cycles = self.cycles()
            shown = " -> ".join(cycles[0]) if cycles else "?"
            raise WorkflowInvalid(f"the workflow graph has a cycle: {shown}")
        return list(self._topo)

    def cycles(self) -> list[list[str]]:
        """Return cycles as paths in execution order, e.g. ``[["a", "b", "a"]]``."""
        if self._topo is not None:
            return []
        done: set[str] = set()
        pending = {n: len(up) for n, up in self._upstream.items()}
        queue = list(self._roots)
        while queue:  # drop everything that is not on or after a cycle
            node_id = queue.pop()
            done.add(node_id)
            for child in self._downstream[node_id]:
                pending[child] -= 1
                if pending[child] == 0:
                    queue.append(child)
        reported: set[str] = set()
        found: list[list[str]] = []
        for start in self._nodes:
            if start in done or start in reported:
                continue
            walk: list[str] = []
            position: dict[str, int] = {}
            current = start
            while current not in position and current not in reported:
                position[current] = len(walk)
                walk.append(current)
                current = next(n for n in self._upstream[current] if n not in done)
            if current in reported:
                continue
            cycle = walk[position[current] :][::-1]  # upstream walk, reversed: execution order
            first = min(range(len(cycle)), key=lambda i: self._index[cycle[i]])
            cycle = cycle[first:] + cycle[:first]
            reported.update(cycle)
            found.append([*cycle, cycle[0]])
        return found


# --- validation --------------------------------------------------------------------------

_RAW = "x-raw"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _suggest(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=3, cutoff=0.6)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def _ref(node_id: str) -> str:
    return f"nodes.{node_id}" if _IDENTIFIER.match(node_id) else f"nodes[{node_id!r}]"


class _Validator:
    """Collects the issues of one workflow."""

    def __init__(self, wf: Workflow, catalog: Catalog | None) -> None:
        self.wf = wf
        self.catalog = catalog
        self.graph = Graph.from_workflow(wf)
        self.issues: list[ValidationIssue] = []
        self.manifests: dict[str, ManifestLike | None] = {}

    def add(self, node: Node | None, field: str | None, value: Any, error: str, code: str) -> None:
        self.issues.append(
            ValidationIssue(
                node_id=node.id if node else None,
                node_type=node.type if node else None,
                field=field,
                value=value,
                error=error,
                code=code,
            )
        )

    def manifest(self, node_type: str) -> ManifestLike | None:
        if self.catalog is None:
            return None
        if node_type not in self.manifests:
            self.manifests[node_type] = self.catalog.lookup(node_type)
        return self.manifests[node_type]

    def run(self) -> list[ValidationIssue]:
        self.check_structure()
        if self.wf.inputs is not None:
            try:
                check_inputs_schema(self.wf.inputs)
            except WorkflowInvalid as exc:
                self.add(None, "inputs", None, exc.detail, "invalid_inputs_schema")
        for node in self.wf.nodes:
            raw = self.check_type_and_params(node)
            self.check_templates(node, raw)
        return self.issues

    def check_structure(self) -> None:
        if not self.wf.nodes:
            self.add(
                None,
                "nodes",
                None,
                "the workflow has no nodes yet (a draft): add one before running it",
                "workflow_empty",
            )
        seen: set[str] = set()
        for node in self.wf.nodes:
            if node.id in seen:
                self.add(node, "id", node.id, f"duplicate node id {node.id!r}", "duplicate_id")
            seen.add(node.id)
        for node in self.wf.nodes:
            for need in node.needs or ():
                if need == node.id:
                    self.add(node, "needs", need, f"node {node.id!r} needs itself", "self_need")
                elif need not in seen:
                    self.add(
                        node,
                        "needs",
                        need,
                        f"node {node.id!r} needs unknown node {need!r}" + _suggest(need, seen),
                        "unknown_need",
                    )
        for cycle in self.graph.cycles():
            node = self.graph.node(cycle[0])
            self.add(node, "needs", cycle, f"the needs form a cycle: {' -> '.join(cycle)}", "cycle")

    def check_type_and_params(self, node: Node) -> set[str]:
        """Check the type and params; return the names of raw (not templated) params."""
        if self.catalog is None:
            return set()
        manifest = self.manifest(node.type)
        if manifest is None:
            self.add(
                node,
                "type",
                node.type,
                f"unknown connector type {node.type!r}" + _suggest(node.type, self.catalog.types()),
                "unknown_type",
            )
            return set()
        schema = manifest.input_schema or {}
        properties = schema.get("properties")
        properties = properties if isinstance(properties, dict) else {}
        raw = {k for k, v in properties.items() if isinstance(v, dict) and v.get(_RAW) is True}
        for name in schema.get("required") or ():
            if name not in node.params:
                self.add(
                    node,
                    f"params.{name}",
                    None,
                    f"node {node.id!r}: missing required param {name!r}",
                    "missing_param",
                )
        additional = schema.get("additionalProperties", True)
        patterns = schema.get("patternProperties") or {}
        for name, value in node.params.items():
            sub = properties.get(name)
            if sub is None and any(re.search(p, name) for p in patterns):
                continue
            if sub is None and additional is False:
                self.add(
                    node,
                    f"params.{name}",
                    value,
                    f"node {node.id!r}: unknown param {name!r} for {node.type}"
                    + _suggest(name, properties),
                    "unknown_param",
                )
                continue
            sub = sub if sub is not None else additional
            if isinstance(sub, dict) and (name in raw or not _has_template(value)):
                self.check_param_value(node, name, value, sub, schema)
        return raw

    def check_param_value(
        self, node: Node, name: str, value: Any, sub: dict[str, Any], root: dict[str, Any]
    ) -> None:
        defs = {k: root[k] for k in ("$defs", "definitions") if k in root}
        try:
            errors = list(Draft202012Validator({**defs, **sub}).iter_errors(value))
        except (SchemaError, ValueError, TypeError, LookupError):
            return  # a broken connector schema is the connector's bug, not the workflow's
        for error in errors:
            where = format_error_path([name, *error.absolute_path])
            self.add(
                node,
                f"params.{where}",
                error.instance,
                f"node {node.id!r}: params.{where}: {error.message}",
                "invalid_param",
            )

    def check_templates(self, node: Node, raw: set[str]) -> None:
        params = {k: v for k, v in node.params.items() if k not in raw}
        sources: list[tuple[str, Any, bool]] = [("params", params, False)]
        for path, text in iter_template_strings(params, "params"):
            self.check_syntax(node, path, text, "invalid_template")
        if isinstance(node.when, str):
            bare = not is_template(node.when)
            self.check_syntax(node, "when", node.when, "invalid_when", expression=bare)
            sources.append(("when", node.when, bare))
        if isinstance(node.foreach, str):
            stripped = node.foreach.strip()
            if not (stripped.startswith("{{") and stripped.endswith("}}")):
                self.add(
                    node,
                    "foreach",
                    node.foreach,
                    f"node {node.id!r}: foreach must be a list or one {{{{ expression }}}}",
                    "invalid_foreach",
                )
            else:
                self.check_syntax(node, "foreach", node.foreach, "invalid_foreach")
            sources.append(("foreach", node.foreach, False))
        elif isinstance(node.foreach, list):
            for path, text in iter_template_strings(node.foreach, "foreach"):
                self.check_syntax(node, path, text, "invalid_template")
            sources.append(("foreach", node.foreach, False))
        for field, value, bare in sources:
            self.check_references(node, field, value, bare)

    def check_syntax(
        self, node: Node, field: str, text: str, code: str, *, expression: bool = False
    ) -> None:
        try:
            check_template(text, expression=expression)
        except TemplateError as exc:
            self.add(node, field, text, f"node {node.id!r}: {field}: {exc.detail}", code)

    def check_references(self, node: Node, field: str, value: Any, bare: bool) -> None:
        ancestors = self.graph.ancestors(node.id)
        valid: set[str] = set()
        for ref in sorted(references(value, expression=bare)):
            if ref not in self.graph:
                self.add(
                    node,
                    field,
                    ref,
                    f"node {node.id!r} references {_ref(ref)}, which does not exist"
                    + _suggest(ref, self.graph.node_ids),
                    "unknown_node_reference",
                )
            elif ref not in ancestors:
                upstream = [n for n in self.graph.node_ids if n in ancestors]
                listed = ", ".join(upstream) if upstream else "none"
                self.add(
                    node,
                    field,
                    ref,
                    f"node {node.id!r} references {_ref(ref)}, which is not upstream of "
                    f"it (add it to needs); its upstream nodes are: {listed}",
                    "not_upstream",
                )
            else:
                valid.add(ref)
        if self.catalog is None:
            return
        for ref, name in sorted(output_fields(value, expression=bare)):
            if ref in valid:
                self.check_output_field(node, field, ref, name)

    def check_output_field(self, node: Node, field: str, ref: str, name: str) -> None:
        upstream = self.graph.node(ref)
        if upstream.foreach is not None:
            return  # a foreach node's output is the list of its iteration outputs
        manifest = self.manifest(upstream.type)
        if manifest is None:
            return
        schema = manifest.output_schema or {}
        declared = schema.get("properties")
        if not isinstance(declared, dict) or name in declared:
            return
        if schema.get("additionalProperties") is True:
            return
        fields = ", ".join(sorted(declared)) or "nothing"
        self.add(
            node,
            field,
            f"{_ref(ref)}.output.{name}",
            f"node {node.id!r} reads {_ref(ref)}.output.{name}, but {upstream.type} "
            f"outputs only: {fields}" + _suggest(name, declared),
            "undeclared_output",
        )


def _has_template(value: Any) -> bool:
    return next(iter_template_strings(value), None) is not None


def validate_workflow(wf: Workflow, catalog: Catalog | None) -> list[ValidationIssue]:
    """Return every problem found in ``wf`` (an empty list when it is valid).

    Args:
        wf: a parsed workflow.
        catalog: the connector catalog; ``None`` skips type and params checks.
    """
    return _Validator(wf, catalog).run()


def format_issues(wf: Workflow, issues: Iterable[ValidationIssue]) -> str:
    """Return a readable multi-line summary of ``issues``."""
    listed = list(issues)
    lines = [f"workflow {wf.name!r} is invalid ({len(listed)} problem(s)):"]
    lines.extend(f"  - [{issue.code}] {issue.error}" for issue in listed)
    return "\n".join(lines)


def check_workflow(wf: Workflow, catalog: Catalog | None) -> Graph:
    """Validate ``wf`` and return its graph.

    Raises:
        WorkflowEmpty: the workflow has no nodes and nothing else is wrong (a draft).
        WorkflowInvalid: with ``errors`` holding each :class:`ValidationIssue` as a dict.
    """
    issues = validate_workflow(wf, catalog)
    if issues and all(issue.code == "workflow_empty" for issue in issues):
        raise WorkflowEmpty(
            f"workflow {wf.name!r} has no nodes yet: it is a draft; add nodes "
            "(EditOps: POST /v1/workflows/{id}/operations) before running it",
            errors=[issue.to_dict() for issue in issues],
        )
    if issues:
        raise WorkflowInvalid(
            format_issues(wf, issues), errors=[issue.to_dict() for issue in issues]
        )
    return Graph.from_workflow(wf)


INVALID_NODE_TYPE = "flowplane.invalid-node"
"""The type of the stand-in of a node whose fields are invalid (see :func:`salvage_issues`)."""


def _stand_in(raw: Any) -> dict[str, Any] | None:
    """A valid node keeping the id and ``needs`` of an invalid one (``None``: no usable id)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        return None
    for stub in (
        {"id": raw["id"], "type": INVALID_NODE_TYPE, "needs": raw.get("needs")},
        {"id": raw["id"], "type": INVALID_NODE_TYPE},
    ):
        try:
            Node.model_validate(stub)
        except pydantic.ValidationError:
            continue
        return stub
    return None


def salvage_issues(doc: Any, catalog: Catalog | None) -> list[ValidationIssue]:
    """The graph, parameter and template problems of a document the model refused.

    A document with a bad field (a node without ``type``, a malformed duration) fails the
    model before the graph is checked; this checks the rest anyway, so that a user sees
    every problem in one pass. Each invalid node is replaced by a stand-in keeping its id
    and ``needs`` (its own problems are the model's); invalid top-level fields are dropped.
    Problems that only the stand-ins cause are left out.

    Returns:
        The problems found (empty when the rest cannot be checked, e.g. duplicate ids).
    """
    if not isinstance(doc, dict) or not isinstance(doc.get("nodes"), list):
        return []
    nodes: list[Any] = []
    invalid: set[str] = set()
    for raw in doc["nodes"]:
        try:
            Node.model_validate(raw)
        except pydantic.ValidationError:
            if isinstance(raw, dict) and isinstance(raw.get("id"), str):
                invalid.add(raw["id"])
            stub = _stand_in(raw)
            if stub is not None:
                nodes.append(stub)
            continue
        nodes.append(raw)
    candidate = {key: value for key, value in doc.items() if key != "nodes"}
    candidate["nodes"] = nodes
    wf: Workflow | None = None
    for _ in range(3):
        try:
            wf = Workflow.model_validate(candidate)
            break
        except pydantic.ValidationError as exc:
            keys = {err["loc"][0] for err in exc.errors() if err["loc"]}
            if not keys or "nodes" in keys:
                return []
            for key in keys:
                if key == "name":
                    candidate["name"] = "invalid"
                else:
                    candidate.pop(str(key), None)
    if wf is None:
        return []
    return [
        issue
        for issue in validate_workflow(wf, catalog)
        if issue.node_id not in invalid
        and not (isinstance(issue.value, str) and issue.value in invalid)
    ]


def credential_references(wf: Workflow) -> list[tuple[Node, str]]:
    """Each ``(node, credential name)`` the workflow's nodes use (``${NAME}``,
    ``{{ secrets.NAME }}``, in params, ``when`` or ``foreach``), in document order."""
    out: list[tuple[Node, str]] = []
    for node in wf.nodes:
        names = secret_names(node.params) | secret_names([node.when, node.foreach])
        out += [(node, name) for name in sorted(names) if name]
    return out
