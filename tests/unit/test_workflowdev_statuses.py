"""workflowdev's status names: one entry for every Flowplane run and node status."""

from __future__ import annotations

from flowplane.api.workflowdev.statuses import NODE_STATUS, RUN_STATUS, run_statuses_of
from flowplane.status import TERMINAL_RUN, NodeStatus, RunStatus


def test_every_status_has_a_workflowdev_name() -> None:
    assert set(RUN_STATUS) == set(RunStatus)
    assert set(NODE_STATUS) == set(NodeStatus)


def test_the_seeds_terminal_statuses_are_flowplanes_terminal_ones() -> None:
    # Executions: "Terminal statuses: SUCCESS, FAILED, CANCELLED, TIMED_OUT"
    assert {RUN_STATUS[RunStatus(s)] for s in TERMINAL_RUN} == {
        "SUCCESS",
        "FAILED",
        "CANCELLED",
        "TIMED_OUT",
    }


def test_a_status_filter_maps_back() -> None:
    assert run_statuses_of(["success", " FAILED "]) == ["finished", "failed"]
    assert run_statuses_of(["NO_SUCH"]) == ["-"]
