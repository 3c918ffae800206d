"""A run's execution plan: its pinned document parsed once, with the graph and template facts.

Pinned documents never change, so plans are cached by run id.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from flowplane.model import templates
from flowplane.model.document import Node, Workflow
from flowplane.model.graph import Graph

PLAN_CACHE_SIZE = 2048


@dataclass
class Plan:
    """The parsed, immutable view of one run's pinned workflow document."""

    workflow: Workflow
    graph: Graph
    foreach: frozenset[str]
    refs: dict[str, frozenset[str]] = field(default_factory=dict)
    secrets: dict[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def build(cls, document: dict[str, Any] | Workflow) -> Plan:
        """Parse ``document`` and precompute what the engine asks on its hot path."""
        wf = document if isinstance(document, Workflow) else Workflow.model_validate(document)
        graph = Graph.from_workflow(wf)
        refs: dict[str, frozenset[str]] = {}
        secrets: dict[str, frozenset[str]] = {}
        for node in wf.nodes:
            ancestors = graph.ancestors(node.id)
            refs[node.id] = frozenset(templates.node_references(node)) & ancestors
            secrets[node.id] = frozenset(templates.node_secret_names(node))
        return cls(
            workflow=wf,
            graph=graph,
            foreach=frozenset(n.id for n in wf.nodes if n.foreach is not None),
            refs=refs,
            secrets=secrets,
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
