"""What a surface asks for when it starts a run: :class:`LaunchRequest`, and workflow files.

``POST /v1/runs``, the RPC method ``launchRun`` and any later surface hand a
:class:`LaunchRequest` to :meth:`flowplane.services.runs.RunService.launch`, which loads the
workflow it names (a stored one by id or name, or a file under the server's root folder),
checks that the caller may see it, and starts the run (or resumes one).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowplane.errors import InvalidInput, WorkflowNotFound, WorkflowPathOutsideRoot
from flowplane.model.document import Workflow
from flowplane.model.yaml import parse_workflow

__all__ = [
    "MAX_WORKFLOW_FILE_BYTES",
    "LaunchRequest",
    "load_workflow_file",
    "resolve_workflow_path",
]

MAX_WORKFLOW_FILE_BYTES = 2 * 1024 * 1024
"""The largest workflow file ``workflowPath`` may name."""


@dataclass(frozen=True)
class LaunchRequest:
    """A request to start a run, or (``resume``) to continue one.

    Attributes:
        workflow_id: a stored workflow's id.
        workflow: a stored workflow's name (in ``namespace``).
        workflow_path: a workflow file under the server's root folder.
        namespace: the namespace of ``workflow`` (default ``default``).
        input: the run input (validated at dispatch).
        run_id: the new run's own id; with ``resume``, the run to continue.
        resume: continue the run ``run_id`` instead of starting one.
        idempotency_key: the same key returns the same run.
        request_hash: a hash of what the request asks for (a reused key with another hash
            is refused).
    """

    workflow_id: str | None = None
    workflow: str | None = None
    workflow_path: str | None = None
    namespace: str | None = None
    input: Any = None
    run_id: str | None = None
    resume: bool = False
    idempotency_key: str | None = None
    request_hash: str | None = None


def resolve_workflow_path(root: Path, workflow_path: str) -> Path:
    """Resolve ``workflow_path`` inside ``root``; refuse anything that leaves it."""
    base = root.resolve()
    candidate = (base / workflow_path).resolve()
    if candidate == base or not candidate.is_relative_to(base):
        raise WorkflowPathOutsideRoot(
            "workflowPath must be a file within the server's root directory",
            workflowPath=workflow_path,
        )
    return candidate


def load_workflow_file(root: Path, workflow_path: str) -> tuple[Workflow, str]:
    """Parse the workflow file ``workflow_path`` under ``root``; return it and its relative path.

    Raises:
        WorkflowPathOutsideRoot: the path leaves ``root``.
        WorkflowNotFound: no such file.
        InvalidInput: the file is over :data:`MAX_WORKFLOW_FILE_BYTES`.
    """
    path = resolve_workflow_path(root, workflow_path)
    if not path.is_file():
        raise WorkflowNotFound(f"no workflow file {workflow_path!r} under the server root")
    if path.stat().st_size > MAX_WORKFLOW_FILE_BYTES:
        raise InvalidInput(f"workflow file {workflow_path!r} is too large")
    text = path.read_bytes()
    relative = path.relative_to(root.resolve()).as_posix()
    return parse_workflow(text, source=relative), relative
