"""The asynchronous Flowplane client (the same methods as :class:`~flowplane.client.Client`).

Example::

    from flowplane.client import AsyncClient

    async with AsyncClient("http://127.0.0.1:8080", token="fp_...") as fp:
        run = await fp.run_workflow(name="order-followup", input={"order_id": 1})
        async for event in fp.stream_events(run.run_id):
            print(event.seq, event.type)
        print((await fp.wait(run.run_id)).status)
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, TypeVar

import httpx
import httpx_sse

from flowplane.client import _transport as t
from flowplane.client.models import (
    Approval,
    Connector,
    ConnectorCategory,
    ConnectorPage,
    Credential,
    CredentialPage,
    DispatchResult,
    Event,
    Frame,
    ImportResult,
    KVEntry,
    KVPage,
    LogItem,
    LogPage,
    NodePage,
    NodeState,
    Page,
    PatchResult,
    PruneResult,
    Revision,
    RevisionPage,
    Run,
    RunDetail,
    RunDiff,
    RunList,
    Schedule,
    SchedulePage,
    SignalResult,
    Trigger,
    TriggerPage,
    ValidationResult,
    WorkflowInfo,
    WorkflowPage,
)

T = TypeVar("T")


class AsyncClient:
    """An asynchronous client of the Flowplane HTTP API: one method per route.

    Args:
        base_url: the server (default ``FLOWPLANE_URL``, else ``http://127.0.0.1:8080``).
        token: an API key or login JWT (default ``FLOWPLANE_TOKEN``).
        timeout: seconds per request (event streams wait longer between bytes).
        headers: extra headers for every request.
        transport: an ``httpx`` transport (tests, proxies).

    Errors come back as the server's exception classes (``RunNotFound``, ``RunNotActive``,
    ``VersionMismatch``, ...), rebuilt from the problem document's ``code``.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        token: str | None = None,
        timeout: float = t.DEFAULT_TIMEOUT_SECONDS,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = t.resolve_url(base_url)
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=t.default_headers(t.resolve_token(token), headers),
            timeout=timeout,
            transport=transport,
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _send(self, call: t.Call[T]) -> T:
        response = await self._http.request(call.method, call.path, **call.request_kwargs())
        return call.parse(t.check(response))

    # --- workflows ----------------------------------------------------------------------

    async def create_workflow(self, document: dict[str, Any] | str) -> WorkflowInfo:
        """Store a new workflow from a document (a mapping, or YAML/JSON text)."""
        return await self._send(t.create_workflow(document))

    async def list_workflows(
        self,
        *,
        namespace: str | list[str] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> WorkflowPage:
        """Return a page of stored workflows (``next_cursor`` reads the next page)."""
        return await self._send(t.list_workflows(namespace, limit, cursor))

    async def get_workflow(self, workflow_id: str, *, namespace: str | None = None) -> WorkflowInfo:
        """Return a stored workflow by id, or by name (in ``namespace``, default ``default``)."""
        return await self._send(t.get_workflow(workflow_id, namespace))

    async def update_workflow(
        self,
        workflow_id: str,
        document: dict[str, Any] | str,
        *,
        if_match: int | str | None = None,
    ) -> WorkflowInfo:
        """Replace a workflow's document (``if_match``: the version you edited)."""
        return await self._send(t.update_workflow(workflow_id, document, if_match))

    async def delete_workflow(self, workflow_id: str, *, if_match: int | str | None = None) -> None:
        """Delete a workflow."""
        await self._send(t.delete_workflow(workflow_id, if_match))

    async def validate_workflow(self, document: dict[str, Any] | str) -> ValidationResult:
        """Validate a document without storing it: every error (and warning) at once."""
        return await self._send(t.validate_workflow(document))

    async def import_workflow(self, document: dict[str, Any] | str) -> ImportResult:
        """Import workflow documents (one, a list, or a YAML stream): each is created, or
        saved as a new version when one with its name exists (unchanged when equal)."""
        return await self._send(t.import_workflow(document))

    async def apply_workflow(self, document: dict[str, Any] | str) -> WorkflowInfo:
        """Create the workflow, or save a new version of the one with its name; return it."""
        (item, *_rest) = (await self.import_workflow(document)).items
        return await self.get_workflow(item.id)

    async def export_workflow(self, workflow_id: str, *, format: str = "yaml") -> str:
        """Return a workflow's document as YAML or JSON text."""
        return await self._send(t.export_workflow(workflow_id, format))

    async def list_revisions(self, workflow_id: str) -> RevisionPage:
        """List a workflow's revisions, newest first."""
        return await self._send(t.list_revisions(workflow_id))

    async def get_revision(self, workflow_id: str, version: int) -> Revision:
        """Return one revision of a workflow."""
        return await self._send(t.get_revision(workflow_id, version))

    async def restore_revision(self, workflow_id: str, version: int) -> WorkflowInfo:
        """Make an old revision the current version (as a new version)."""
        return await self._send(t.restore_revision(workflow_id, version))

    async def patch_workflow(
        self,
        workflow_id: str,
        ops: list[dict[str, Any]],
        *,
        if_match: int | str | None = None,
    ) -> PatchResult:
        """Apply EditOps; bad ops come back in ``skipped_items`` instead of failing the batch."""
        return await self._send(t.patch_workflow(workflow_id, ops, if_match))

    async def start_workflow_run(
        self, workflow_id: str, input: Any = None, *, idempotency_key: str | None = None
    ) -> DispatchResult:
        """Start a run of a stored workflow through ``POST /v1/workflows/{id}/runs``."""
        return await self._send(t.start_workflow_run(workflow_id, input, idempotency_key))

    # --- runs ---------------------------------------------------------------------------

    async def run_workflow(
        self,
        workflow_id: str | None = None,
        *,
        name: str | None = None,
        path: str | None = None,
        input: Any = None,
        namespace: str | None = None,
        run_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> DispatchResult:
        """Start a run of a stored workflow (by id or ``name``) or of a file under the root."""
        return await self._send(
            t.run_workflow(
                workflow_id=workflow_id,
                name=name,
                path=path,
                run_input=input,
                namespace=namespace,
                run_id=run_id,
                idempotency_key=idempotency_key,
            )
        )

    async def list_runs(
        self,
        *,
        status: str | list[str] | None = None,
        workflow: str | None = None,
        namespace: str | list[str] | None = None,
        created_after_ms: int | None = None,
        created_before_ms: int | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> RunList:
        """Return a page of runs, newest first (``next_cursor`` reads the next page)."""
        return await self._send(
            t.list_runs(
                status=status,
                workflow=workflow,
                namespace=namespace,
                created_after_ms=created_after_ms,
                created_before_ms=created_before_ms,
                limit=limit,
                cursor=cursor,
            )
        )

    async def get_run(self, run_id: str) -> RunDetail:
        """Describe a run: status, summary, every node with attempts, output and error."""
        return await self._send(t.get_run(run_id))

    async def get_status(self, run_id: str) -> RunDetail:
        """Same as :meth:`get_run` (the Smithers client's name)."""
        return await self.get_run(run_id)

    async def get_logs(
        self, run_id: str, *, after: str | None = None, limit: int | None = None
    ) -> LogPage:
        """Return a page of log lines and attempts."""
        return await self._send(t.get_logs(run_id, after, limit))

    async def iter_logs(self, run_id: str, *, page_size: int = 200) -> AsyncIterator[LogItem]:
        """Yield every log item of the run, page after page."""
        after: str | None = None
        while True:
            page = await self.get_logs(run_id, after=after, limit=page_size)
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            after = page.next_cursor

    async def get_run_nodes(
        self, run_id: str, *, cursor: str | None = None, limit: int | None = None
    ) -> NodePage:
        """Return a page of the run's node runs with their attempts (``cursor``: a
        ``next_cursor``, or the detail's ``nodes_next_cursor`` when it lists only the first)."""
        return await self._send(t.get_run_nodes(run_id, cursor, limit))

    async def iter_run_nodes(
        self, run_id: str, *, page_size: int = 500
    ) -> AsyncIterator[NodeState]:
        """Yield every node run of the run, page after page (however big its ``foreach``)."""
        cursor: str | None = None
        while True:
            page = await self.get_run_nodes(run_id, cursor=cursor, limit=page_size)
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def get_frames(
        self, run_id: str, *, after_frame_no: int | None = None, limit: int | None = None
    ) -> list[Frame]:
        """Return the run's frames (node-state snapshots) after ``after_frame_no``."""
        return await self._send(t.get_frames(run_id, after_frame_no, limit))

    async def cancel(self, run_id: str) -> Run:
        """Cancel an active run (``RunNotActive`` when it is terminal)."""
        return await self._send(t.cancel(run_id))

    async def delete_run(self, run_id: str) -> None:
        """Delete a settled run and its history (editor; ``RunNotSettled`` while active)."""
        await self._send(t.delete_run(run_id))

    async def prune_runs(self, *, dry_run: bool = False) -> PruneResult:
        """Apply the server's retention policy now (admin); ``dry_run`` only counts."""
        return await self._send(t.prune(dry_run))

    async def resume(self, run_id: str) -> Run:
        """Continue a failed or cancelled run, reusing the outputs it recorded."""
        return await self._send(t.resume(run_id))

    async def rewind(self, run_id: str, frame_no: int) -> Run:
        """Reset a run to frame ``frame_no`` and re-execute what follows (admin or owner)."""
        return await self._send(t.rewind(run_id, frame_no))

    async def fork(
        self,
        run_id: str,
        *,
        frame_no: int | None = None,
        from_node: str | None = None,
        input: Any = None,
        use_latest_version: bool = False,
        run_input: Any = None,
    ) -> DispatchResult:
        """Start a new run reusing the outputs recorded before ``frame_no`` or ``from_node``
        (``input``: another input; ``run_input`` is its deprecated name)."""
        if run_input is not None:
            warnings.warn("fork(run_input=) is deprecated: use input=", DeprecationWarning, 2)
            input = run_input if input is None else input
        return await self._send(t.fork(run_id, frame_no, from_node, input, use_latest_version))

    async def diff(self, run_id: str, other_run_id: str) -> RunDiff:
        """Compare two runs (typically an original and its fork) node by node."""
        return await self._send(t.diff(run_id, other_run_id))

    async def retry(self, run_id: str, *, use_latest_version: bool = False) -> DispatchResult:
        """Start a new run with the same input (optionally on the latest workflow version)."""
        return await self._send(t.retry(run_id, use_latest_version))

    async def approve(
        self, run_id: str, node_id: str, *, iteration: int = 0, note: str | None = None
    ) -> Approval:
        """Approve a node waiting for approval."""
        return await self._send(t.decide(run_id, node_id, True, iteration, note))

    async def deny(
        self, run_id: str, node_id: str, *, iteration: int = 0, note: str | None = None
    ) -> Approval:
        """Deny a node waiting for approval."""
        return await self._send(t.decide(run_id, node_id, False, iteration, note))

    async def signal(
        self,
        run_id: str,
        name: str,
        payload: Any = None,
        *,
        correlation_id: str | None = None,
    ) -> SignalResult:
        """Send a signal to a run."""
        return await self._send(t.signal(run_id, name, payload, correlation_id))

    async def list_approvals(
        self,
        *,
        status: str | None = "pending",
        namespace: str | list[str] | None = None,
        limit: int | None = None,
    ) -> list[Approval]:
        """Return approvals, pending first and longest wait first."""
        return await self._send(t.list_approvals(status, namespace, limit))

    def start_and_stream(
        self,
        workflow_id: str | None = None,
        *,
        name: str | None = None,
        path: str | None = None,
        input: Any = None,
        namespace: str | None = None,
        run_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> AsyncIterator[Event]:
        """Start a run (as :meth:`run_workflow`) and yield its events from its first one
        until it is terminal, in one request (``POST /v1/runs`` with ``Accept:
        text/event-stream``). Each event carries the run's id (``event.run_id``).

        A dropped stream is resumed from the last ``seq`` received, as
        :meth:`stream_events` does; a server that answers the start with JSON is followed
        with a second request. Refusals raise as :meth:`run_workflow`'s do.
        """
        call = t.run_workflow(
            workflow_id=workflow_id,
            name=name,
            path=path,
            run_input=input,
            namespace=namespace,
            run_id=run_id,
            idempotency_key=idempotency_key,
        )
        return self._start_and_follow(call)

    async def _start_and_follow(self, call: t.Call[DispatchResult]) -> AsyncGenerator[Event, None]:
        started: str | None = None
        last = 0
        try:
            options = t.start_stream_request(call)
            async with self._http.stream(call.method, call.path, **options) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise t.error_from_response(response)
                if not t.is_event_stream(response):
                    await response.aread()
                    started = call.parse(response).run_id
                else:
                    started = response.headers["x-run-id"]
                    async for sse in httpx_sse.EventSource(response).aiter_sse():
                        if not sse.data:
                            continue
                        event = Event.model_validate_json(sse.data)
                        if event.seq > last:
                            last = event.seq
                            yield event
                    # A clean close: the run is over, unless a restart or a proxy cut it.
                    if (await self.get_run(started)).is_terminal:
                        return
        except t.STREAM_ERRORS:
            if started is None:
                raise  # not known to have started: retry with an idempotency key
        async for event in self._follow(started, last, None):
            yield event

    def stream_events(self, run_id: str, after_seq: int = 0) -> AsyncIterator[Event]:
        """Yield the run's events from ``after_seq`` on, live, until the run is terminal.

        The server closes the stream once the run is terminal and every event was sent (a
        resumed run goes on after an old terminal event). A dropped connection is resumed
        from the last ``seq`` received, so no event is lost or repeated.
        """
        return self._follow(run_id, after_seq, None)

    async def _follow(
        self, run_id: str, after_seq: int, deadline: float | None
    ) -> AsyncGenerator[Event, None]:
        """:meth:`stream_events`, giving up with ``TimeoutError`` at ``deadline``."""
        last = after_seq
        failures = 0
        while True:
            path, options = t.events_request(run_id, last, t.remaining(deadline))
            try:
                async with httpx_sse.aconnect_sse(self._http, "GET", path, **options) as source:
                    if source.response.status_code >= 400:
                        await source.response.aread()
                        raise t.error_from_response(source.response)
                    async for sse in source.aiter_sse():
                        if not sse.data:
                            continue
                        event = Event.model_validate_json(sse.data)
                        if event.seq <= last:
                            continue
                        last, failures = event.seq, 0
                        yield event
            except t.STREAM_ERRORS:
                t.check_deadline(run_id, deadline)
                failures += 1
                if failures > t.MAX_RECONNECTS:
                    raise
                await asyncio.sleep(t.reconnect_delay(failures))
                continue
            # A clean close: the run is over, unless a restart or a proxy cut the stream.
            if (await self.get_run(run_id)).is_terminal:
                return
            t.check_deadline(run_id, deadline)
            failures += 1
            await asyncio.sleep(t.reconnect_delay(failures))

    async def wait(self, run_id: str, timeout: float | None = None) -> RunDetail:
        """Wait until the run is terminal and return it; ``TimeoutError`` after ``timeout``.

        It follows the run's event stream (no polling): it returns once the server closed
        the stream of a terminal run.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        run = await self.get_run(run_id)
        if run.is_terminal:
            return run
        events = self._follow(run_id, 0, deadline)
        try:
            # Whatever the transport does with read timeouts, the deadline holds.
            async with asyncio.timeout(t.remaining(deadline)):
                async for _event in events:
                    pass
        except TimeoutError:
            raise TimeoutError(f"run {run_id} is not terminal yet") from None
        finally:
            await events.aclose()
        return await self.get_run(run_id)

    async def paginate(
        self, list_method: Callable[..., Awaitable[Page[T]]], /, **kwargs: Any
    ) -> AsyncIterator[T]:
        """Yield every item of a listing, page after page.

        Example: ``async for wf in fp.paginate(fp.list_workflows): ...`` (any ``list_*``
        method that takes a ``cursor``).
        """
        cursor = kwargs.pop("cursor", None)
        while True:
            page = await list_method(cursor=cursor, **kwargs)
            for item in page.items:
                yield item
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    # --- schedules ----------------------------------------------------------------------

    async def create_schedule(
        self,
        cron: str,
        *,
        workflow: str | None = None,
        workflow_id: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        timezone: str | None = None,
        input: dict[str, Any] | None = None,
        enabled: bool | None = None,
        catchup: str | None = None,
        catchup_window_seconds: int | None = None,
        start_at: str | int | None = None,
        end_at: str | int | None = None,
    ) -> Schedule:
        """Create a schedule running a workflow (by ``workflow`` name or ``workflow_id``)."""
        body = t.schedule_body(
            cron=cron,
            workflow=workflow,
            workflow_id=workflow_id,
            namespace=namespace,
            name=name,
            timezone=timezone,
            input=input,
            enabled=enabled,
            catchup=catchup,
            catchup_window_seconds=catchup_window_seconds,
            start_at=start_at,
            end_at=end_at,
        )
        return await self._send(t.create_schedule(body))

    async def list_schedules(
        self,
        *,
        namespace: str | list[str] | None = None,
        workflow_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> SchedulePage:
        """Return a page of schedules."""
        return await self._send(t.list_schedules(namespace, workflow_id, limit, cursor))

    async def get_schedule(self, schedule_id: str) -> Schedule:
        """Return a schedule with its recent fires."""
        return await self._send(t.get_schedule(schedule_id))

    async def update_schedule(self, schedule_id: str, **changes: Any) -> Schedule:
        """Change a schedule's fields (``cron=``, ``enabled=``, ``input=``, ...)."""
        return await self._send(t.update_schedule(schedule_id, t.schedule_body(**changes)))

    async def delete_schedule(self, schedule_id: str) -> None:
        """Delete a schedule."""
        await self._send(t.delete_schedule(schedule_id))

    async def trigger_schedule(
        self, schedule_id: str, *, input: dict[str, Any] | None = None
    ) -> str:
        """Start a run of the schedule's workflow now; return the run id."""
        return await self._send(t.trigger_schedule(schedule_id, input))

    # --- triggers -----------------------------------------------------------------------

    async def create_trigger(
        self,
        *,
        workflow: str | None = None,
        workflow_id: str | None = None,
        namespace: str | None = None,
        key: str | None = None,
        kind: str | None = None,
        signal_name: str | None = None,
        correlation: str | None = None,
        scheme: str | None = None,
        secret: str | None = None,
        enabled: bool | None = None,
    ) -> Trigger:
        """Create a webhook trigger (``POST /v1/webhooks/{key}`` then starts or signals runs)."""
        body = t.trigger_body(
            workflow=workflow,
            workflow_id=workflow_id,
            namespace=namespace,
            key=key,
            kind=kind,
            signal_name=signal_name,
            correlation=correlation,
            scheme=scheme,
            secret=secret,
            enabled=enabled,
        )
        return await self._send(t.create_trigger(body))

    async def list_triggers(
        self,
        *,
        namespace: str | list[str] | None = None,
        workflow_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> TriggerPage:
        """Return a page of triggers."""
        return await self._send(t.list_triggers(namespace, workflow_id, limit, cursor))

    async def get_trigger(self, trigger_id: str) -> Trigger:
        """Return a trigger."""
        return await self._send(t.get_trigger(trigger_id))

    async def update_trigger(self, trigger_id: str, **fields: Any) -> Trigger:
        """Replace a trigger's fields (``PUT``: what is not given takes its default)."""
        return await self._send(t.update_trigger(trigger_id, t.trigger_body(**fields)))

    async def delete_trigger(self, trigger_id: str) -> None:
        """Delete a trigger."""
        await self._send(t.delete_trigger(trigger_id))

    # --- credentials --------------------------------------------------------------------

    async def create_credential(
        self,
        name: str,
        value: str,
        *,
        namespace: str | None = None,
        type: str | None = None,
        description: str | None = None,
        allowed_workflows: list[str] | None = None,
        allowed_connectors: list[str] | None = None,
        template_use: str | None = None,
    ) -> Credential:
        """Store a credential (admin); its value is never returned."""
        body = t.credential_body(
            name=name,
            value=value,
            namespace=namespace,
            type=type,
            description=description,
            allowed_workflows=allowed_workflows,
            allowed_connectors=allowed_connectors,
            template_use=template_use,
        )
        return await self._send(t.create_credential(body))

    async def list_credentials(
        self,
        *,
        namespace: str | list[str] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> CredentialPage:
        """Return a page of credentials (names and metadata only)."""
        return await self._send(t.list_credentials(namespace, limit, cursor))

    async def get_credential(self, credential_id: str) -> Credential:
        """Return a credential's metadata."""
        return await self._send(t.get_credential(credential_id))

    async def update_credential(
        self,
        credential_id: str,
        *,
        value: str | None = None,
        type: str | None = None,
        description: str | None = None,
        allowed_workflows: list[str] | None = None,
        allowed_connectors: list[str] | None = None,
        template_use: str | None = None,
        if_match: int | str | None = None,
    ) -> Credential:
        """Change a credential's value or metadata (``if_match``: the version you read)."""
        body = t.credential_body(
            value=value,
            type=type,
            description=description,
            allowed_workflows=allowed_workflows,
            allowed_connectors=allowed_connectors,
            template_use=template_use,
        )
        return await self._send(t.update_credential(credential_id, body, if_match))

    async def delete_credential(
        self, credential_id: str, *, if_match: int | str | None = None
    ) -> None:
        """Delete a credential."""
        await self._send(t.delete_credential(credential_id, if_match))

    # --- KV -----------------------------------------------------------------------------

    async def list_kv(
        self,
        namespace: str,
        *,
        prefix: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> KVPage:
        """Return a page of a namespace's live entries, by key."""
        return await self._send(t.list_kv(namespace, prefix, limit, cursor))

    async def get_kv(self, namespace: str, key: str) -> KVEntry:
        """Return an entry (``NotFound`` when absent or expired)."""
        return await self._send(t.get_kv(namespace, key))

    async def put_kv(
        self,
        namespace: str,
        key: str,
        value: Any,
        *,
        ttl_seconds: float | None = None,
        if_match: int | str | None = None,
        only_if_absent: bool = False,
    ) -> KVEntry:
        """Create or replace an entry (compare-and-set with ``if_match``)."""
        return await self._send(
            t.put_kv(namespace, key, value, ttl_seconds, if_match, only_if_absent)
        )

    async def delete_kv(
        self, namespace: str, key: str, *, if_match: int | str | None = None
    ) -> None:
        """Delete an entry."""
        await self._send(t.delete_kv(namespace, key, if_match))

    # --- connectors ---------------------------------------------------------------------

    async def list_connectors(
        self, *, detail: str = "summary", category: str | None = None, q: str | None = None
    ) -> ConnectorPage:
        """Return the connectors of the catalogue (``detail="full"`` for their manifests)."""
        return await self._send(t.list_connectors(detail, category, q))

    async def get_connector(self, node_type: str) -> Connector:
        """Return one connector's full manifest."""
        return await self._send(t.get_connector(node_type))

    async def list_connector_categories(self) -> list[ConnectorCategory]:
        """Return the catalogue's categories with their connector counts."""
        return await self._send(t.list_connector_categories())
