"""The MCP backend of ``flowplane mcp --server URL``: the Python client, over HTTP.

Everything the server decides (roles, namespaces, paging, redaction) is decided there; the
client raises the server's error classes back (same ``code``), so a refusal reads the same
through MCP as through the API.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel

from flowplane.client import AsyncClient
from flowplane.client.models import TERMINAL_STATUSES
from flowplane.mcp.backend import Json

__all__ = ["NEEDS_SOMEONE", "ClientBackend"]

NEEDS_SOMEONE = frozenset({*TERMINAL_STATUSES, "waiting-approval", "waiting-event"})
"""Run statuses a wait stops at (the server's ``RunReader.settle`` stops at the same)."""
POLL_MAX_SECONDS = 1.0


def _wire(model: BaseModel) -> Json:
    return model.model_dump(mode="json", by_alias=True)


class ClientBackend:
    """A :class:`~flowplane.mcp.backend.Backend` over an :class:`AsyncClient`."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client

    async def search_connectors(
        self, query: str | None, category: str | None, detail: str
    ) -> list[Json]:
        page = await self.client.list_connectors(q=query, category=category, detail=detail)
        return [c.model_dump(mode="json", exclude_unset=True) for c in page.items]

    async def describe_connector(self, type_: str) -> Json:
        found = await self.client.get_connector(type_)
        return found.model_dump(mode="json", exclude_unset=True)

    async def list_workflows(
        self, namespace: list[str] | None, limit: int, cursor: str | None
    ) -> Json:
        page = await self.client.list_workflows(namespace=namespace, limit=limit, cursor=cursor)
        return _wire(page)

    async def get_workflow(self, ref: str, namespace: str | None) -> Json:
        return _wire(await self.client.get_workflow(ref, namespace=namespace))

    async def create_workflow(self, document: Json) -> Json:
        return _wire(await self.client.create_workflow(document))

    async def validate_workflow(self, document: Json) -> Json:
        report = await self.client.validate_workflow(document)
        return report.model_dump(mode="json")

    async def apply_edits(
        self, workflow_id: str, ops: list[Json], expected_version: int | None
    ) -> Json:
        result = await self.client.patch_workflow(workflow_id, ops, if_match=expected_version)
        return _wire(result)

    async def start_run(
        self, workflow_id: str, run_input: Any, idempotency_key: str | None
    ) -> Json:
        run = await self.client.start_workflow_run(
            workflow_id, run_input, idempotency_key=idempotency_key
        )
        return _wire(run)

    async def list_runs(
        self, status: list[str] | None, workflow: str | None, limit: int, cursor: str | None
    ) -> Json:
        page = await self.client.list_runs(
            status=status, workflow=workflow, limit=limit, cursor=cursor
        )
        return {"runs": [_wire(run) for run in page.items], "nextCursor": page.next_cursor}

    async def describe_run(self, run_id: str) -> Json:
        return _wire(await self.client.get_run(run_id))

    async def run_logs(self, run_id: str, after: str | None, limit: int) -> Json:
        return _wire(await self.client.get_logs(run_id, after=after, limit=limit))

    async def wait_run(self, run_id: str, timeout_seconds: float) -> tuple[Json, bool]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout_seconds)
        delay = 0.05
        while True:
            run = await self.client.get_run(run_id)
            if run.status in NEEDS_SOMEONE:
                return _wire(run), True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return _wire(run), False
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, POLL_MAX_SECONDS)

    async def decide(
        self, run_id: str, node_id: str, approved: bool, iteration: int, note: str | None
    ) -> Json:
        decide = self.client.approve if approved else self.client.deny
        return _wire(await decide(run_id, node_id, iteration=iteration, note=note))

    async def signal(
        self, run_id: str, name: str, payload: Any, correlation_id: str | None
    ) -> Json:
        result = await self.client.signal(run_id, name, payload, correlation_id=correlation_id)
        return _wire(result)

    async def cancel(self, run_id: str) -> Json:
        return _wire(await self.client.cancel(run_id))

    async def resume(self, run_id: str) -> Json:
        return _wire(await self.client.resume(run_id))

    async def retry(self, run_id: str, use_latest_version: bool) -> Json:
        return _wire(await self.client.retry(run_id, use_latest_version=use_latest_version))

    async def fork(
        self, run_id: str, from_node: str, run_input: Any, use_latest_version: bool
    ) -> Json:
        run = await self.client.fork(
            run_id,
            from_node=from_node,
            input=run_input,
            use_latest_version=use_latest_version,
        )
        return _wire(run)

    async def diff(self, run_id: str, other_run_id: str) -> Json:
        return _wire(await self.client.diff(run_id, other_run_id))

    async def list_approvals(self, namespace: list[str] | None, limit: int) -> Json:
        found = await self.client.list_approvals(namespace=namespace, limit=limit)
        return {"approvals": [_wire(a) for a in found]}
