"""The MCP tools: each a thin translation of its arguments into one :class:`Backend` call.

A tool answers with its result as JSON text and as ``structuredContent``. A refusal or a
failure is an MCP tool error (``isError: true``) whose JSON names Flowplane's stable error
``code``, its ``message`` and HTTP-equivalent ``status`` (``forbidden``, ``RUN_NOT_FOUND``,
``workflow_invalid``, ...): the same codes as the HTTP API's problem documents.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field, WithJsonSchema

from flowplane.client.models import RunStatus
from flowplane.errors import FlowplaneError
from flowplane.mcp.backend import Backend, BackendProvider, Json
from flowplane.model.edits import OPS

__all__ = ["MAX_WAIT_SECONDS", "TOOL_NAMES", "error_result", "register_tools", "tool_result"]

MAX_WAIT_SECONDS = 120.0
"""The longest one ``wait_for_run`` call waits (call it again to wait longer): below the
request timeouts of common MCP clients."""

READ = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITE = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
STEER = ToolAnnotations(read_only_hint=False, destructive_hint=True, open_world_hint=True)

EDIT_OP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["op"],
    "properties": {
        "op": {"type": "string", "enum": list(OPS)},
        "node_id": {"type": "string", "description": "The node the op is about."},
        "type": {"type": "string", "description": "add/edit: the connector type."},
        "params": {
            "type": "object",
            "description": "add: the node's params; edit: merged in (a null value removes).",
        },
        "needs": {"type": "array", "items": {"type": "string"}},
        "when": {"type": "string", "description": "A template; the node runs when true."},
        "target_node_id": {"type": "string", "description": "connect/disconnect: the target."},
        "new_id": {"type": "string", "description": "rename: the new node id."},
        "field": {"type": "string", "description": "set: a workflow-level field."},
        "value": {"description": "set: its value (null removes it)."},
    },
    "additionalProperties": True,
}

WorkflowRef = Annotated[str, Field(description="The workflow id (or its name).", max_length=255)]
RunId = Annotated[str, Field(description="The run id.", max_length=128)]
NodeId = Annotated[str, Field(description="The node id in the workflow.", max_length=128)]
Document = Annotated[
    dict[str, Any],
    Field(
        description="A workflow document: {name, namespace?, description?, inputs?, nodes: "
        "[{id, type, params?, needs?, when?, foreach?, retry?, timeout?}]}."
    ),
]
Namespaces = Annotated[
    list[str] | None, Field(description="Only these namespaces (default: all you may see).")
]
Limit = Annotated[int, Field(ge=1, le=500, description="Page size.")]
Cursor = Annotated[str | None, Field(description="nextCursor of the previous page.")]
Iteration = Annotated[int, Field(ge=0, description="The foreach iteration (0 for a plain node).")]
Note = Annotated[
    str | None, Field(description="A note recorded with the decision.", max_length=2000)
]
RunInput = Annotated[
    Any, Field(description="The run input (checked against the workflow's inputs).")
]

Call = Callable[[Backend], Awaitable[Any]]


def tool_result(data: Any) -> CallToolResult:
    """A successful tool answer: the JSON as text and as structured content."""
    structured = data if isinstance(data, dict) else {"items": data}
    text = json.dumps(structured, default=str, ensure_ascii=False)
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=structured
    )


def error_result(exc: FlowplaneError) -> CallToolResult:
    """A tool error carrying Flowplane's stable ``code``, ``message`` and ``status``."""
    error = {**exc.extra, "code": exc.code, "message": exc.detail, "status": exc.status}
    line = json.dumps({"error": error}, default=str, ensure_ascii=False)
    body = json.loads(line)  # what the extension members hold, as JSON
    text = f"{exc.code}: {exc.detail}\n{line}"
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=body, is_error=True
    )


def _unreachable(exc: Exception) -> CallToolResult:
    """The tool error of a remote server that cannot be reached (stdio with ``--server``)."""
    message = f"the Flowplane server cannot be reached: {type(exc).__name__}"
    body = {"error": {"code": "server_unreachable", "message": message, "status": 503}}
    text = f"server_unreachable: {message}\n{json.dumps(body)}"
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=body, is_error=True
    )


