"""``FLOWPLANE_LOG_FORMAT=json`` on a real ``flowplane serve``: every log line is one JSON
object; lines logged inside a request carry its ``requestId``, lines logged while a node
runs carry ``runId`` and ``nodeId``; API keys never appear."""

from __future__ import annotations

import json
import sys
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx
from serve_support import serving

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from http_peer import http_server


class _Peer(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


def test_json_logs_carry_request_run_and_node_ids(tmp_path: Path) -> None:
    with http_server(_Peer) as port:
        (tmp_path / "call.yaml").write_text(
            "name: call\nnodes:\n"
            f'  - {{id: fetch, type: http.request, params: {{url: "http://127.0.0.1:{port}/"}}}}\n'
        )
        env = {
            "FLOWPLANE_LOG_FORMAT": "json",
            "FLOWPLANE_LOG_LEVEL": "info",
            "FLOWPLANE_ALLOW_HOSTS": f"127.0.0.1:{port}",
        }
        with serving(tmp_path, f"sqlite:///{tmp_path / 'fp.db'}", env=env) as server:
            created = httpx.post(
                f"{server.url}/v1/auth/tokens",
                json={"name": "ci", "role": "viewer"},
                headers={**server.headers, "X-Request-Id": "req-logs-1"},
            )
            assert created.status_code == 201, created.text
            new_key = created.json()["secret"]
            started = httpx.post(
                f"{server.url}/v1/runs", json={"workflowPath": "call.yaml"}, headers=server.headers
            )
            run_id = started.json()["runId"]
            deadline = time.monotonic() + 30
            while True:
                body = httpx.get(f"{server.url}/v1/runs/{run_id}", headers=server.headers).json()
                if body["status"] == "finished":
                    break
                assert time.monotonic() < deadline, body
                time.sleep(0.05)
        text = server.log.read_text()

    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    others = [line for line in text.splitlines() if line and not line.startswith("{")]
    assert all(line.startswith("Flowplane listening on") for line in others), others
    assert records and all({"ts", "level", "logger", "message"} <= set(r) for r in records)
    in_request = [r for r in records if r.get("requestId") == "req-logs-1"]
    assert any("API key" in r["message"] for r in in_request), records
    in_node = [r for r in records if r.get("runId") == run_id]
    assert in_node and all(r["nodeId"] == "fetch" for r in in_node)
    assert any(r["logger"] == "httpx" for r in in_node)
    assert server.key not in text and new_key not in text
