"""How Prometheus reaches ``/metrics``: the dedicated metrics token, the open metrics port,
and the Grafana dashboard, whose every query must name a metric the server exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
from api_support import ApiHarness, started
from prometheus_client.parser import text_string_to_metric_families

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "flowplane.json"
TOKEN = "scrape-me-please-0123456789"
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gauge": ("",),
}


def exported_names(text: str) -> set[str]:
    """Every series name a scrape of ``text`` can hold (families and their suffixes)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


async def test_metrics_token_reads_metrics_and_nothing_else(
    db: tuple[str, str], tmp_path: Path
) -> None:
    async with started(db, tmp_path / "root", metrics_token=TOKEN) as api:
        async with api.client_for(TOKEN) as scraper:
            response = await scraper.get("/metrics")
            assert response.status_code == 200
            assert "flowplane_queue_depth" in response.text
            assert (await scraper.get("/v1/runs")).status_code == 401
            assert (await scraper.get("/metrics/")).status_code == 401
        async with api.client_for(TOKEN + "x") as wrong:
            assert (await wrong.get("/metrics")).status_code == 401
        async with api.client_for(None) as anonymous:
            assert (await anonymous.get("/metrics")).status_code == 401


async def test_metrics_port_is_open(db: tuple[str, str], tmp_path: Path) -> None:
    async with started(db, tmp_path / "root", metrics_port=0) as api:
        port = api.app.state.metrics_port
        async with httpx.AsyncClient() as scraper:
            response = await scraper.get(f"http://127.0.0.1:{port}/metrics")
        assert response.status_code == 200
        names = exported_names(response.text)
        assert {"flowplane_runs_started_total", "flowplane_http_requests_total"} <= names
        # The API port still wants a credential.
        async with api.client_for(None) as anonymous:
            assert (await anonymous.get("/metrics")).status_code == 401


async def test_dashboard_queries_name_exported_metrics(tmp_path: Path) -> None:
    db = (f"sqlite:///{tmp_path / 'fp.db'}", "flowplane")
    async with started(db, tmp_path / "root") as api:
        text = await _scrape(api)
    exported = exported_names(text)
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert queries
    for query in queries:
        used = set(re.findall(r"\bflowplane_[a-z_]+\b", query))
        assert used, query
        assert used <= exported, f"{query}: {sorted(used - exported)} not exported"


async def _scrape(api: ApiHarness) -> str:
    response = await api.client.get("/metrics")
    assert response.status_code == 200
    return response.text
