"""What the MCP tools act on: one small protocol, two implementations.

The tools of :mod:`flowplane.mcp.tools` are written once against :class:`Backend`. Inside
``flowplane serve`` (and ``flowplane mcp`` on a local database) the backend is a face over
the services boundary (:class:`flowplane.api.mcp_backend.ServicesBackend`, one per caller);
``flowplane mcp --server`` uses :class:`flowplane.mcp.remote.ClientBackend`, the Python
client. Every method answers in Flowplane's JSON wire format (the HTTP API's bodies), and
fails with a :class:`~flowplane.errors.FlowplaneError` carrying its stable ``code``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

__all__ = ["Backend", "BackendProvider", "Json"]

Json = dict[str, Any]
"""One JSON object of the wire format."""


class Backend(Protocol):
    """The operations the MCP tools, resources and prompts use (all in wire format)."""

    async def search_connectors(
        self, query: str | None, category: str | None, detail: str
    ) -> list[Json]:
        """Connector manifests matching every word of ``query`` (``summary`` or ``full``)."""
        ...

    async def describe_connector(self, type_: str) -> Json:
        """One connector's full manifest."""
        ...

    async def list_workflows(
        self, namespace: list[str] | None, limit: int, cursor: str | None
    ) -> Json:
        """A page of stored workflows: ``{items, nextCursor}``."""
        ...

    async def get_workflow(self, ref: str, namespace: str | None) -> Json:
        """A stored workflow by id, or by name in ``namespace``."""
        ...

    async def create_workflow(self, document: Json) -> Json:
        """Store a new workflow (version 1)."""
        ...

    async def validate_workflow(self, document: Json) -> Json:
        """``{valid, errors, document}`` for a document, stored nowhere."""
        ...

    async def apply_edits(
        self, workflow_id: str, ops: list[Json], expected_version: int | None
    ) -> Json:
        """The EditOps result: ``ok, version, saved, workflow, validation_errors,
        skipped_items, applied, summary`` (as ``POST /v1/workflows/{id}/operations``)."""
        ...

    async def start_run(
        self, workflow_id: str, run_input: Any, idempotency_key: str | None
    ) -> Json:
        """Start a run of a stored workflow's current version."""
        ...

    async def list_runs(
        self, status: list[str] | None, workflow: str | None, limit: int, cursor: str | None
    ) -> Json:
        """A page of runs, newest first: ``{runs, nextCursor}``."""
        ...

    async def describe_run(self, run_id: str) -> Json:
        """The run's detail: status, summary, every node with its output and attempts."""
        ...

    async def run_logs(self, run_id: str, after: str | None, limit: int) -> Json:
        """A page of the run's log lines and attempts: ``{items, nextCursor}``."""
        ...

    async def wait_run(self, run_id: str, timeout_seconds: float) -> tuple[Json, bool]:
        """Wait until the run is terminal or waits for an approval or a signal.

        Returns the run's detail and whether it got there within ``timeout_seconds``.
        """
        ...

    async def decide(
        self, run_id: str, node_id: str, approved: bool, iteration: int, note: str | None
    ) -> Json:
        """Approve or deny a node waiting for approval."""
        ...

    async def signal(
        self, run_id: str, name: str, payload: Any, correlation_id: str | None
    ) -> Json:
        """Send a signal to a run."""
        ...

    async def cancel(self, run_id: str) -> Json:
        """Cancel an active run."""
        ...

    async def resume(self, run_id: str) -> Json:
        """Continue a failed, cancelled or timed-out run."""
        ...

    async def retry(self, run_id: str, use_latest_version: bool) -> Json:
        """Start a new run with the same input."""
        ...

    async def fork(
        self, run_id: str, from_node: str, run_input: Any, use_latest_version: bool
    ) -> Json:
        """Start a new run reusing the outputs of everything upstream of ``from_node``."""
        ...

    async def diff(self, run_id: str, other_run_id: str) -> Json:
        """Compare two runs node by node."""
        ...

    async def list_approvals(self, namespace: list[str] | None, limit: int) -> Json:
        """Pending approvals, longest wait first: ``{approvals}``."""
        ...


BackendProvider = Callable[[Any], Backend]
"""The backend for one MCP request, given its ``Context`` (the caller of that request)."""