async def answer(provider: BackendProvider, ctx: Context, call: Call) -> CallToolResult:
    """Run ``call`` on the request's backend; a Flowplane error becomes a tool error."""
    try:
        return tool_result(await call(provider(ctx)))
    except FlowplaneError as exc:
        return error_result(exc)
    except OSError as exc:  # the remote server is down (connection refused, DNS)
        return _unreachable(exc)
    except Exception as exc:
        if type(exc).__module__.startswith("httpx"):
            return _unreachable(exc)
        raise


def _waiting_nodes(detail: Json) -> list[Json]:
    """The node runs of a run detail that wait for an approval, a signal or a timer."""
    return [
        {"nodeId": n.get("nodeId"), "iteration": n.get("iteration", 0), "state": n.get("state")}
        for n in detail.get("nodes") or []
        if str(n.get("state", "")).startswith("waiting-")
    ]


def register_tools(server: MCPServer[Any], provider: BackendProvider) -> None:  # noqa: C901
    """Add every Flowplane tool to ``server``; each asks ``provider`` for its backend."""

    def tool(annotations: ToolAnnotations) -> Callable[[Any], Any]:
        def add(fn: Any) -> Any:
            server.add_tool(fn, annotations=annotations, structured_output=False)
            return fn

        return add

    # --- connectors ----------------------------------------------------------------------

    @tool(READ)
    async def search_connectors(
        ctx: Context,
        query: Annotated[
            str | None,
            Field(
                description="Words that must all appear in the type, name or description.",
                max_length=200,
            ),
        ] = None,
        category: Annotated[
            str | None, Field(description="Only this category.", max_length=64)
        ] = None,
        detail: Annotated[
            Literal["summary", "full"],
            Field(description="summary: type, name, category, description; full: with schemas."),
        ] = "summary",
    ) -> CallToolResult:
        """Search the connector catalogue (the node types a workflow can use). Start here:
        the summary of every connector is small enough to keep in context; then call
        describe_connector for the params schema of the types you use."""
        return await answer(provider, ctx, lambda b: b.search_connectors(query, category, detail))

    @tool(READ)
    async def describe_connector(
        ctx: Context,
        type: Annotated[
            str, Field(description="A connector type, e.g. http.request.", max_length=128)
        ],
    ) -> CallToolResult:
        """One connector's full manifest: params (inputSchema), output (outputSchema), the
        secrets it uses and examples. An unknown type is connector_not_found with close
        matches."""
        return await answer(provider, ctx, lambda b: b.describe_connector(type))

    # --- workflows -----------------------------------------------------------------------

    @tool(READ)
    async def list_workflows(
        ctx: Context, namespace: Namespaces = None, limit: Limit = 50, cursor: Cursor = None
    ) -> CallToolResult:
        """List stored workflows (id, name, namespace, version, document), a page at a time."""
        return await answer(provider, ctx, lambda b: b.list_workflows(namespace, limit, cursor))

    @tool(READ)
    async def get_workflow(
        ctx: Context,
        workflow: WorkflowRef,
        namespace: Annotated[
            str | None, Field(description="The namespace of a workflow given by name.")
        ] = None,
    ) -> CallToolResult:
        """Get a stored workflow (by id, or by name) with its current document and version."""
        return await answer(provider, ctx, lambda b: b.get_workflow(workflow, namespace))

    @tool(WRITE)
    async def create_workflow(
        ctx: Context,
        document: Annotated[
            dict[str, Any],
            Field(
                description="The workflow document; {} (or just {name}) creates an empty "
                "draft (a name is made up when none is given) to fill in with edit_workflow; "
                "running a draft without nodes is refused with workflow_empty."
            ),
        ],
    ) -> CallToolResult:
        """Store a new workflow (version 1); needs the editor role. Returns its id: edit it
        with edit_workflow, run it with start_run."""
        return await answer(provider, ctx, lambda b: b.create_workflow(document))

    @tool(READ)
    async def validate_workflow(ctx: Context, document: Document) -> CallToolResult:
        """Check a workflow document without storing it: valid, and every problem found
        (node_id, field, value, error, code)."""
        return await answer(provider, ctx, lambda b: b.validate_workflow(document))

    @tool(WRITE)
    async def edit_workflow(
        ctx: Context,
        workflow_id: Annotated[str, Field(description="The workflow id.", max_length=128)],
        ops: Annotated[
            list[dict[str, Any]],
            Field(min_length=1, max_length=1000),
            WithJsonSchema(
                {"type": "array", "items": EDIT_OP_SCHEMA, "minItems": 1, "maxItems": 1000}
            ),
        ],
        expected_version: Annotated[
            int | None,
            Field(ge=1, description="Fail with version_mismatch unless the workflow is at it."),
        ] = None,
    ) -> CallToolResult:
        """Apply a batch of EditOps to a stored workflow; ops that cannot apply are skipped,
        never the whole batch. Ops: add {node_id, type, params?, needs?, when?}; edit
        {node_id, params? (merged), type?, ...}; delete {node_id}; connect/disconnect
        {node_id, target_node_id}; rename {node_id, new_id}; set {field, value}. The answer:
        ok, version, saved, workflow, skipped_items (index, op, node_id, reason_code,
        reason, details), validation_errors (node_id, field, value, error, code), applied,
        and a summary saying what to fix next. Needs the editor role."""
        return await answer(
            provider, ctx, lambda b: b.apply_edits(workflow_id, ops, expected_version)
        )

    # --- runs ----------------------------------------------------------------------------

    @tool(STEER)
    async def start_run(
        ctx: Context,
        workflow_id: Annotated[str, Field(description="The workflow id.", max_length=128)],
        input: RunInput = None,
        idempotency_key: Annotated[
            str | None,
            Field(min_length=1, max_length=255, description="The same key returns the same run."),
        ] = None,
    ) -> CallToolResult:
        """Start a run of a stored workflow's current version; needs the executor role.
        Then call wait_for_run."""
        return await answer(
            provider, ctx, lambda b: b.start_run(workflow_id, input, idempotency_key)
        )

    @tool(READ)
    async def list_runs(
        ctx: Context,
        status: Annotated[
            list[RunStatus] | None, Field(description="Only runs in these statuses.")
        ] = None,
        workflow: Annotated[
            str | None, Field(description="Only runs of this workflow (id or name).")
        ] = None,
        limit: Limit = 20,
        cursor: Cursor = None,
    ) -> CallToolResult:
        """List runs, newest first."""
        statuses = None if status is None else [str(s) for s in status]
        return await answer(provider, ctx, lambda b: b.list_runs(statuses, workflow, limit, cursor))

    @tool(READ)
    async def describe_run(ctx: Context, run_id: RunId) -> CallToolResult:
        """A run's status, error, input, output, per-status summary and every node run
        (status, output, error, attempts)."""
        return await answer(provider, ctx, lambda b: b.describe_run(run_id))

    @tool(READ)
    async def get_node_output(
        ctx: Context, run_id: RunId, node_id: NodeId, iteration: Iteration | None = None
    ) -> CallToolResult:
        """One node's runs in a run: status, output, error and attempts (every iteration of
        a foreach node unless one is given)."""

        async def call(b: Backend) -> Json:
            detail = await b.describe_run(run_id)
            nodes = [
                n
                for n in detail.get("nodes") or []
                if n.get("nodeId") == node_id
                and (iteration is None or n.get("iteration") == iteration)
            ]
            return {
                "runId": run_id,
                "nodeId": node_id,
                "status": detail.get("status"),
                "nodes": nodes,
            }

        return await answer(provider, ctx, call)

    @tool(READ)
    async def get_run_logs(
        ctx: Context,
        run_id: RunId,
        node_id: Annotated[
            str | None, Field(description="Only this node's lines (of the page read).")
        ] = None,
        after: Annotated[str | None, Field(description="nextCursor of the previous page.")] = None,
        limit: Annotated[int, Field(ge=1, le=1000)] = 200,
    ) -> CallToolResult:
        """The run's log lines and finished attempts in time order, a page at a time."""

        async def call(b: Backend) -> Json:
            page = await b.run_logs(run_id, after, limit)
            if node_id is not None:
                page["items"] = [i for i in page.get("items", []) if i.get("nodeId") == node_id]
            return page

        return await answer(provider, ctx, call)

    @tool(READ)
    async def wait_for_run(
        ctx: Context,
        run_id: RunId,
        timeout_seconds: Annotated[
            float, Field(gt=0, le=MAX_WAIT_SECONDS, description="How long to wait at most.")
        ] = 30.0,
    ) -> CallToolResult:
        """Wait until the run is finished, failed, cancelled or timed out, or needs someone
        (waiting-approval: call approve or deny; waiting-event: call send_signal). Returns
        reached=false when the time is up (call again), the run's detail and the waiting
        nodes. The server is never blocked while it waits."""

        async def call(b: Backend) -> Json:
            detail, reached = await b.wait_run(run_id, timeout_seconds)
            return {
                "reached": reached,
                "status": detail.get("status"),
                "waitingNodes": _waiting_nodes(detail),
                "run": detail,
            }

        return await answer(provider, ctx, call)

    @tool(STEER)
    async def approve(
        ctx: Context, run_id: RunId, node_id: NodeId, iteration: Iteration = 0, note: Note = None
    ) -> CallToolResult:
        """Approve a node waiting for approval (run status waiting-approval); executor."""
        return await answer(
            provider, ctx, lambda b: b.decide(run_id, node_id, True, iteration, note)
        )

    @tool(STEER)
    async def deny(
        ctx: Context, run_id: RunId, node_id: NodeId, iteration: Iteration = 0, note: Note = None
    ) -> CallToolResult:
        """Deny a node waiting for approval (the node fails with approval_denied); executor."""
        return await answer(
            provider, ctx, lambda b: b.decide(run_id, node_id, False, iteration, note)
        )

    @tool(STEER)
    async def send_signal(
        ctx: Context,
        run_id: RunId,
        name: Annotated[
            str, Field(description="The signal name a node waits for.", max_length=128)
        ],
        payload: Annotated[
            Any, Field(description="The signal's payload (the node's output).")
        ] = None,
        correlation_id: Annotated[str | None, Field(max_length=255)] = None,
    ) -> CallToolResult:
        """Send a signal to a run (delivered to a node waiting for it, else kept); executor."""
        return await answer(
            provider, ctx, lambda b: b.signal(run_id, name, payload, correlation_id)
        )

    @tool(STEER)
    async def cancel_run(ctx: Context, run_id: RunId) -> CallToolResult:
        """Cancel an active run (RUN_NOT_ACTIVE when it already ended); executor."""
        return await answer(provider, ctx, lambda b: b.cancel(run_id))

    @tool(STEER)
    async def resume_run(ctx: Context, run_id: RunId) -> CallToolResult:
        """Continue a failed, cancelled or timed-out run, reusing the outputs of the nodes
        that finished; executor."""
        return await answer(provider, ctx, lambda b: b.resume(run_id))

    @tool(STEER)
    async def retry_run(
        ctx: Context,
        run_id: RunId,
        use_latest_version: Annotated[
            bool, Field(description="Run the workflow's latest version (after a repair).")
        ] = False,
    ) -> CallToolResult:
        """Start a new run with the same input; executor."""
        return await answer(provider, ctx, lambda b: b.retry(run_id, use_latest_version))

    @tool(STEER)
    async def fork_run(
        ctx: Context,
        run_id: RunId,
        from_node: Annotated[str, Field(description="Re-run this node and everything downstream.")],
        input: RunInput = None,
        use_latest_version: Annotated[
            bool, Field(description="Use the workflow's latest version (changed nodes re-run).")
        ] = False,
    ) -> CallToolResult:
        """Start a new run that reuses the original's outputs upstream of from_node; executor."""
        return await answer(
            provider, ctx, lambda b: b.fork(run_id, from_node, input, use_latest_version)
        )

    @tool(READ)
    async def diff_runs(
        ctx: Context,
        run_id: RunId,
        other_run_id: Annotated[str, Field(description="The run to compare with.", max_length=128)],
    ) -> CallToolResult:
        """Compare two runs (e.g. an original and its fork) node by node: status and output."""
        return await answer(provider, ctx, lambda b: b.diff(run_id, other_run_id))

    @tool(READ)
    async def list_approvals(
        ctx: Context, namespace: Namespaces = None, limit: Limit = 100
    ) -> CallToolResult:
        """Approvals waiting for a decision across runs, longest wait first."""
        return await answer(provider, ctx, lambda b: b.list_approvals(namespace, limit))


TOOL_NAMES = (
    "search_connectors",
    "describe_connector",
    "list_workflows",
    "get_workflow",
    "create_workflow",
    "validate_workflow",
    "edit_workflow",
    "start_run",
    "list_runs",
    "describe_run",
    "get_node_output",
    "get_run_logs",
    "wait_for_run",
    "approve",
    "deny",
    "send_signal",
    "cancel_run",
    "resume_run",
    "retry_run",
    "fork_run",
    "diff_runs",
    "list_approvals",
)
"""Every tool, in the order they are listed."""
