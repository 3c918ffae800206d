"""The store's typed records: built from rows without validation, frozen (but the run, the
engine's working copy), statuses as enums."""

from __future__ import annotations

import dataclasses

import pytest

from flowplane.status import NodeStatus, RunStatus
from flowplane.store.records import (
    ApprovalRecord,
    AttemptRecord,
    NodeRunRecord,
    NodeState,
    RunRecord,
    SignalRecord,
)
from flowplane.store.records.base import adopt

RUN_ROW = {
    "id": "r1",
    "namespace": "default",
    "workflow_name": "flow",
    "status": "waiting-approval",
    "input": {"n": 1},
    "frame_no": 3,
    "started_at_ms": 10,
}


def test_a_run_record_holds_its_row_and_an_enum_status() -> None:
    run = RunRecord.from_row(RUN_ROW)
    assert run.id == "r1" and run.input == {"n": 1} and run.frame_no == 3
    assert run.status is RunStatus.WAITING_APPROVAL
    assert run.status == "waiting-approval"  # the enum compares equal to its wire string
    # Columns the row does not carry (a read without the document) read as the default.
    assert run.document is None and run.finished_at_ms is None and run.trigger is None
    assert not run.terminal
    assert dataclasses.asdict(run)["started_at_ms"] == 10


def test_records_are_frozen_but_the_run_the_engine_works_on() -> None:
    node = NodeRunRecord.from_row(
        {"id": 7, "run_id": "r1", "node_id": "a", "iteration": 0, "status": "ready"}
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        node.status = NodeStatus.FINISHED  # type: ignore[misc]
    state = NodeState.from_row({"id": 7, "node_id": "a", "iteration": -1, "status": "pending"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.status = NodeStatus.READY  # type: ignore[misc]
    # The engine sets the status of the run it locked as it writes it (see RunRecord).
    run = RunRecord.from_row(RUN_ROW)
    run.status = RunStatus.FINISHED
    assert run.terminal


def test_adopt_makes_the_row_the_record_state() -> None:
    row = {"id": 7, "node_id": "a", "iteration": 2, "status": NodeStatus.READY}
    state = adopt(NodeState, row)
    assert state == NodeState(7, "a", 2, NodeStatus.READY)
    assert vars(state) is row  # no copy
    assert state.attempt == 0 and state.lease_epoch == 0  # columns not read: the defaults


def test_a_signal_record_holds_its_payload_as_stored() -> None:
    row = {"id": 3, "run_id": "r1", "name": "go", "payload": {"k": [1]}, "created_at_ms": 5}
    signal = SignalRecord.from_row(row)
    assert signal.payload == {"k": [1]} and signal.correlation_id is None
    assert signal.consumed_at_ms is None


def test_a_node_run_record_has_a_node_status_and_equals_one_built_by_hand() -> None:
    row = {"id": 7, "run_id": "r1", "node_id": "a", "iteration": 0, "status": "in-progress"}
    node = NodeRunRecord.from_row(row)
    assert node.status is NodeStatus.IN_PROGRESS
    assert node == NodeRunRecord(7, "r1", "a", 0, NodeStatus.IN_PROGRESS)


def test_an_unknown_status_is_refused() -> None:
    with pytest.raises(KeyError):
        RunRecord.from_row({**RUN_ROW, "status": "paused"})


def test_an_attempt_keeps_its_outcome_as_stored() -> None:
    row = {
        "id": 1,
        "run_id": "r1",
        "node_id": "a",
        "iteration": 0,
        "attempt": 2,
        "status": "lost",
        "worker": "w",
        "started_at_ms": 5,
        "finished_at_ms": 9,
        "error": None,
    }
    assert AttemptRecord.from_row(row).status == "lost"


@pytest.mark.parametrize(
    ("status", "decided", "waiting"),
    [("pending", None, 900), ("approved", 400, 300), ("denied", None, 900)],
)
def test_an_approval_waits_until_it_is_decided(
    status: str, decided: int | None, waiting: int
) -> None:
    row = {
        "id": "ap1",
        "run_id": "r1",
        "namespace": "default",
        "node_id": "gate",
        "iteration": 0,
        "title": "Ship?",
        "status": status,
        "requested_at_ms": 100,
        "decided_at_ms": decided,
    }
    approval = ApprovalRecord.from_row(row, now_ms=1000, run_status="waiting-approval")
    assert approval.waiting_ms == waiting
    assert approval.run_status is RunStatus.WAITING_APPROVAL


def test_a_decided_approval_stops_waiting_and_keeps_its_run() -> None:
    row = {
        "id": "ap1",
        "run_id": "r1",
        "namespace": "default",
        "node_id": "gate",
        "iteration": 0,
        "title": "Ship?",
        "status": "pending",
        "requested_at_ms": 100,
    }
    pending = ApprovalRecord.from_row(row, now_ms=1000).of_run("flow", "waiting-approval")
    assert pending.waiting_ms == 900 and pending.run_status is RunStatus.WAITING_APPROVAL
    decided = pending.decided("approved", by="ann", note="ok", at_ms=400)
    assert (decided.status, decided.decided_by, decided.note) == ("approved", "ann", "ok")
    assert decided.decided_at_ms == 400 and decided.waiting_ms == 300
    assert decided.workflow_name == "flow" and pending.status == "pending"
