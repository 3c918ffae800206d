"""PatchMixin: applying an EditOps batch to a stored workflow and saving the result."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from flowplane.errors import VersionMismatch
from flowplane.model.document import Workflow
from flowplane.model.edits import apply_ops
from flowplane.services.caller import Caller
from flowplane.services.workflows import versions
from flowplane.services.workflows.documents import canonical_document
from flowplane.services.workflows.reads import WorkflowReader
from flowplane.services.workflows.records import ExpectedVersion, PatchOutcome

__all__ = ["PATCH_ATTEMPTS", "PatchMixin"]

PATCH_ATTEMPTS = 3


class PatchMixin(WorkflowReader):
    """Apply EditOps batches (see :mod:`flowplane.model.edits`)."""

    async def patch(
        self,
        caller: Caller,
        workflow_id: str,
        ops: list[Any],
        *,
        expected_version: ExpectedVersion = None,
    ) -> PatchOutcome:
        """Apply an EditOps batch; save a new version when something changed.

        The batch is applied to the current version outside the write transaction and
        saved with a compare-and-swap. Without ``expected_version`` a concurrent change
        makes the batch re-apply to the newer version (a few times); with it, the caller
        gets :class:`VersionMismatch`. A result that is not structurally a workflow is not
        saved; validation errors do not stop the save (a workflow without nodes is a
        draft), so an agent can repair a workflow over several batches.
        """
        caller.require("editor")
        who = caller.actor
        for attempt in range(1, PATCH_ATTEMPTS + 1):
            current = await self.get(caller, workflow_id)
            if expected_version is not None:
                versions.check_version(current, expected_version)
            result = apply_ops(current.document, ops, self.registry)
            if result.parsed:
                doc = canonical_document(Workflow.model_validate(result.workflow))
                result = dataclasses.replace(result, workflow=doc, changed=doc != current.document)
            if not (result.changed and result.parsed):
                return PatchOutcome(result=result, workflow=current, saved=False)
            message = "edit: " + "; ".join(a.description for a in result.applied)
            try:
                saved = await self.store.transact(
                    functools.partial(
                        versions.save,
                        current=current,
                        doc=result.workflow,
                        by=caller.name,
                        message=message,
                        actor=who,
                        action="workflow.patch",
                    )
                )
            except VersionMismatch:
                if expected_version is not None or attempt == PATCH_ATTEMPTS:
                    raise
                continue
            return PatchOutcome(result=result, workflow=saved, saved=True)
        raise AssertionError("unreachable")  # pragma: no cover
