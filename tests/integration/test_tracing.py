"""OpenTelemetry traces with ``FLOWPLANE_OPENTELEMETRY=true``, read from the SDK's in-memory
exporter: the request that starts a run, the run's span, one span per node attempt (retries
as further attempts, waits as events), and ``traceparent`` on outgoing ``http.request`` calls.
"""

from __future__ import annotations

import asyncio
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, ClassVar

import pytest
from api_support import ApiHarness, started
from http_peer import http_server
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

EXPORTER = InMemorySpanExporter()
_PROVIDER = TracerProvider()
_PROVIDER.add_span_processor(SimpleSpanProcessor(EXPORTER))
trace.set_tracer_provider(_PROVIDER)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


class _Peer(BaseHTTPRequestHandler):
    seen: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("traceparent"))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"ok": true}')

    def log_message(self, *args: Any) -> None:
        pass


def _spans(run_id: str | None = None, prefix: str = "flowplane.") -> list[ReadableSpan]:
    spans = [s for s in EXPORTER.get_finished_spans() if s.name.startswith(prefix)]
    if run_id is None:
        return spans
    return [s for s in spans if (s.attributes or {}).get("flowplane.run_id") == run_id]


async def _wait(api: ApiHarness, run_id: str, *statuses: str) -> None:
    deadline = time.monotonic() + 30
    while (await api.client.get(f"/v1/runs/{run_id}")).json()["status"] not in statuses:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)


@pytest.fixture(autouse=True)
def _clear() -> None:
    EXPORTER.clear()
    _Peer.seen.clear()


async def test_trace_of_a_run_from_request_to_outgoing_call(
    db: tuple[str, str], tmp_path: Path
) -> None:
    with http_server(_Peer) as port:
        workflow = f"""
name: traced
nodes:
  - {{id: call, type: http.request, params: {{url: "http://127.0.0.1:{port}/x"}}}}
  - {{id: gate, type: control.approval, params: {{title: go?}}}}
  - {{id: done, type: util.log, params: {{message: ok}}}}
"""
        async with started(
            db, tmp_path / "root", workers=1, opentelemetry=True, allow_hosts=[f"127.0.0.1:{port}"]
        ) as api:
            (api.root / "traced.yaml").write_text(workflow)
            response = await api.client.post(
                "/v1/runs", json={"workflowPath": "traced.yaml"}, headers={"traceparent": INCOMING}
            )
            assert response.status_code == 200, response.text
            run_id = response.json()["runId"]
            await _wait(api, run_id, "waiting-approval")
            assert (
                await api.client.post(f"/v1/runs/{run_id}/nodes/gate/approve")
            ).status_code == 200
            await _wait(api, run_id, "finished")

    [run_span] = [s for s in _spans(run_id) if s.name == "flowplane.run traced"]
    assert run_span.context.trace_id == int(TRACE_ID, 16)
    assert run_span.parent is not None  # the request's server span
    nodes = [s for s in _spans(run_id) if s.name.startswith("flowplane.node")]
    by_node = {(s.attributes or {})["flowplane.node_id"]: s for s in nodes}
    assert set(by_node) == {"call", "gate", "done"}
    for span in nodes:
        assert span.context.trace_id == int(TRACE_ID, 16)
        assert span.parent is not None and span.parent.span_id == run_span.context.span_id
    gate = by_node["gate"]
    assert (gate.attributes or {})["flowplane.wait"] == "approval"
    assert [e.name for e in gate.events] == ["wait"]
    # The connector's outgoing request carried the attempt's trace (its client span's id).
    assert len(_Peer.seen) == 1 and _Peer.seen[0] is not None
    _version, trace_id, parent_id, _flags = _Peer.seen[0].split("-")
    assert trace_id == TRACE_ID
    [client_span] = [
        s for s in EXPORTER.get_finished_spans() if s.context.span_id == int(parent_id, 16)
    ]
    assert client_span.parent is not None
    assert client_span.parent.span_id == by_node["call"].context.span_id


async def test_retries_are_attempt_spans_with_errors(db: tuple[str, str], tmp_path: Path) -> None:
    workflow = """
name: flaky
nodes:
  - id: boom
    type: util.fail
    retry: {max_attempts: 3, backoff: fixed, initial: 10ms}
"""
    async with started(db, tmp_path / "root", workers=1, opentelemetry=True) as api:
        (api.root / "flaky.yaml").write_text(workflow)
        response = await api.client.post("/v1/runs", json={"workflowPath": "flaky.yaml"})
        run_id = response.json()["runId"]
        await _wait(api, run_id, "failed")
    attempts = sorted(
        (s for s in _spans(run_id) if s.name == "flowplane.node boom"),
        key=lambda s: (s.attributes or {})["flowplane.attempt"],
    )
    assert [(s.attributes or {})["flowplane.attempt"] for s in attempts] == [1, 2, 3]
    assert len({s.context.trace_id for s in attempts}) == 1
    for span in attempts:
        assert span.status.status_code == StatusCode.ERROR
        assert (span.attributes or {})["flowplane.outcome"] == "failure"
    assert (attempts[-1].attributes or {})["flowplane.run_status"] == "failed"


async def test_tracing_off_emits_no_flowplane_spans(db: tuple[str, str], tmp_path: Path) -> None:
    async with started(db, tmp_path / "root", workers=1) as api:
        (api.root / "quiet.yaml").write_text(
            "name: quiet\nnodes:\n  - {id: a, type: util.log, params: {message: hi}}\n"
        )
        response = await api.client.post("/v1/runs", json={"workflowPath": "quiet.yaml"})
        await _wait(api, response.json()["runId"], "finished")
    assert EXPORTER.get_finished_spans() == ()
