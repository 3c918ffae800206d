"""OpenTelemetry spans of runs and node attempts (``FLOWPLANE_OPENTELEMETRY=true``).

With tracing on, starting a run opens a ``flowplane.run`` span (a child of the request that
started it: FastAPI's server span, which continues an incoming ``traceparent``), and its
W3C ``traceparent`` is stored with the run (``runs.trace_context``). Each node attempt,
in whichever worker process claims it, is a ``flowplane.node`` span whose parent is that
context, so one trace holds the request, the run and every attempt; retries are further
attempt spans (``flowplane.attempt`` = 2, 3, ...), waits and failures show as attributes
and events. ``http.request`` calls made inside an attempt carry its ``traceparent``
(``opentelemetry-instrumentation-httpx`` on the connector's client). A run without a
stored context (cron, a run started before tracing was on) gets one derived from its id, so
its attempts still share one trace.

With tracing off nothing here is called: the worker and the run service hold ``None`` and
keep their plain paths (one attribute check per node run, one per started run).

Spans go to the globally configured tracer provider: run the process under
``opentelemetry-instrument`` (opentelemetry-distro, with an exporter), or install a provider
before start-up. Attributes hold ids, types, statuses and error codes, never values.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from flowplane.connectors.base import (
    StartChildRun,
    WaitForApproval,
    WaitForSignal,
    WaitForTimer,
)
from flowplane.store.records import NodeRunRecord

if TYPE_CHECKING:
    from flowplane.settings import Settings

TRACER_NAME = "flowplane"


class Tracing:
    """Spans of runs and node attempts over the global tracer provider."""

    def __init__(self) -> None:
        self.tracer = trace.get_tracer(TRACER_NAME)

    @contextlib.contextmanager
    def run_span(self, workflow: str, namespace: str, trigger: str) -> Iterator[RunSpan]:
        """Open the span of a run being started (a child of the current context); its
        ``traceparent`` is what the run stores."""
        with self.tracer.start_as_current_span(
            f"flowplane.run {workflow}",
            kind=SpanKind.PRODUCER,
            attributes={
                "flowplane.workflow": workflow,
                "flowplane.namespace": namespace,
                "flowplane.trigger": trigger,
            },
        ) as span:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            yield RunSpan(span, carrier.get("traceparent"))

    @contextlib.contextmanager
    def attempt_span(
        self, run: dict[str, Any], node: NodeRunRecord, node_type: str
    ) -> Iterator[Any]:
        """Open the span of one node attempt, in the run's trace, as the current span (so
        outgoing HTTP calls of the connector continue it)."""
        parent = propagate.extract({"traceparent": run.get("trace_context") or _derived(run["id"])})
        token = otel_context.attach(parent)
        try:
            with self.tracer.start_as_current_span(
                f"flowplane.node {node.node_id}",
                kind=SpanKind.CONSUMER,
                attributes={
                    "flowplane.run_id": run["id"],
                    "flowplane.workflow": run.get("workflow_name") or "",
                    "flowplane.namespace": run.get("namespace") or "",
                    "flowplane.node_id": node.node_id,
                    "flowplane.node_type": node_type,
                    "flowplane.iteration": node.iteration,
                    "flowplane.attempt": node.attempt,
                },
                record_exception=False,
                set_status_on_exception=False,
            ) as span:
                yield span
        finally:
            otel_context.detach(token)

    @staticmethod
    def record_outcome(span: Any, outcome: Any) -> None:
        """Set the attempt's outcome on its span: ``flowplane.outcome``; on failure the error
        code, ``flowplane.retryable`` and ``ERROR`` status; a ``wait`` event (with its kind:
        ``approval``, ``signal``, ``timer``, ``child``) when the node waits."""
        span.set_attribute("flowplane.outcome", outcome.kind)
        directive = outcome.directive
        if directive is not None:
            wait = _wait_kind(directive)
            span.set_attribute("flowplane.directive", type(directive).__name__)
            if wait is not None:
                span.set_attribute("flowplane.wait", wait)
                span.add_event("wait", {"flowplane.wait": wait})
        if outcome.error is not None:
            code = str(outcome.error.get("code") or "error")
            span.set_attribute("flowplane.error_code", code)
            span.set_attribute("flowplane.retryable", bool(outcome.retryable))
            span.set_status(Status(StatusCode.ERROR, code))

    @staticmethod
    def record_completion(span: Any, accepted: bool, run_status: str | None) -> None:
        """Say whether the outcome was recorded (``False``: the lease was lost or the run
        ended) and the run's status after it."""
        span.set_attribute("flowplane.recorded", accepted)
        if run_status is not None:
            span.set_attribute("flowplane.run_status", run_status)


_WAITS: tuple[tuple[type, str], ...] = (
    (WaitForApproval, "approval"),
    (WaitForSignal, "signal"),
    (WaitForTimer, "timer"),
    (StartChildRun, "child"),
)


def _wait_kind(directive: Any) -> str | None:
    for kind, name in _WAITS:
        if isinstance(directive, kind):
            return name
    return None


class RunSpan:
    """The open span of a run being started and the ``traceparent`` to store with it."""

    def __init__(self, span: Any, traceparent: str | None) -> None:
        self.span = span
        self.traceparent = traceparent

    def started(self, run_id: str, created: bool) -> None:
        """Name the run the span stands for, once it is committed."""
        self.span.set_attribute("flowplane.run_id", run_id)
        self.span.set_attribute("flowplane.created", created)


def _derived(run_id: str) -> str:
    """A stable ``traceparent`` for a run that stored none: trace and span ids from its id."""
    digest = hashlib.sha256(run_id.encode()).hexdigest()
    return f"00-{digest[:32]}-{digest[32:48]}-01"


def tracing_of(settings: Settings) -> Tracing | None:
    """The tracing of a process: ``None`` unless ``FLOWPLANE_OPENTELEMETRY`` is on."""
    return Tracing() if settings.opentelemetry else None
