"""What an EditOps batch reports: the applied and skipped ops, and the overall result.

:class:`Skip` is the signal an op handler raises to skip its op; :func:`apply_ops` turns it
into a :class:`SkippedItem` with one of :data:`SKIP_CODES`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

__all__ = ["SKIP_CODES", "AppliedItem", "PatchResult", "Skip", "SkipCode", "SkippedItem"]

SkipCode = Literal[
    "node_already_exists",
    "node_type_not_registered",
    "node_not_found",
    "invalid_edge_source",
    "invalid_edge_target",
    "duplicate_connection",
    "cycle_introduced",
    "edge_not_found",
    "invalid_op",
]
"""Why an op was skipped (the wire model of the EditOps route uses it too)."""
SKIP_CODES: tuple[str, ...] = get_args(SkipCode)


@dataclass(frozen=True)
class SkippedItem:
    """An op that was not applied.

    Attributes:
        index: the op's position in the batch (0-based).
        op: the op name (``None`` when the op had none).
        node_id: the node the op was about, when it named one.
        reason_code: one of :data:`SKIP_CODES`.
        reason: a sentence saying what is wrong and what to do instead.
        details: machine-readable specifics (close matches, existing ids, cycle path...).
    """

    index: int
    op: str | None
    node_id: str | None
    reason_code: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the item as a JSON-safe mapping."""
        return asdict(self)


@dataclass(frozen=True)
class AppliedItem:
    """An op that was applied, with a short description of its effect."""

    index: int
    op: str
    node_id: str | None
    description: str

    def to_dict(self) -> dict[str, Any]:
        """Return the item as a JSON-safe mapping."""
        return asdict(self)


@dataclass
class PatchResult:
    """The outcome of :func:`apply_ops`.

    Attributes:
        workflow: the edited document (a new dict; the input is not modified).
        applied: the ops that applied, in order.
        skipped_items: the ops that did not, in order.
        validation_errors: ``{node_id, node_type, field, value, error, code}`` for each
            problem of the edited document.
        summary: one paragraph for a person or an LLM.
        changed: whether the document differs from the input.
        parsed: whether the edited document is a structurally valid workflow (a document
            that is not cannot be saved).
    """

    workflow: dict[str, Any]
    applied: list[AppliedItem]
    skipped_items: list[SkippedItem]
    validation_errors: list[dict[str, Any]]
    summary: str
    changed: bool
    parsed: bool

    @property
    def ok(self) -> bool:
        """Nothing was skipped and nothing is invalid."""
        return not self.skipped_items and not self.validation_errors


class Skip(Exception):
    """Raised by an op handler: the op is skipped with this code and reason."""

    def __init__(self, code: str, reason: str, **details: Any) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.details = details
