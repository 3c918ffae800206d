"""A run's execution plan: its pinned document parsed once, with the graph and template facts.

Pinned documents never change, so plans are cached by run id.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from flowplane.engine.secrets import SecretUse
from flowplane.model import templates
from flowplane.model.document import Node, Workflow, is_template
from flowplane.model.graph import Catalog, Graph
from flowplane.store.records import RunRecord
from flowplane.store.tx import Tx

PLAN_CACHE_SIZE = 2048


@dataclass
class Plan:
    """The parsed, immutable view of one run's pinned workflow document."""

    workflow: Workflow
    graph: Graph
    foreach: frozenset[str]
    refs: dict[str, frozenset[str]] = field(default_factory=dict)
    secrets: dict[str, frozenset[str]] = field(default_factory=dict)
    # How each node uses each of its secrets, for the credentials' use policies.
    secret_uses: dict[str, dict[str, SecretUse]] = field(default_factory=dict)

    @classmethod
    def build(cls, document: dict[str, Any] | Workflow) -> Plan:
        """Parse ``document`` and precompute what the engine asks on its hot path."""
        wf = document if isinstance(document, Workflow) else Workflow.model_validate(document)
        graph = Graph.from_workflow(wf)
        refs: dict[str, frozenset[str]] = {}
        secrets: dict[str, frozenset[str]] = {}
        uses: dict[str, dict[str, SecretUse]] = {}
        for node in wf.nodes:
            ancestors = graph.ancestors(node.id)
            refs[node.id] = frozenset(templates.node_references(node)) & ancestors
            secrets[node.id] = frozenset(templates.node_secret_names(node)) | frozenset(
                credential_params(node.params)
            )
            if secrets[node.id]:
                uses[node.id] = secret_uses(node, secrets[node.id])
        return cls(
            workflow=wf,
            graph=graph,
            foreach=frozenset(n.id for n in wf.nodes if n.foreach is not None),
            refs=refs,
            secrets=secrets,
            secret_uses=uses,
        )

    def node(self, node_id: str) -> Node:
        """Return a node of the document."""
        return self.graph.node(node_id)

    def level_iteration(self, node_id: str) -> int:
        """The iteration of the node-level row: -1 for ``foreach`` nodes, else 0."""
        return -1 if node_id in self.foreach else 0

    def continues_on_error(self, node_id: str) -> bool:
        """Whether a failure of ``node_id`` lets the run go on."""
        return self.node(node_id).on_error == "continue"


def credential_params(params: dict[str, Any]) -> Iterator[str]:
    """The credential names a node's params give: what ``NodeContext.credentials`` must hold.

    Connectors take a credential by name in ``credential`` or ``<purpose>_credential`` (one
    name) and ``<purpose>_credentials`` (a mapping to names), as the built-ins do
    (``slack.send {"credential": "SLACK_URL"}``, ``webhook.send {"url_credential": ...}``,
    ``system.shell {"env_credentials": {"TOKEN": "API_TOKEN"}}``). Only literal names count:
    which credential a node uses is fixed by the workflow, never chosen by run input.
    """
    for key, value in params.items():
        if key == "credential" or key.endswith("_credential"):
            names = [value]
        elif key.endswith("_credentials") and isinstance(value, dict):
            names = list(value.values())
        else:
            continue
        for name in names:
            if isinstance(name, str) and name and not is_template(name):
                yield name


def secret_uses(node: Node, names: frozenset[str]) -> dict[str, SecretUse]:
    """How ``node`` uses each of its secret ``names`` (see :class:`SecretUse`)."""
    given = set(credential_params(node.params))
    exact: dict[str, set[str]] = {name: set() for name in names}
    other: dict[str, set[str]] = {name: set() for name in names}
    for key, value in (node.params or {}).items():
        for _, source in templates.iter_template_strings(value):
            for name, is_exact in templates.secret_uses(source):
                # A bare ``secrets`` reaches every secret the node resolves.
                for target in names if name == "" else (name,):
                    if target in names:
                        (exact if is_exact else other)[target].add(key)
    # ``when`` and ``foreach`` are expressions: any secret there decides what runs.
    for part, value in (("when", node.when), ("foreach", node.foreach)):
        if value is None or isinstance(value, bool):
            continue
        bare = isinstance(value, str) and not is_template(value)
        found = templates.secret_names(value, expression=bare)
        sources = (
            [value]
            if isinstance(value, str) and bare
            else [s for _, s in templates.iter_template_strings(value)]
        )
        if any(name == "" for source in sources for name, _ in templates.secret_uses(source)):
            found = set(names)
        for name in found & names:
            other[name].add(part)
    return {
        name: SecretUse(
            credential_param=name in given,
            exact_params=frozenset(exact[name] - other[name]),
            other=frozenset(other[name]),
        )
        for name in names
    }


