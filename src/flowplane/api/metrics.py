"""Prometheus metrics: HTTP traffic counted in-process, run statistics read at scrape time.

Each app has its own :class:`prometheus_client.CollectorRegistry` (tests build many apps in
one process). Exposed families:

- ``flowplane_http_requests_total{method,route,status}`` and
  ``flowplane_http_request_duration_seconds{method,route}``: ``route`` is the route template
  (``/v1/runs/{id}``), or ``<unmatched>``, so label cardinality stays bounded;
- ``flowplane_runs_started_total{workflow}``, ``flowplane_runs_finished_total{workflow}``,
  ``flowplane_runs_failed_total{workflow}`` and ``flowplane_runs{workflow,status}``;
- ``flowplane_node_duration_seconds{workflow}`` (a histogram over recorded attempts);
- ``flowplane_queue_depth`` (ready, due node runs) and ``flowplane_queue_delayed`` (ready,
  not yet due: retry backoff);
- ``flowplane_events_total`` (events ever committed: ``rate()`` is events per second) and
  ``flowplane_approvals_requested_total``, ``..._granted_total``, ``..._denied_total``,
  ``flowplane_approvals_pending`` (read from the database at scrape time);
- this process's live streams: ``flowplane_gateway_connections`` (open ``/v1/ws``
  connections), ``flowplane_gateway_requests_total{method,outcome}``,
  ``flowplane_stream_subscribers{transport}`` (``sse`` or ``ws``) and
  ``flowplane_stream_events_sent_total{transport}`` (``rate()`` is events delivered per second).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

from fastapi.routing import iter_route_contexts
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from flowplane.services.ops import NODE_DURATION_BUCKETS_SECONDS, RunStats

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNMATCHED_ROUTE = "<unmatched>"


class _RunStatsCollector:
    """Yields the families of the last :class:`RunStats` snapshot."""

    def __init__(self) -> None:
        self.snapshot = RunStats()

    def collect(self) -> Iterable[Metric]:
        stats = self.snapshot
        started = CounterMetricFamily(
            "flowplane_runs_started", "Runs started, by workflow.", labels=["workflow"]
        )
        for workflow, count in sorted(stats.runs_started.items()):
            started.add_metric([workflow], count)
        finished = CounterMetricFamily(
            "flowplane_runs_finished", "Runs finished successfully.", labels=["workflow"]
        )
        failed = CounterMetricFamily(
            "flowplane_runs_failed", "Runs that failed or timed out.", labels=["workflow"]
        )
        by_status = GaugeMetricFamily(
            "flowplane_runs", "Runs by workflow and status.", labels=["workflow", "status"]
        )
        finished_counts: dict[str, int] = {}
        failed_counts: dict[str, int] = {}
        for (workflow, status), count in sorted(stats.runs_by_status.items()):
            by_status.add_metric([workflow, status], count)
            if status == "finished":
                finished_counts[workflow] = finished_counts.get(workflow, 0) + count
            elif status in ("failed", "timed-out"):
                failed_counts[workflow] = failed_counts.get(workflow, 0) + count
        for workflow, count in finished_counts.items():
            finished.add_metric([workflow], count)
        for workflow, count in failed_counts.items():
            failed.add_metric([workflow], count)
        durations = HistogramMetricFamily(
            "flowplane_node_duration_seconds",
            "Durations of node attempts, by workflow.",
            labels=["workflow"],
        )
        bounds = [*(str(b) for b in NODE_DURATION_BUCKETS_SECONDS), "+Inf"]
        for workflow, hist in sorted(stats.node_durations.items()):
            durations.add_metric(
                [workflow], list(zip(bounds, hist.buckets, strict=True)), hist.sum_seconds
            )
        depth = GaugeMetricFamily("flowplane_queue_depth", "Node runs ready and due.")
        depth.add_metric([], stats.queue_ready)
        delayed = GaugeMetricFamily("flowplane_queue_delayed", "Node runs ready but not yet due.")
        delayed.add_metric([], stats.queue_delayed)
        events = CounterMetricFamily("flowplane_events", "Events committed (all runs).")
        events.add_metric([], stats.events_total)
        approvals = stats.approvals_by_status
        requested = CounterMetricFamily("flowplane_approvals_requested", "Approvals requested.")
        requested.add_metric([], sum(approvals.values()))
        granted = CounterMetricFamily("flowplane_approvals_granted", "Approvals granted.")
        granted.add_metric([], approvals.get("approved", 0))
        denied = CounterMetricFamily("flowplane_approvals_denied", "Approvals denied.")
        denied.add_metric([], approvals.get("denied", 0))
        pending = GaugeMetricFamily("flowplane_approvals_pending", "Approvals awaiting a decision.")
        pending.add_metric([], approvals.get("pending", 0))
        return [
            started,
            finished,
            failed,
            by_status,
            durations,
            depth,
            delayed,
            events,
            requested,
            granted,
            denied,
            pending,
        ]


class Metrics:
    """The metrics of one app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "flowplane_http_requests",
            "HTTP requests, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "flowplane_http_request_duration_seconds",
            "HTTP request durations, by method and route template.",
            ["method", "route"],
            registry=self.registry,
        )
        self.gateway_connections = Gauge(
            "flowplane_gateway_connections",
            "Open WebSocket connections on /v1/ws (this process).",
            registry=self.registry,
        )
        self.gateway_requests = Counter(
            "flowplane_gateway_requests",
            "Gateway RPC requests (WebSocket and HTTP), by method and outcome (ok or error code).",
            ["method", "outcome"],
            registry=self.registry,
        )
        self.stream_subscribers = Gauge(
            "flowplane_stream_subscribers",
            "Live event subscriptions (this process), by transport.",
            ["transport"],
            registry=self.registry,
        )
        self.stream_events = Counter(
            "flowplane_stream_events_sent",
            "Events sent to stream subscribers (this process), by transport.",
            ["transport"],
            registry=self.registry,
        )
        self._http_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._runs = _RunStatsCollector()
        self.registry.register(self._runs)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one HTTP request."""
        key = (method, route, status)
        children = self._http_children.get(key)
        if children is None:
            # Label lookups cost more than the update; routes x methods x statuses is bounded.
            children = (
                self.http_requests.labels(method, route, str(status)),
                self.http_duration.labels(method, route),
            )
            self._http_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    async def track_stream(
        self, source: AsyncIterator[dict[str, Any]], transport: str
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield ``source``'s events, counting the subscriber and each event sent."""
        subscribers = self.stream_subscribers.labels(transport)
        sent = self.stream_events.labels(transport)
        subscribers.inc()
        try:
            async for event in source:
                sent.inc()
                yield event
        finally:
            subscribers.dec()
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                await aclose()

    def render(self, stats: RunStats) -> bytes:
        """The exposition text, with ``stats`` (read by the ops service) as the run families."""
        self._runs.snapshot = stats
        return generate_latest(self.registry)

    def collect_with(self, stats: RunStats) -> Iterable[Metric]:
        """Every family, with ``stats`` as the run families (for another exposition)."""
        self._runs.snapshot = stats
        return self.registry.collect()


def route_template(scope: dict[str, Any]) -> str:
    """The template of the route that served (or would serve) the request."""
    route = scope.get("route")
    if route is not None:
        return str(getattr(route, "path", None) or UNMATCHED_ROUTE)
    # Refused before routing (401, 413, 429): find the route it was meant for.
    path, method = scope.get("path", ""), scope.get("method", "GET")
    for context in iter_route_contexts(getattr(scope.get("app"), "routes", [])):
        regex = getattr(context, "path_regex", None)
        methods = context.methods or ()
        if regex is not None and regex.match(path) and (not methods or method in methods):
            return str(context.path_format or UNMATCHED_ROUTE)
    return UNMATCHED_ROUTE


class MetricsMiddleware:
    """Plain ASGI middleware counting every HTTP request by route template and status."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            template = route_template(scope)
            self.metrics.observe(scope["method"], template, status, time.perf_counter() - started)
