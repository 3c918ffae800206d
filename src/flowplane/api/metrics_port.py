"""The open metrics port (``FLOWPLANE_METRICS_PORT``): ``/metrics`` without credentials.

For a Prometheus on a private network that should not hold an API key: the process serves
the same exposition as ``GET /metrics`` on a second port, from a small thread of
``prometheus_client`` (so a scrape never waits on the API's event loop). The run statistics
are read from the database at scrape time, as on the API port. The port serves the
exposition and nothing else; it binds to ``FLOWPLANE_HOST``, so expose it only where the
scraper reaches it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import Metric

from flowplane.api.metrics import Metrics
from flowplane.services.ops import OpsService


class _AtScrape:
    """A collector reading the run statistics when scraped, then yielding every family."""

    def __init__(self, metrics: Metrics, ops: OpsService) -> None:
        self.metrics = metrics
        self.ops = ops

    def collect(self) -> Iterable[Metric]:
        return self.metrics.collect_with(self.ops.run_stats_blocking())


def start_metrics_port(
    metrics: Metrics, ops: OpsService, host: str, port: int
) -> tuple[int, Callable[[], None]]:
    """Serve ``metrics`` on ``host:port`` in a thread; return the bound port and a stop
    function."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_AtScrape(metrics, ops))
    httpd, thread = start_http_server(port, addr=host, registry=registry)

    def stop() -> None:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)

    return int(httpd.server_port), stop
