"""State transitions of runs and node runs: one import point for the engine's transactions.

Each public function runs inside one transaction: a synchronous function taking a
:class:`~flowplane.store.tx.Tx`, run by the store in a worker thread, so everything it writes
(state, attempts, events, frames) commits atomically.
"""

from __future__ import annotations

from flowplane.engine.attempts import MAX_LOG_EVENTS_PER_ATTEMPT
from flowplane.engine.claims import Claimed, claim, claim_ids, claim_work
from flowplane.engine.completion import (
    Completion,
    GroupCompletion,
    Outcome,
    complete,
    complete_items,
    groupable,
)
from flowplane.engine.control import (
    MAX_LOST_ATTEMPTS,
    cancel,
    decide,
    reap,
    release,
    send_signal,
    time_out_runs,
    wait_row_is_timer,
)
from flowplane.engine.dispatch import DispatchRequest, dispatch, register_local_worker
from flowplane.engine.plan import plan_of
from flowplane.engine.settlement import node_settled, update_run_status
from flowplane.engine.successors import trigger_decision
from flowplane.engine.timetravel import (
    RESUMABLE_RUN,
    fork_outputs,
    prefill,
    resume,
    rewind,
    states_at_frame,
)

__all__ = [
    "MAX_LOG_EVENTS_PER_ATTEMPT",
    "MAX_LOST_ATTEMPTS",
    "RESUMABLE_RUN",
    "Claimed",
    "Completion",
    "DispatchRequest",
    "GroupCompletion",
    "Outcome",
    "cancel",
    "claim",
    "claim_ids",
    "claim_work",
    "complete",
    "complete_items",
    "decide",
    "dispatch",
    "fork_outputs",
    "groupable",
    "node_settled",
    "plan_of",
    "prefill",
    "reap",
    "register_local_worker",
    "release",
    "resume",
    "rewind",
    "send_signal",
    "states_at_frame",
    "time_out_runs",
    "trigger_decision",
    "update_run_status",
    "wait_row_is_timer",
]
