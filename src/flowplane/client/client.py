"""The synchronous Flowplane client.

Example::

    from flowplane.client import Client

    with Client("http://127.0.0.1:8080", token="fp_...") as fp:
        run = fp.run_workflow(name="order-followup", input={"order_id": 1})
        for event in fp.stream_events(run.run_id):
            print(event.seq, event.type)
        print(fp.wait(run.run_id).status)
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator, Mapping
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


class Client:
    """A synchronous client of the Flowplane HTTP API: one method per route.

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
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = t.resolve_url(base_url)
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=t.default_headers(t.resolve_token(token), headers),
            timeout=timeout,
            transport=transport,
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _send(self, call: t.Call[T]) -> T:
        response = self._http.request(call.method, call.path, **call.request_kwargs())
        return call.parse(t.check(response))

    # --- workflows ----------------------------------------------------------------------

    def create_workflow(self, document: dict[str, Any] | str) -> WorkflowInfo:
        """Store a new workflow from a document (a mapping, or YAML/JSON text)."""
        return self._send(t.create_workflow(document))

    def list_workflows(
        self,
        *,
        namespace: str | list[str] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> WorkflowPage:
        """Return a page of stored workflows (``next_cursor`` reads the next page)."""
        return self._send(t.list_workflows(namespace, limit, cursor))

    def get_workflow(self, workflow_id: str, *, namespace: str | None = None) -> WorkflowInfo:
        """Return a stored workflow by id, or by name (in ``namespace``, default ``default``)."""
        return self._send(t.get_workflow(workflow_id, namespace))

    def update_workflow(
        self,
        workflow_id: str,
        document: dict[str, Any] | str,
        *,
        if_match: int | str | None = None,
    ) -> WorkflowInfo:
        """Replace a workflow's document (``if_match``: the version you edited)."""
        return self._send(t.update_workflow(workflow_id, document, if_match))

    def delete_workflow(self, workflow_id: str, *, if_match: int | str | None = None) -> None:
        """Delete a workflow."""
        self._send(t.delete_workflow(workflow_id, if_match))

    def validate_workflow(self, document: dict[str, Any] | str) -> ValidationResult:
        """Validate a document without storing it: every error (and warning) at once."""
        return self._send(t.validate_workflow(document))

    def import_workflow(self, document: dict[str, Any] | str) -> ImportResult:
        """Import workflow documents (one, a list, or a YAML stream): each is created, or
        saved as a new version when one with its name exists (unchanged when equal)."""
        return self._send(t.import_workflow(document))

    def apply_workflow(self, document: dict[str, Any] | str) -> WorkflowInfo:
        """Create the workflow, or save a new version of the one with its name; return it.

        What a user means by "load this file": it works whether or not the workflow exists
        (``flowplane serve --load-examples`` loaded the examples the same way).
        """
        (item, *_rest) = self.import_workflow(document).items
        return self.get_workflow(item.id)

    def export_workflow(self, workflow_id: str, *, format: str = "yaml") -> str:
        """Return a workflow's document as YAML or JSON text."""
        return self._send(t.export_workflow(workflow_id, format))

    def list_revisions(self, workflow_id: str) -> RevisionPage:
        """List a workflow's revisions, newest first."""
        return self._send(t.list_revisions(workflow_id))

    def get_revision(self, workflow_id: str, version: int) -> Revision:
        """Return one revision of a workflow."""
        return self._send(t.get_revision(workflow_id, version))

    def restore_revision(self, workflow_id: str, version: int) -> WorkflowInfo:
        """Make an old revision the current version (as a new version)."""
        return self._send(t.restore_revision(workflow_id, version))

    def patch_workflow(
        self,
        workflow_id: str,
        ops: list[dict[str, Any]],
        *,
        if_match: int | str | None = None,
    ) -> PatchResult:
        """Apply EditOps; bad ops come back in ``skipped_items`` instead of failing the batch."""
        return self._send(t.patch_workflow(workflow_id, ops, if_match))

    def start_workflow_run(
        self, workflow_id: str, input: Any = None, *, idempotency_key: str | None = None
    ) -> DispatchResult:
        """Start a run of a stored workflow through ``POST /v1/workflows/{id}/runs``."""
        return self._send(t.start_workflow_run(workflow_id, input, idempotency_key))

    # --- runs ---------------------------------------------------------------------------

    def run_workflow(
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
        return self._send(
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

    def list_runs(
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
        return self._send(
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

    def get_run(self, run_id: str) -> RunDetail:
        """Describe a run: status, summary, every node with attempts, output and error."""
        return self._send(t.get_run(run_id))

    def get_status(self, run_id: str) -> RunDetail:
        """Same as :meth:`get_run` (the Smithers client's name)."""
        return self.get_run(run_id)

    def get_logs(
        self, run_id: str, *, after: str | None = None, limit: int | None = None
    ) -> LogPage:
        """Return a page of log lines and attempts."""
        return self._send(t.get_logs(run_id, after, limit))

    def iter_logs(self, run_id: str, *, page_size: int = 200) -> Iterator[LogItem]:
        """Yield every log item of the run, page after page."""
        after: str | None = None
        while True:
            page = self.get_logs(run_id, after=after, limit=page_size)
            yield from page.items
            if page.next_cursor is None:
                return
            after = page.next_cursor

    def get_run_nodes(
        self, run_id: str, *, cursor: str | None = None, limit: int | None = None
    ) -> NodePage:
        """Return a page of the run's node runs with their attempts (``cursor``: a
        ``next_cursor``, or the detail's ``nodes_next_cursor`` when it lists only the first)."""
        return self._send(t.get_run_nodes(run_id, cursor, limit))

    def iter_run_nodes(self, run_id: str, *, page_size: int = 500) -> Iterator[NodeState]:
        """Yield every node run of the run, page after page (however big its ``foreach``)."""
        cursor: str | None = None
        while True:
            page = self.get_run_nodes(run_id, cursor=cursor, limit=page_size)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def get_frames(
        self, run_id: str, *, after_frame_no: int | None = None, limit: int | None = None
    ) -> list[Frame]:
        """Return the run's frames (node-state snapshots) after ``after_frame_no``."""
        return self._send(t.get_frames(run_id, after_frame_no, limit))

    def cancel(self, run_id: str) -> Run:
        """Cancel an active run (``RunNotActive`` when it is terminal)."""
        return self._send(t.cancel(run_id))

    def delete_run(self, run_id: str) -> None:
        """Delete a settled run and its history (editor; ``RunNotSettled`` while active)."""
        self._send(t.delete_run(run_id))

    def prune_runs(self, *, dry_run: bool = False) -> PruneResult:
        """Apply the server's retention policy now (admin); ``dry_run`` only counts."""
        return self._send(t.prune(dry_run))

    def resume(self, run_id: str) -> Run:
        """Continue a failed or cancelled run, reusing the outputs it recorded."""
        return self._send(t.resume(run_id))

    def rewind(self, run_id: str, frame_no: int) -> Run:
        """Reset a run to frame ``frame_no`` and re-execute what follows (admin or owner)."""
        return self._send(t.rewind(run_id, frame_no))

    def fork(
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
        return self._send(t.fork(run_id, frame_no, from_node, input, use_latest_version))

    def diff(self, run_id: str, other_run_id: str) -> RunDiff:
        """Compare two runs (typically an original and its fork) node by node."""
        return self._send(t.diff(run_id, other_run_id))

    def retry(self, run_id: str, *, use_latest_version: bool = False) -> DispatchResult:
        """Start a new run with the same input (optionally on the latest workflow version)."""
        return self._send(t.retry(run_id, use_latest_version))

    def approve(
        self, run_id: str, node_id: str, *, iteration: int = 0, note: str | None = None
    ) -> Approval:
        """Approve a node waiting for approval."""
        return self._send(t.decide(run_id, node_id, True, iteration, note))

    def deny(
        self, run_id: str, node_id: str, *, iteration: int = 0, note: str | None = None
    ) -> Approval:
        """Deny a node waiting for approval."""
        return self._send(t.decide(run_id, node_id, False, iteration, note))

    def signal(
        self,
        run_id: str,
        name: str,
        payload: Any = None,
        *,
        correlation_id: str | None = None,
    ) -> SignalResult:
        """Send a signal to a run."""
        return self._send(t.signal(run_id, name, payload, correlation_id))

    def list_approvals(
        self,
        *,
        status: str | None = "pending",
        namespace: str | list[str] | None = None,
        limit: int | None = None,
    ) -> list[Approval]:
        """Return approvals, pending first and longest wait first."""
        return self._send(t.list_approvals(status, namespace, limit))

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
    ) -> Iterator[Event]:
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

    def _start_and_follow(self, call: t.Call[DispatchResult]) -> Iterator[Event]:
        started: str | None = None
        last = 0
        try:
            options = t.start_stream_request(call)
            with self._http.stream(call.method, call.path, **options) as response:
                if response.status_code >= 400:
                    response.read()
                    raise t.error_from_response(response)
                if not t.is_event_stream(response):
                    response.read()
                    started = call.parse(response).run_id
                else:
                    started = response.headers["x-run-id"]
                    for sse in httpx_sse.EventSource(response).iter_sse():
                        if not sse.data:
                            continue
                        event = Event.model_validate_json(sse.data)
                        if event.seq > last:
                            last = event.seq
                            yield event
                    # A clean close: the run is over, unless a restart or a proxy cut it.
                    if self.get_run(started).is_terminal:
                        return
        except t.STREAM_ERRORS:
            if started is None:
                raise  # not known to have started: retry with an idempotency key
        yield from self._follow(started, last, None)

    def stream_events(self, run_id: str, after_seq: int = 0) -> Iterator[Event]:
        """Yield the run's events from ``after_seq`` on, live, until the run is terminal.

        The server closes the stream once the run is terminal and every event was sent (a
        resumed run goes on after an old terminal event). A dropped connection is resumed
        from the last ``seq`` received, so no event is lost or repeated.
        """
        return self._follow(run_id, after_seq, None)

    def _follow(self, run_id: str, after_seq: int, deadline: float | None) -> Iterator[Event]:
        """:meth:`stream_events`, giving up with ``TimeoutError`` at ``deadline``."""
        last = after_seq
        failures = 0
        while True:
            path, options = t.events_request(run_id, last, t.remaining(deadline))
            try:
                with httpx_sse.connect_sse(self._http, "GET", path, **options) as source:
                    if source.response.status_code >= 400:
                        source.response.read()
                        raise t.error_from_response(source.response)
                    for sse in source.iter_sse():
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
                time.sleep(t.reconnect_delay(failures))
                continue
            # A clean close: the run is over, unless a restart or a proxy cut the stream.
            if self.get_run(run_id).is_terminal:
                return
            t.check_deadline(run_id, deadline)
            failures += 1
            time.sleep(t.reconnect_delay(failures))

    def wait(self, run_id: str, timeout: float | None = None) -> RunDetail:
        """Wait until the run is terminal and return it; ``TimeoutError`` after ``timeout``.

        It follows the run's event stream (no polling): it returns once the server closed
        the stream of a terminal run.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        run = self.get_run(run_id)
        if run.is_terminal:
            return run
        for _event in self._follow(run_id, 0, deadline):
            t.check_deadline(run_id, deadline)
        return self.get_run(run_id)

    def paginate(self, list_method: Callable[..., Page[T]], /, **kwargs: Any) -> Iterator[T]:
        """Yield every item of a listing, page after page.

        Example: ``for wf in fp.paginate(fp.list_workflows, namespace="team-a"): ...``
        (any ``list_*`` method that takes a ``cursor``).
        """
        cursor = kwargs.pop("cursor", None)
        while True:
            page = list_method(cursor=cursor, **kwargs)
            yield from page.items
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    # --- schedules ----------------------------------------------------------------------

    def create_schedule(
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
        return self._send(t.create_schedule(body))

    def list_schedules(
        self,
        *,
        namespace: str | list[str] | None = None,
        workflow_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> SchedulePage:
        """Return a page of schedules."""
        return self._send(t.list_schedules(namespace, workflow_id, limit, cursor))

    def get_schedule(self, schedule_id: str) -> Schedule:
        """Return a schedule with its recent fires."""
        return self._send(t.get_schedule(schedule_id))

    def update_schedule(self, schedule_id: str, **changes: Any) -> Schedule:
        """Change a schedule's fields (``cron=``, ``enabled=``, ``input=``, ...)."""
        return self._send(t.update_schedule(schedule_id, t.schedule_body(**changes)))

    def delete_schedule(self, schedule_id: str) -> None:
        """Delete a schedule."""
        self._send(t.delete_schedule(schedule_id))

    def trigger_schedule(self, schedule_id: str, *, input: dict[str, Any] | None = None) -> str:
        """Start a run of the schedule's workflow now; return the run id."""
        return self._send(t.trigger_schedule(schedule_id, input))

    # --- triggers -----------------------------------------------------------------------

    def create_trigger(
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
        return self._send(t.create_trigger(body))

    def list_triggers(
        self,
        *,
        namespace: str | list[str] | None = None,
        workflow_id: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> TriggerPage:
        """Return a page of triggers."""
        return self._send(t.list_triggers(namespace, workflow_id, limit, cursor))

    def get_trigger(self, trigger_id: str) -> Trigger:
        """Return a trigger."""
        return self._send(t.get_trigger(trigger_id))

    def update_trigger(self, trigger_id: str, **fields: Any) -> Trigger:
        """Replace a trigger's fields (``PUT``: what is not given takes its default)."""
        return self._send(t.update_trigger(trigger_id, t.trigger_body(**fields)))

    def delete_trigger(self, trigger_id: str) -> None:
        """Delete a trigger."""
        self._send(t.delete_trigger(trigger_id))

    # --- credentials --------------------------------------------------------------------

    def create_credential(
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
        return self._send(t.create_credential(body))

    def list_credentials(
        self,
        *,
        namespace: str | list[str] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> CredentialPage:
        """Return a page of credentials (names and metadata only)."""
        return self._send(t.list_credentials(namespace, limit, cursor))

    def get_credential(self, credential_id: str) -> Credential:
        """Return a credential's metadata."""
        return self._send(t.get_credential(credential_id))

    def update_credential(
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
        return self._send(t.update_credential(credential_id, body, if_match))

    def delete_credential(self, credential_id: str, *, if_match: int | str | None = None) -> None:
        """Delete a credential."""
        self._send(t.delete_credential(credential_id, if_match))

    # --- KV -----------------------------------------------------------------------------

    def list_kv(
        self,
        namespace: str,
        *,
        prefix: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> KVPage:
        """Return a page of a namespace's live entries, by key."""
        return self._send(t.list_kv(namespace, prefix, limit, cursor))

    def get_kv(self, namespace: str, key: str) -> KVEntry:
        """Return an entry (``NotFound`` when absent or expired)."""
        return self._send(t.get_kv(namespace, key))

    def put_kv(
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
        return self._send(t.put_kv(namespace, key, value, ttl_seconds, if_match, only_if_absent))

    def delete_kv(self, namespace: str, key: str, *, if_match: int | str | None = None) -> None:
        """Delete an entry."""
        self._send(t.delete_kv(namespace, key, if_match))

    # --- connectors ---------------------------------------------------------------------

    def list_connectors(
        self, *, detail: str = "summary", category: str | None = None, q: str | None = None
    ) -> ConnectorPage:
        """Return the connectors of the catalogue (``detail="full"`` for their manifests)."""
        return self._send(t.list_connectors(detail, category, q))

    def get_connector(self, node_type: str) -> Connector:
        """Return one connector's full manifest."""
        return self._send(t.get_connector(node_type))

    def list_connector_categories(self) -> list[ConnectorCategory]:
        """Return the catalogue's categories with their connector counts."""
        return self._send(t.list_connector_categories())
