"""Smithers' published Gateway client, unchanged, driving a real ``flowplane serve``.

``node_gateway/`` pins ``@smithers-orchestrator/gateway-client`` (from the npm registry) in
its ``package.json`` and ``package-lock.json``; ``npm ci`` installs it when
``node_modules`` is missing. The package ships TypeScript sources only (its exports point at
``src/*.ts``), so ``drive.mjs`` runs under ``tsx``; one of its dependencies pins
``@tanstack/electric-db-collection@0.3.11``, a version the registry does not have, so the
``package.json`` overrides it with ``0.3.15`` (the client's code never imports it). Node 20
has no global ``WebSocket``: the client is handed the ``ws`` package's, through its
documented ``WebSocket`` option.

``drive.mjs`` calls the client's own methods: ``launchRun``, ``getRun``, ``listRuns``,
``submitApproval``, ``submitSignal`` and ``rpcRaw`` over ``POST /v1/rpc/<method>``;
``connect()`` (challenge, ``connect``, ``hello``) and ``requestRaw`` with events over the
WebSocket at ``/``; ``streamRunEvents`` (its own socket, ``run.event`` frames). It asserts
as it goes and prints a JSON report, checked here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from gateway_support import Gateway, gateway

__all__ = ["gateway"]  # the module-scoped server fixture

HERE = Path(__file__).resolve().parent / "node_gateway"
NODE = shutil.which("node")
NPM = shutil.which("npm")


def _missing_node() -> None:
    if NODE is None or NPM is None:
        if os.environ.get("CI"):
            pytest.fail("Node.js and npm are required in CI for the Gateway client test")
        pytest.skip("Node.js or npm is not installed")


@pytest.fixture(scope="module")
def installed() -> Path:
    """``node_gateway/node_modules``, installed from the lock file when missing."""
    _missing_node()
    tsx = HERE / "node_modules" / ".bin" / "tsx"
    if not tsx.exists():
        assert NPM is not None
        done = subprocess.run(
            [NPM, "ci", "--no-audit", "--no-fund"],
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return tsx


def test_published_gateway_client_drives_flowplane(gateway: Gateway, installed: Path) -> None:
    env = {
        **os.environ,
        "GATEWAY_URL": gateway.server.url,
        "GATEWAY_TOKEN": gateway.server.key,
        "GATEWAY_EXECUTOR": gateway.executor,
        "GATEWAY_VIEWER": gateway.viewer,
    }
    done = subprocess.run(
        [str(installed), "drive.mjs"],
        cwd=HERE,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, (
        f"{done.stdout[-3000:]}\n{done.stderr[-5000:]}\n--- server log ---\n"
        f"{gateway.server.log.read_text()[-4000:]}"
    )
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["http"]["status"] == "finished" and report["http"]["listed"] >= 1
    assert report["notFound"] == {"code": "NOT_FOUND", "status": 404}
    assert report["forbidden"] == {"code": "FORBIDDEN", "status": 403}
    events = report["ws"]["events"]
    assert events[-1] == "run.completed"
    assert "node.started" in events and "node.finished" in events
    assert events.index("node.started") < events.index("node.finished")
    assert report["approval"]["status"] == "finished"
    assert report["signal"]["delivered"] is True
    streamed = report["stream"]["events"]
    assert streamed[-1] == "run.completed" and "node.finished" in streamed