class PlanCache:
    """A thread-safe LRU of plans by run id."""

    def __init__(self, size: int = PLAN_CACHE_SIZE) -> None:
        self._size = size
        self._plans: OrderedDict[str, Plan] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, run_id: str, document: dict[str, Any] | None = None) -> Plan | None:
        """Return the cached plan, building it from ``document`` when given and missing."""
        with self._lock:
            plan = self._plans.get(run_id)
            if plan is not None:
                self._plans.move_to_end(run_id)
                return plan
        if document is None:
            return None
        plan = Plan.build(document)
        self.put(run_id, plan)
        return plan

    def put(self, run_id: str, plan: Plan) -> None:
        """Cache ``plan`` for ``run_id``."""
        with self._lock:
            self._plans[run_id] = plan
            self._plans.move_to_end(run_id)
            while len(self._plans) > self._size:
                self._plans.popitem(last=False)

    def drop(self, run_id: str) -> None:
        """Forget a run's plan (after a rewind changes what it holds)."""
        with self._lock:
            self._plans.pop(run_id, None)


plans = PlanCache()


def plan_of(tx: Tx, run: RunRecord) -> Plan:
    """Return the plan of a locked run (cached)."""
    plan = plans.get(run.id)
    if plan is not None:
        return plan
    document = run.document
    if document is None:
        full = tx.get_run(run.id)
        assert full is not None
        document = full.document
    result = plans.get(run.id, document)
    assert result is not None
    return result


VALIDATED_CACHE_SIZE = 256
# Bound of the JSON text of the cached documents together (their parsed forms take a few
# times more); a document over a quarter of it is not cached.
VALIDATED_CACHE_CHARS = 8 * 1024 * 1024


@dataclass(frozen=True)
class Validated:
    """A workflow document that passed validation, with what starting a run of it needs.

    ``document_text`` is the JSON of ``workflow.to_document()``: each run gets its own copy
    of the document (it is handed out with the run row). The workflow and the plan are
    shared by the runs of the document, read only like every cached plan.
    """

    workflow: Workflow
    document_text: str
    plan: Plan
    # What the validation depended on: the catalog and the manifest of each node type.
    catalog: Catalog
    manifests: tuple[tuple[str, object], ...]

    def document(self) -> dict[str, Any]:
        """A fresh copy of the validated document."""
        result: dict[str, Any] = json.loads(self.document_text)
        return result


class ValidatedCache:
    """A thread-safe LRU of validated workflow documents by a hash of their content.

    The key is computed from the document given on every lookup, so a caller changing its
    document afterwards changes nothing here; a hit also requires the same catalog holding
    the same manifest for every node type (a connector replaced later means a miss).
    """

    def __init__(
        self, size: int = VALIDATED_CACHE_SIZE, chars: int = VALIDATED_CACHE_CHARS
    ) -> None:
        self._size = size
        self._chars = chars
        self._held = 0  # characters of the cached documents' JSON text
        self._entries: OrderedDict[bytes, Validated] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(document: Any, namespace: str | None) -> bytes | None:
        """The key of ``document`` started in ``namespace``; ``None`` when it is not made
        only of plain JSON values (then it is not cached)."""
        try:
            if not _plain_json(document):
                return None
            # Key order is kept: it is part of the document (params reach connectors in it).
            text = json.dumps([namespace, document], separators=(",", ":"))
        except (RecursionError, TypeError, ValueError):
            return None
        return hashlib.sha256(text.encode()).digest()

    def get(self, key: bytes, catalog: Catalog) -> Validated | None:
        """The entry of ``key`` if it was validated against ``catalog`` as it is now."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
        if entry.catalog is not catalog:
            return None
        if any(catalog.lookup(type_) is not manifest for type_, manifest in entry.manifests):
            return None
        return entry

    def put(
        self, key: bytes, workflow: Workflow, document: dict[str, Any], catalog: Catalog
    ) -> Validated:
        """Cache ``workflow`` (just validated against ``catalog``) and return its entry."""
        types = dict.fromkeys(node.type for node in workflow.nodes)
        manifests = tuple((type_, catalog.lookup(type_)) for type_ in types)
        entry = Validated(
            workflow=workflow,
            document_text=json.dumps(document, separators=(",", ":")),
            plan=Plan.build(workflow),
            catalog=catalog,
            manifests=manifests,
        )
        size = len(entry.document_text)
        if size > self._chars // 4:
            return entry  # too large to keep: validated again next time
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self._held -= len(previous.document_text)
            self._entries[key] = entry
            self._held += size
            while len(self._entries) > self._size or self._held > self._chars:
                _key, dropped = self._entries.popitem(last=False)
                self._held -= len(dropped.document_text)
        return entry

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()
            self._held = 0


validated = ValidatedCache()


_JSON_SCALARS = (str, int, float, bool, type(None))


def _plain_json(value: Any) -> bool:
    """Whether ``value`` is made only of JSON types (exact types, string keys): its JSON
    text then identifies it."""
    kind = type(value)
    if kind in _JSON_SCALARS:
        return True
    if kind is dict:
        return all(type(k) is str and _plain_json(v) for k, v in value.items())
    if kind is list:
        return all(_plain_json(v) for v in value)
    return False
