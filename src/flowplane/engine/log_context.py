"""Which run and node the current task works on, for JSON log lines.

The worker sets these context variables for each node run it executes, only when the
process writes JSON logs (``FLOWPLANE_LOG_FORMAT=json``); the log formatter reads them (and
the request id of :mod:`flowplane.services.context`). Each node run executes in a task of
its own, so the values never leak from one node run to another.
"""

from __future__ import annotations

import contextvars

__all__ = ["iteration_var", "node_id_var", "run_id_var"]

run_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "flowplane_run_id", default=None
)
node_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "flowplane_node_id", default=None
)
iteration_var: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "flowplane_iteration", default=None
)
