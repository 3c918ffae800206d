"""Every workflow in ``examples/`` runs for real, on SQLite and PostgreSQL.

Each example has a scenario below that runs it through the run service and a real worker,
answers its approvals and signals, and checks its outputs. A new example without a scenario
fails :func:`test_every_example_has_a_scenario`.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from engine_support import fast_settings, wait_status

from flowplane.connectors.registry import default_registry
from flowplane.engine.worker import Worker
from flowplane.model.yaml import parse_workflow
from flowplane.services.caller import Caller
from flowplane.services.runs import RunRecord, RunService
from flowplane.store.base import Store

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RUN_TIMEOUT_SECONDS = 20


def flaky_server_module() -> ModuleType:
    """Import ``examples/flaky_server.py`` (the examples folder is not a package)."""
    name = "flowplane_examples_flaky_server"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / "flaky_server.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@dataclass
class Env:
    """A run service with a worker that may reach 127.0.0.1 and resolves paths in examples/."""

    runs: RunService

    async def start(self, example: str, run_input: Any) -> str:
        wf = parse_workflow((EXAMPLES / example).read_text(), source=example)
        started = await self.runs.start(Caller.system(), wf, run_input, source_path=example)
        return str(started.run.id)

    async def finish(self, run_id: str) -> RunRecord:
        return await self.runs.wait(Caller.system(), run_id, timeout=RUN_TIMEOUT_SECONDS)

    async def node_status(self, run_id: str) -> dict[str, str]:
        return {
            row.node_id: row.status
            for row in await self.runs.nodes(Caller.system(), run_id)
            if row.iteration in (0, -1)
        }


@pytest.fixture
async def env(store: Store) -> AsyncIterator[Env]:
    registry = default_registry()
    settings = fast_settings(root=EXAMPLES, allow_hosts=["127.0.0.1"])
    worker = Worker(store, settings=settings, registry=registry)
    task = asyncio.create_task(worker.run())
    try:
        yield Env(RunService(store, registry))
    finally:
        await worker.stop()
        await asyncio.wait_for(task, 15)


# --- scenarios ----------------------------------------------------------------------------


async def fan_out_fan_in(env: Env) -> None:
    run_input = json.loads((EXAMPLES / "fan_out_fan_in.input.json").read_text())
    run_id = await env.start("fan_out_fan_in.yaml", run_input)
    run = await env.finish(run_id)
    assert run.status == "finished", run.error
    assert run.output == {
        "report": {
            "day": "2024-05-17",
            "revenue": 365.5,
            "paid_orders": 3,
            "average": 121.83,
            "best_customer": "grace",
            "refunds": 1,
        }
    }
    events = await env.runs.events(Caller.system(), run_id)
    started = [e["nodeId"] for e in events if e["type"] == "NodeStarted"]
    # The join starts only after all three branches.
    assert started.index("report") > max(started.index(n) for n in ("amounts", "best_customer"))


async def approval_gate(env: Env) -> None:
    approved = await env.start("approval_gate.yaml", {"service": "billing", "version": "2.4.1"})
    denied = await env.start("approval_gate.yaml", {"service": "search", "version": "0.9.0"})
    for run_id in (approved, denied):
        await wait_status(env.runs, run_id, "waiting-approval")
    await env.runs.decide(
        Caller.system(), approved, "approve", approved=True, note="ship it", by="alice"
    )
    await env.runs.decide(
        Caller.system(), denied, "approve", approved=False, note="freeze week", by="bob"
    )

    run = await env.finish(approved)
    assert run.status == "finished"
    assert run.output == {
        "notify": {"service": "billing", "version": "2.4.1", "approved": True, "note": "ship it"}
    }
    assert (await env.node_status(approved))["record_denial"] == "skipped"

    run = await env.finish(denied)
    assert run.status == "finished"
    assert run.output["notify"]["approved"] is False
    statuses = await env.node_status(denied)
    assert statuses["deploy"] == "skipped" and statuses["record_denial"] == "finished"
    logs = [line.message for line in await env.runs.logs(Caller.system(), denied)]
    assert logs == ["deploy of search 0.9.0 denied: freeze week"]


async def retry_flaky_http(env: Env) -> None:
    server_class = flaky_server_module().FlakyServer
    with server_class(fail_times=2) as server:
        run_id = await env.start("retry_flaky_http.yaml", {"url": f"{server.url}/quote"})
        run = await env.finish(run_id)
        assert server.requests == 3
    assert run.status == "finished", run.error
    assert run.output == {"quote": {"symbol": "FLOW", "price": 42.5, "served_on_request": 3}}
    attempts = [a for a in await env.runs.attempts(Caller.system(), run_id) if a.node_id == "fetch"]
    assert [a.status for a in attempts] == ["failed", "failed", "finished"]
    retries = [
        e for e in await env.runs.events(Caller.system(), run_id) if e["type"] == "NodeRetrying"
    ]
    assert [e["attempt"] for e in retries] == [2, 3]


async def foreach_list(env: Env) -> None:
    signups = [
        {"name": "Ada", "email": "ada@example.com", "plan": "pro"},
        {"name": "Alan", "email": "alan@example.com"},
        {"name": "Grace", "email": "grace@example.com", "plan": "team"},
        {"name": "Edsger", "email": "edsger@example.com"},
    ]
    run_id = await env.start("foreach_list.yaml", {"signups": signups})
    run = await env.finish(run_id)
    assert run.status == "finished", run.error
    summary = run.output["summary"]
    assert summary["sent"] == 4
    assert summary["recipients"] == [s["email"] for s in signups]
    nodes = await env.runs.nodes(Caller.system(), run_id)
    bodies = {
        r.iteration: r.output["value"]["body"]
        for r in nodes
        if r.node_id == "welcome" and r.iteration >= 0
    }
    assert bodies[1] == "Hi Alan, your free plan is ready (signup #2)."
    assert bodies[2] == "Hi Grace, your team plan is ready (signup #3)."


async def sub_workflow(env: Env) -> None:
    customers = [{"name": "acme", "amounts": [100, 50]}, {"name": "globex", "amounts": [12.5]}]
    run_id = await env.start("sub_workflow.yaml", {"customers": customers, "tax_rate": 0.1})
    run = await env.finish(run_id)
    assert run.status == "finished", run.error
    assert run.output == {
        "month": {
            "invoices": [
                {"customer": "acme", "net": 150, "tax": 15.0, "total": 165.0},
                {"customer": "globex", "net": 12.5, "tax": 1.25, "total": 13.75},
            ],
            "grand_total": 178.75,
        }
    }
    events = await env.runs.events(Caller.system(), run_id)
    children = [e["childRunId"] for e in events if e.get("childRunId")]
    assert len(children) == 2
    for child_id in children:
        child = await env.runs.get(Caller.system(), child_id)
        assert child.status == "finished"
        assert child.parent_run_id == run_id
        assert child.workflow_name == "price-invoice"


async def sub_workflow_invoice(env: Env) -> None:
    run_input = {"customer": "initech", "amounts": [10, 20, 30.5]}
    run_id = await env.start("sub_workflow_invoice.yaml", run_input)
    run = await env.finish(run_id)
    assert run.output == {
        "invoice": {"customer": "initech", "net": 60.5, "tax": 12.1, "total": 72.6}
    }


async def order_followup(env: Env) -> None:
    overpaid = await env.start("order_followup.yaml", {"order_id": 7, "total": 100})
    exact = await env.start("order_followup.yaml", {"order_id": 8, "total": 50})
    for run_id in (overpaid, exact):
        await wait_status(env.runs, run_id, "waiting-event")
    # A signal with another correlation id does not wake the node.
    stray = await env.runs.signal(
        Caller.system(), overpaid, "payment-received", {"amount": 1}, "order-99"
    )
    assert stray["delivered"] is False
    await env.runs.signal(Caller.system(), overpaid, "payment-received", {"amount": 120}, "order-7")
    await env.runs.signal(Caller.system(), exact, "payment-received", {"amount": 50}, "order-8")

    await wait_status(env.runs, overpaid, "waiting-approval")
    await env.runs.decide(
        Caller.system(), overpaid, "approve_refund", approved=True, note="refund 20"
    )
    run = await env.finish(overpaid)
    assert run.output == {"result": {"order_id": 7, "paid": 120, "refund_step": "finished"}}

    run = await env.finish(exact)
    assert run.output == {"result": {"order_id": 8, "paid": 50, "refund_step": "skipped"}}
    logs = [line.message for line in await env.runs.logs(Caller.system(), exact)]
    assert logs == ["order 8: paid 50, refund step skipped"]


SCENARIOS: dict[str, Callable[[Env], Awaitable[None]]] = {
    "approval_gate.yaml": approval_gate,
    "fan_out_fan_in.yaml": fan_out_fan_in,
    "foreach_list.yaml": foreach_list,
    "order_followup.yaml": order_followup,
    "retry_flaky_http.yaml": retry_flaky_http,
    "sub_workflow.yaml": sub_workflow,
    "sub_workflow_invoice.yaml": sub_workflow_invoice,
}


def test_every_example_has_a_scenario() -> None:
    files = sorted(p.name for p in EXAMPLES.glob("*.yaml")) + sorted(
        p.name for p in EXAMPLES.glob("*.json") if not p.name.endswith(".input.json")
    )
    assert files == sorted(SCENARIOS)


@pytest.mark.parametrize("example", sorted(SCENARIOS))
async def test_example(env: Env, example: str) -> None:
    await SCENARIOS[example](env)
