"""Flow connectors: ``flow.run`` starts a sub-workflow and waits for its result."""

from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from flowplane.connectors.base import NodeContext, StartChildRun, connector
from flowplane.errors import ConnectorError, FlowplaneError

MAX_DOCUMENT_BYTES = 1024 * 1024


def resolve_under_root(root: Path, relative: str) -> Path:
    """Return ``root / relative``, refusing anything that could leave ``root``.

    Args:
        root: the folder workflow files live in (``settings.root``).
        relative: a relative path such as ``flows/child.yaml``.

    Raises:
        ConnectorError: the path is absolute, climbs out with ``..``, or resolves (through
            a symbolic link) outside ``root`` (``retryable=False``).
    """
    if (
        not relative
        or "\x00" in relative
        or PurePosixPath(relative).is_absolute()
        or PureWindowsPath(relative).is_absolute()
        or PureWindowsPath(relative).drive
    ):
        raise ConnectorError(
            f"path must be relative to the workflow root: {relative!r}", retryable=False
        )
    if ".." in PurePosixPath(relative.replace("\\", "/")).parts:
        raise ConnectorError(f"path must not contain '..': {relative!r}", retryable=False)
    base = root.resolve()
    target = (base / relative).resolve()
    if not target.is_relative_to(base):
        raise ConnectorError(f"path leaves the workflow root: {relative!r}", retryable=False)
    return target


def _load_file(ctx: NodeContext, relative: str) -> dict[str, Any]:
    # Imported here: the YAML loader (and PyYAML) is only needed for path-based children.
    from flowplane.model.yaml import load_document

    root = Path(getattr(ctx.settings, "root", None) or ".")
    target = resolve_under_root(root, relative)
    if not target.is_file():
        raise ConnectorError(f"workflow file not found: {relative!r}", retryable=False)
    if target.stat().st_size > MAX_DOCUMENT_BYTES:
        raise ConnectorError(f"workflow file is too large: {relative!r}", retryable=False)
    text = target.read_text(encoding="utf-8")
    try:
        loaded: Any = load_document(text)
    except FlowplaneError as exc:
        raise ConnectorError(
            f"cannot load {relative!r}: {exc.detail}", retryable=False, cause=exc.code
        ) from exc
    if hasattr(loaded, "model_dump"):
        loaded = loaded.model_dump(mode="json", exclude_none=True)
    if not isinstance(loaded, dict):
        raise ConnectorError(f"{relative!r} is not a workflow document", retryable=False)
    return loaded


@connector(
    "flow.run",
    name="Run sub-workflow",
    category="flow",
    description=(
        "Run another workflow (stored by name, a file under the root folder, or an inline "
        "document) as a child run and wait for it; its output becomes this node's output."
    ),
    kind="control",
    input_schema={
        "type": "object",
        "additionalProperties": False,
        "oneOf": [
            {"required": ["workflow"]},
            {"required": ["path"]},
            {"required": ["document"]},
        ],
        "properties": {
            "workflow": {
                "type": "string",
                "minLength": 1,
                "description": "Name of a stored workflow in the run's namespace.",
            },
            "path": {
                "type": "string",
                "minLength": 1,
                "description": "A workflow file relative to the server's root folder.",
            },
            "document": {
                "type": "object",
                "description": "An inline workflow document (its templates run in the child).",
                "x-raw": True,
                # Its secrets are the child run's: checked against their policies there.
                "x-deferred": True,
            },
            "input": {
                "type": "object",
                "default": {},
                "description": "The child run's input.",
            },
        },
    },
    output_schema={"description": "The child run's output."},
    examples=[
        {"workflow": "send-invoice", "input": {"order_id": "{{ input.order_id }}"}},
        {"path": "flows/cleanup.yaml"},
        {
            "document": {
                "name": "inline-child",
                "nodes": [{"id": "hello", "type": "util.log", "params": {"message": "hi"}}],
            },
            "input": {},
        },
    ],
)
async def run(params: dict[str, Any], ctx: NodeContext) -> StartChildRun:
    """Return a child-run directive for exactly one of ``workflow``, ``path``, ``document``."""
    given = [key for key in ("workflow", "path", "document") if params.get(key) is not None]
    if len(given) != 1:
        raise ConnectorError(
            "give exactly one of workflow, path or document"
            + (f" (got {', '.join(given)})" if given else ""),
            retryable=False,
        )
    child_input = params.get("input") or {}
    if not isinstance(child_input, dict):
        raise ConnectorError("input must be an object", retryable=False)
    key = given[0]
    if key == "workflow":
        return StartChildRun(workflow=str(params["workflow"]), input=child_input)
    if key == "path":
        return StartChildRun(document=_load_file(ctx, str(params["path"])), input=child_input)
    document = params["document"]
    if not isinstance(document, dict):
        raise ConnectorError("document must be an object", retryable=False)
    return StartChildRun(document=document, input=child_input)
