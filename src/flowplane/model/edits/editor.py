"""The editor: applies each kind of op to one working workflow document."""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Callable
from typing import Any

import pydantic

from flowplane.model.document import NODE_ID_PATTERN, Node, Workflow
from flowplane.model.edits.ops import NODE_FIELDS, SET_FIELDS
from flowplane.model.edits.references import rewrite_references
from flowplane.model.edits.results import Skip
from flowplane.model.graph import Catalog

__all__ = ["Editor"]

_NODE_ID = re.compile(NODE_ID_PATTERN)


def _quote_list(items: list[str], limit: int = 20) -> str:
    shown = ", ".join(items[:limit]) or "none"
    return shown + (f" (and {len(items) - limit} more)" if len(items) > limit else "")


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


class Editor:
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
            raise Skip("node_not_found", self.not_found(node_id), **self.known(node_id))
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
            raise Skip("invalid_op", "type must be a non-empty string")
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
        raise Skip(
            "node_type_not_registered",
            f"connector type {node_type!r} is not registered; {hint}",
            type=node_type,
            close_matches=close,
        )

    def check_needs(self, node_id: str, needs: Any) -> list[str]:
        if isinstance(needs, str):
            needs = [needs]
        if not isinstance(needs, list) or not all(isinstance(n, str) for n in needs):
            raise Skip("invalid_op", "needs must be a list of node ids")
        unique: list[str] = list(dict.fromkeys(needs))
        for need in unique:
            if need == node_id:
                raise Skip(
                    "cycle_introduced", f"node {node_id!r} cannot need itself", path=[node_id]
                )
            if self.find(need) is None:
                raise Skip(
                    "invalid_edge_source",
                    f"node {node_id!r} cannot need {need!r}: {self.not_found(need)}",
                    source=need,
                    **self.known(need),
                )
            cycle = self.path(need, node_id) if self.find(node_id) is not None else None
            if cycle is not None:
                loop = [*cycle[::-1], node_id]
                raise Skip(
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
            raise Skip("invalid_op", f"node {node.get('id')!r}: {_pydantic_message(exc)}") from None
        return node

    # ops

    def add(self, op: dict[str, Any]) -> str:
        node_id = op["node_id"]
        existing = self.find(node_id)
        if existing is not None:
            raise Skip(
                "node_already_exists",
                f"node {node_id!r} already exists (type {existing.get('type')}); use an edit "
                "op to change it, or add it under another node_id",
                existing_type=existing.get("type"),
            )
        if not _NODE_ID.match(node_id):
            raise Skip(
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
            raise Skip(
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
                    raise Skip("invalid_op", "params must be an object (merged into params)")
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
            raise Skip(
                "invalid_edge_source",
                f"edge source: {self.not_found(source)}",
                **self.known(source),
            )
        if self.find(target) is None:
            raise Skip(
                "invalid_edge_target",
                f"edge target: {self.not_found(target)}",
                **self.known(target),
            )
        return source, target

    def connect(self, op: dict[str, Any]) -> str:
        source, target = self.endpoints(op)
        if source == target:
            raise Skip("cycle_introduced", f"node {source!r} cannot need itself", path=[source])
        if source in self.upstream()[target]:
            raise Skip(
                "duplicate_connection",
                f"{target!r} already needs {source!r}; nothing to connect",
                source=source,
                target=target,
            )
        cycle = self.path(source, target)
        if cycle is not None:
            shown = " -> ".join([*cycle[::-1], target])
            raise Skip(
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
            raise Skip(
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
            raise Skip("invalid_op", f"new_id is the same as node_id {old!r}")
        if self.find(new) is not None:
            raise Skip(
                "node_already_exists",
                f"cannot rename {old!r} to {new!r}: a node {new!r} already exists",
            )
        if not _NODE_ID.match(new):
            raise Skip("invalid_op", f"{new!r} is not a valid node id")
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
            raise Skip("invalid_op", f"cannot set {name!r}: {why}", field=name)
        candidate = {k: v for k, v in self.doc.items() if k != name}
        if value is not None:
            candidate[name] = value
        try:
            Workflow.model_validate(candidate)
        except pydantic.ValidationError as exc:
            errors = [e for e in exc.errors() if e["loc"][:1] == (name,)]
            if errors:
                message = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in errors)
                raise Skip(
                    "invalid_op", f"invalid value for {name}: {message}", field=name
                ) from None
        if value is None:
            self.doc.pop(name, None)
            return f"removed {name}"
        self.doc[name] = value
        return f"set {name}"
