"""Durable execution on SQLite and PostgreSQL, through the run service and a real worker."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from engine_support import fast_settings, running, wait_status

from flowplane.engine import transitions
from flowplane.errors import AlreadyDecided, IdempotencyKeyReused, RunNotActive
from flowplane.services.caller import Caller
from flowplane.store import reads
from flowplane.store.base import Store


def wf(*nodes: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": extra.pop("name", "test-flow"), "nodes": list(nodes), **extra}


async def test_sequential_run_finishes_with_outputs_and_ordered_events(store: Store) -> None:
    async with running(store) as rt:
        doc = wf(
            {"id": "a", "type": "util.set", "params": {"value": {"n": "{{ input.n }}"}}},
            {"id": "b", "type": "util.set", "params": {"value": "{{ nodes.a.output.n + 1 }}"}},
            {"id": "c", "type": "util.log", "params": {"message": "b={{ nodes.b.output }}"}},
        )
        started = await rt.runs.start(Caller.system(), doc, {"n": 41})
        run = await rt.runs.wait(Caller.system(), started.run.id, timeout=10)
        assert run.status == "finished"
        assert run.output == {"c": {"message": "b=42"}}
        events = await rt.runs.events(Caller.system(), run.id)
        seqs = [e["seq"] for e in events]
        assert seqs == sorted(seqs)
        types = [e["type"] for e in events if e["type"] not in ("FrameCommitted", "NodeLog")]
        assert types[0] == "RunStarted" and types[-1] == "RunFinished"
        finished = [e["nodeId"] for e in events if e["type"] == "NodeFinished"]
        assert finished == ["a", "b", "c"]
        logs = await rt.runs.logs(Caller.system(), run.id)
        assert [line.message for line in logs] == ["b=42"]
        frames = await store.read(lambda tx: reads.frames_after(tx, run.id))
        assert [f.frame_no for f in frames] == list(range(1, len(frames) + 1))


async def test_input_data_is_never_rendered_as_a_template(store: Store) -> None:
    async with running(store) as rt:
        doc = wf(
            {"id": "a", "type": "util.set", "params": {"value": "{{ input.text }}"}},
            {"id": "b", "type": "util.set", "params": {"value": "got {{ nodes.a.output }}"}},
        )
        started = await rt.runs.start(Caller.system(), doc, {"text": "{{ 7*7 }}"})
        run = await rt.runs.wait(Caller.system(), started.run.id, timeout=10)
        assert run.output == {"b": "got {{ 7*7 }}"}


async def test_fan_out_fan_in_and_trigger_rules(store: Store) -> None:
    async with running(store) as rt:
        doc = wf(
            {"id": "start", "type": "util.noop"},
            {"id": "left", "type": "test.count", "needs": ["start"]},
            {
                "id": "right",
                "type": "util.fail",
                "needs": ["start"],
                "params": {"message": "boom", "retryable": False},
            },
            {"id": "join_all", "type": "test.count", "needs": ["left", "right"]},
            {
                "id": "join_done",
                "type": "test.count",
                "needs": ["left", "right"],
                "trigger_rule": "all_done",
            },
            {
                "id": "join_one",
                "type": "test.count",
                "needs": ["left", "right"],
                "trigger_rule": "one_success",
            },
            {
                "id": "after_skip",
                "type": "test.count",
                "needs": ["join_all"],
                "trigger_rule": "none_failed",
            },
        )
        started = await rt.runs.start(Caller.system(), doc)
        run = await rt.runs.wait(Caller.system(), started.run.id, timeout=10)
        assert run.status == "failed"
        assert run.error["nodeId"] == "right"
        states = {n.node_id: n.status for n in await rt.runs.nodes(Caller.system(), run.id)}
        assert states == {
            "start": "finished",
            "left": "finished",
            "right": "failed",
            "join_all": "skipped",
            "join_done": "finished",
            "join_one": "finished",
            "after_skip": "finished",
        }


async def test_on_error_continue_lets_the_run_finish(store: Store) -> None:
    async with running(store) as rt:
        doc = wf(
            {
                "id": "flaky",
                "type": "util.fail",
                "on_error": "continue",
                "params": {"retryable": False},
            },
            {"id": "next", "type": "util.set", "params": {"value": "{{ nodes.flaky.status }}"}},
        )
        run = await rt.runs.wait(
            Caller.system(), (await rt.runs.start(Caller.system(), doc)).run.id, timeout=10
        )
        assert run.status == "finished"
        assert run.output == {"next": "failed"}


async def test_when_false_skips_node_and_dependents(store: Store) -> None:
    async with running(store) as rt:
        doc = wf(
            {"id": "a", "type": "util.set", "params": {"value": 5}},
            {"id": "b", "type": "test.count", "needs": ["a"], "when": "{{ nodes.a.output > 10 }}"},
            {"id": "c", "type": "test.count", "needs": ["b"]},
        )
        run = await rt.runs.wait(
            Caller.system(), (await rt.runs.start(Caller.system(), doc)).run.id, timeout=10
        )
        assert run.status == "finished"
        states = {n.node_id: n.status for n in await rt.runs.nodes(Caller.system(), run.id)}
        assert states == {"a": "finished", "b": "skipped", "c": "skipped"}
        assert rt.probe.calls == {}


async def test_retry_with_backoff_records_each_attempt(store: Store) -> None:
    async with running(store) as rt:
        doc = wf(
            {
                "id": "flaky",
                "type": "util.fail",
                "params": {"fail_times": 2},
                "retry": {"max_attempts": 3, "backoff": "fixed", "initial": "50ms"},
            }
        )
        run = await rt.runs.wait(
            Caller.system(), (await rt.runs.start(Caller.system(), doc)).run.id, timeout=10
        )
        assert run.status == "finished"
        attempts = await rt.runs.attempts(Caller.system(), run.id)
        assert [(a.attempt, a.status) for a in attempts] == [
            (1, "failed"),
            (2, "failed"),
            (3, "finished"),
        ]
        types = [e["type"] for e in await rt.runs.events(Caller.system(), run.id)]
        assert types.count("NodeRetrying") == 2


async def test_retries_exhausted_fail_the_run(store: Store) -> None:
    async with running(store) as rt:
        doc = wf(
            {
                "id": "bad",
                "type": "util.fail",
                "params": {"message": "nope"},
                "retry": {"max_attempts": 2, "initial": "10ms", "jitter": False},
            }
        )
        run = await rt.runs.wait(
            Caller.system(), (await rt.runs.start(Caller.system(), doc)).run.id, timeout=10
        )
        assert run.status == "failed"
        assert "nope" in run.error["message"]


async def test_foreach_respects_max_parallel_and_keeps_order(store: Store) -> None:
    async with running(store) as rt:
        doc = wf(
            {"id": "items", "type": "util.set", "params": {"value": [3, 1, 2, 5, 4]}},
            {
                "id": "each",
                "type": "util.set",
                "foreach": "{{ nodes.items.output }}",
                "max_parallel": 2,
                "params": {"value": "{{ item * 10 + index }}"},
            },
            {
                "id": "total",
                "type": "util.set",
                "params": {"value": "{{ nodes.each.output | sum }}"},
            },
        )
        run = await rt.runs.wait(
            Caller.system(), (await rt.runs.start(Caller.system(), doc)).run.id, timeout=10
        )
        assert run.status == "finished", run.error
        nodes = await rt.runs.nodes(Caller.system(), run.id)
        level = next(n for n in nodes if n.node_id == "each" and n.iteration == -1)
        assert level.output == [30, 11, 22, 53, 44]
        assert run.output == {"total": 160}


async def test_approval_gate_approve_and_second_decision_conflicts(store: Store) -> None:
    async with running(store) as rt:
        doc = wf(
            {"id": "gate", "type": "control.approval", "params": {"title": "Ship it?"}},
            {
                "id": "after",
                "type": "util.set",
                "params": {"value": "{{ nodes.gate.output.note }}"},
            },
        )
        run_id = (await rt.runs.start(Caller.system(), doc)).run.id
        await wait_status(rt.runs, run_id, "waiting-approval")
        await rt.runs.decide(
            Caller.system(), run_id, "gate", approved=True, note="lgtm", by="alice"
        )
        with pytest.raises(AlreadyDecided):
            await rt.runs.decide(Caller.system(), run_id, "gate", approved=False)
        run = await rt.runs.wait(Caller.system(), run_id, timeout=10)
        assert run.status == "finished"
        assert run.output == {"after": "lgtm"}


async def test_approval_denied_fails_the_run(store: Store) -> None:
    async with running(store) as rt:
        doc = wf({"id": "gate", "type": "control.approval", "params": {"title": "Go?"}})
        run_id = (await rt.runs.start(Caller.system(), doc)).run.id
        await wait_status(rt.runs, run_id, "waiting-approval")
        await rt.runs.decide(Caller.system(), run_id, "gate", approved=False, note="no")
        run = await rt.runs.wait(Caller.system(), run_id, timeout=10)
        assert run.status == "failed"
        assert run.error["code"] == "approval_denied"


async def test_signal_delivered_before_and_after_the_wait(store: Store) -> None:
    async with running(store) as rt:
        doc = wf(
            {"id": "first", "type": "wait.signal", "params": {"name": "go"}},
            {"id": "second", "type": "wait.signal", "params": {"name": "again"}},
        )
        run_id = (await rt.runs.start(Caller.system(), doc)).run.id
        await wait_status(rt.runs, run_id, "waiting-event")
        # "again" arrives before its node waits: it is kept for it.
        early = await rt.runs.signal(Caller.system(), run_id, "again", {"n": 2})
        assert early["delivered"] is False
        delivered = await rt.runs.signal(Caller.system(), run_id, "go", {"n": 1})
        assert delivered == {"delivered": True, "nodeId": "first", "iteration": 0}
        run = await rt.runs.wait(Caller.system(), run_id, timeout=10)
        assert run.status == "finished"
        assert run.output["second"]["payload"] == {"n": 2}


async def test_timer_waits_durably(store: Store) -> None:
    async with running(store) as rt:
        doc = wf(
            {"id": "nap", "type": "wait.duration", "params": {"duration": "300ms"}},
            {"id": "after", "type": "util.noop"},
        )
        run_id = (await rt.runs.start(Caller.system(), doc)).run.id
        run = await wait_status(rt.runs, run_id, "waiting-timer", "finished")
        run = await rt.runs.wait(Caller.system(), run_id, timeout=10)
        assert run.status == "finished"
        nodes = {n.node_id: n for n in await rt.runs.nodes(Caller.system(), run_id)}
        assert nodes["after"].started_at_ms - run.started_at_ms >= 300


async def test_cancel_stops_running_connector_and_starts_nothing_after(store: Store) -> None:
    async with running(store) as rt:
        doc = wf({"id": "long", "type": "test.block"}, {"id": "after", "type": "test.count"})
        run_id = (await rt.runs.start(Caller.system(), doc)).run.id
        await asyncio.wait_for(rt.probe.started_event("long").wait(), 10)
        run = await rt.runs.cancel(Caller.system(), run_id)
        assert run.status == "cancelled"
        for _ in range(50):
            if rt.probe.cancelled:
                break
            await asyncio.sleep(0.05)
        assert rt.probe.cancelled == ["long"]
        await asyncio.sleep(0.3)
        assert rt.probe.calls == {}
        states = {n.node_id: n.status for n in await rt.runs.nodes(Caller.system(), run_id)}
        assert states == {"long": "cancelled", "after": "cancelled"}
        with pytest.raises(RunNotActive):
            await rt.runs.cancel(Caller.system(), run_id)


async def test_node_timeout_and_run_timeout(store: Store) -> None:
    async with running(store) as rt:
        node_timeout = wf({"id": "slow", "type": "test.block", "timeout": "200ms"})
        run = await rt.runs.wait(
            Caller.system(),
            (await rt.runs.start(Caller.system(), node_timeout)).run.id,
            timeout=10,
        )
        assert run.status == "failed"
        assert run.error["code"] == "node_timeout"
        run_timeout = wf({"id": "slow", "type": "test.block"}, name="slow-flow", timeout="300ms")
        run = await rt.runs.wait(
            Caller.system(),
            (await rt.runs.start(Caller.system(), run_timeout)).run.id,
            timeout=10,
        )
        assert run.status == "timed-out"


async def test_sub_workflow_parent_waits_for_child(store: Store) -> None:
    async with running(store) as rt:
        child = wf(
            {"id": "double", "type": "util.set", "params": {"value": "{{ input.x * 2 }}"}},
            name="child",
        )
        doc = wf(
            {"id": "call", "type": "flow.run", "params": {"document": child, "input": {"x": 21}}},
            {
                "id": "use",
                "type": "util.set",
                "params": {"value": "{{ nodes.call.output.double }}"},
            },
        )
        run = await rt.runs.wait(
            Caller.system(), (await rt.runs.start(Caller.system(), doc)).run.id, timeout=10
        )
        assert run.status == "finished", run.error
        assert run.output == {"use": 42}
        children = (await rt.runs.list_runs(Caller.system(), workflow="child")).items
        assert len(children) == 1 and children[0].parent_run_id == run.id


async def test_idempotency_key_returns_the_same_run(store: Store) -> None:
    async with running(store, start_worker=False) as rt:
        doc = wf({"id": "a", "type": "util.noop"})
        first = await rt.runs.start(Caller.system(), doc, idempotency_key="k1", request_hash="h1")
        again = await rt.runs.start(Caller.system(), doc, idempotency_key="k1", request_hash="h1")
        assert again.created is False and again.run.id == first.run.id
        with pytest.raises(IdempotencyKeyReused):
            await rt.runs.start(Caller.system(), doc, idempotency_key="k1", request_hash="other")


async def test_stale_completion_is_fenced_off(store: Store) -> None:
    async with running(store, start_worker=False) as rt:
        doc = wf({"id": "a", "type": "util.noop"})
        run_id = (await rt.runs.start(Caller.system(), doc)).run.id
        first = await store.transact(lambda tx: transitions.claim(tx, "zombie", 1, 1))
        await asyncio.sleep(0.05)
        reaped = await store.transact(transitions.reap)
        assert reaped == 1
        second = await store.transact(lambda tx: transitions.claim(tx, "live", 1, 60_000))
        assert second[0].lease_epoch == first[0].lease_epoch + 1
        ok = transitions.Outcome(kind="success", output={"by": "live"})
        zombie = transitions.Outcome(kind="success", output={"by": "zombie"})
        late = await store.transact(
            lambda tx: transitions.complete(tx, first[0], zombie, owner="zombie")
        )
        assert late.accepted is False
        done = await store.transact(
            lambda tx: transitions.complete(tx, second[0], ok, owner="live")
        )
        assert done.accepted is True
        again = await store.transact(
            lambda tx: transitions.complete(tx, second[0], ok, owner="live")
        )
        assert again.accepted is False
        run = await rt.runs.get(Caller.system(), run_id)
        assert run.status == "finished" and run.output == {"a": {"by": "live"}}
        attempts = await rt.runs.attempts(Caller.system(), run_id)
        assert [(a.attempt, a.status) for a in attempts] == [(1, "lost"), (2, "finished")]


async def test_worker_reaps_a_dead_workers_lease(store: Store) -> None:
    settings = fast_settings(lease_seconds=0.5)
    async with running(store, settings=settings, start_worker=False) as rt:
        doc = wf({"id": "a", "type": "test.count"})
        run_id = (await rt.runs.start(Caller.system(), doc)).run.id
        await store.transact(lambda tx: transitions.claim(tx, "dead-worker", 1, 200))
    async with running(store, settings=settings) as rt:
        run = await rt.runs.wait(Caller.system(), run_id, timeout=10)
        assert run.status == "finished"
        assert rt.probe.calls == {"a[0]": 1}


async def test_resume_reuses_finished_outputs_and_reruns_the_rest(store: Store) -> None:
    async with running(store) as rt:
        doc = wf(
            {"id": "a", "type": "test.count"},
            {"id": "b", "type": "util.fail", "params": {"fail_times": 1, "retryable": False}},
            {"id": "c", "type": "test.count"},
        )
        run_id = (await rt.runs.start(Caller.system(), doc)).run.id
        run = await rt.runs.wait(Caller.system(), run_id, timeout=10)
        assert run.status == "failed"
        with pytest.raises(RunNotActive):
            await rt.runs.cancel(Caller.system(), run_id)
        await rt.runs.resume(Caller.system(), run_id)
        run = await rt.runs.wait(Caller.system(), run_id, timeout=10)
        assert run.status == "finished"
        assert rt.probe.calls == {"a[0]": 1, "c[0]": 1}
        attempts = [
            (a.node_id, a.attempt, a.status)
            for a in await rt.runs.attempts(Caller.system(), run_id)
        ]
        assert attempts == [
            ("a", 1, "finished"),
            ("b", 1, "failed"),
            ("b", 2, "finished"),
            ("c", 1, "finished"),
        ]


async def test_resume_a_cancelled_run_and_retry_makes_a_new_run(store: Store) -> None:
    async with running(store) as rt:
        doc = wf(
            {"id": "a", "type": "test.count"},
            {"id": "gate", "type": "control.approval", "params": {"title": "ok?"}},
        )
        run_id = (await rt.runs.start(Caller.system(), doc, {"x": 1})).run.id
        await wait_status(rt.runs, run_id, "waiting-approval")
        await rt.runs.cancel(Caller.system(), run_id)
        await rt.runs.resume(Caller.system(), run_id)
        await wait_status(rt.runs, run_id, "waiting-approval")
        await rt.runs.decide(Caller.system(), run_id, "gate", approved=True)
        assert (await rt.runs.wait(Caller.system(), run_id, timeout=10)).status == "finished"
        assert rt.probe.calls == {"a[0]": 1}
        retried = await rt.runs.retry(Caller.system(), run_id)
        assert retried.run.id != run_id and retried.run.input == {"x": 1}


async def test_rewind_reruns_only_what_follows_the_frame(store: Store) -> None:
    async with running(store) as rt:
        doc = wf(
            {"id": "a", "type": "test.count"},
            {"id": "b", "type": "test.count"},
            {"id": "c", "type": "test.count"},
        )
        run_id = (await rt.runs.start(Caller.system(), doc)).run.id
        assert (await rt.runs.wait(Caller.system(), run_id, timeout=10)).status == "finished"
        frames = await rt.runs.frames(Caller.system(), run_id)
        # The first frame where "a" is finished but "b" is not started yet.
        point = next(
            f["frameNo"]
            for f in frames
            if {"nodeId": "a", "iteration": 0, "status": "finished", "attempt": 1} in f["nodes"]
        )
        await rt.runs.rewind(Caller.system(), run_id, point)
        run = await rt.runs.wait(Caller.system(), run_id, timeout=10)
        assert run.status == "finished"
        assert rt.probe.calls == {"a[0]": 1, "b[0]": 2, "c[0]": 2}
        types = [e["type"] for e in await rt.runs.events(Caller.system(), run_id)]
        assert "RunRewound" in types


async def test_fork_from_failed_node_with_fixed_workflow(store: Store) -> None:
    async with running(store) as rt:
        broken = wf(
            {"id": "fetch", "type": "test.count", "params": {"value": 7}},
            {"id": "compute", "type": "util.fail", "params": {"retryable": False}},
            {"id": "report", "type": "test.count"},
        )
        run_id = (await rt.runs.start(Caller.system(), broken)).run.id
        assert (await rt.runs.wait(Caller.system(), run_id, timeout=10)).status == "failed"
        forked = await rt.runs.fork(Caller.system(), run_id, from_node="compute")
        fork_id = forked.run.id
        assert (await rt.runs.wait(Caller.system(), fork_id, timeout=10)).status == "failed"
        assert rt.probe.calls == {"fetch[0]": 1}
        fixed_nodes = {n.node_id: n for n in await rt.runs.nodes(Caller.system(), fork_id)}
        assert fixed_nodes["fetch"].output["value"] == 7
        diff = await rt.runs.diff(Caller.system(), run_id, fork_id)
        assert {n["nodeId"] for n in diff["nodes"] if n["changed"]} == set()
