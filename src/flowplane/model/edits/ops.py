"""The EditOps vocabulary: the op names, the fields they take, and the op-shape check."""

from __future__ import annotations

from typing import Any

from flowplane.model.edits.results import Skip

__all__ = ["NODE_FIELDS", "OPS", "SET_FIELDS", "check_shape"]

OPS = ("add", "edit", "delete", "connect", "disconnect", "rename", "set")
NODE_FIELDS = (
    "name",
    "description",
    "params",
    "needs",
    "when",
    "foreach",
    "max_parallel",
    "retry",
    "timeout",
    "trigger_rule",
    "on_error",
)
SET_FIELDS = ("name", "description", "inputs", "timeout", "triggers")

_REQUIRED: dict[str, tuple[str, ...]] = {
    "add": ("node_id", "type"),
    "edit": ("node_id",),
    "delete": ("node_id",),
    "connect": ("node_id", "target_node_id"),
    "disconnect": ("node_id", "target_node_id"),
    "rename": ("node_id", "new_id"),
    "set": ("field", "value"),
}
_OPTIONAL: dict[str, tuple[str, ...]] = {
    "add": NODE_FIELDS,
    "edit": ("type", *NODE_FIELDS),
}
_STRING_KEYS = ("node_id", "target_node_id", "new_id", "field")


def check_shape(op: Any) -> tuple[str, dict[str, Any]]:
    """Return ``(name, op)`` or raise ``Skip("invalid_op")``."""
    if not isinstance(op, dict):
        raise Skip("invalid_op", f"an op must be an object, not {type(op).__name__}")
    name = op.get("op")
    if name not in _REQUIRED:
        raise Skip(
            "invalid_op",
            f"unknown op {name!r}; ops are: {', '.join(OPS)}",
            allowed_ops=list(OPS),
        )
    required = _REQUIRED[name]
    allowed = {"op", *required, *_OPTIONAL.get(name, ())}
    missing = [k for k in required if k not in op]
    if missing:
        raise Skip(
            "invalid_op",
            f"op {name!r} needs {', '.join(missing)}",
            missing=missing,
            required=list(required),
        )
    unknown = sorted(k for k in op if k not in allowed)
    if unknown:
        raise Skip(
            "invalid_op",
            f"unknown key(s) {', '.join(unknown)} for op {name!r}; allowed: "
            f"{', '.join(sorted(allowed - {'op'}))}",
            unknown=unknown,
        )
    for key in _STRING_KEYS:
        if key in op and not (isinstance(op[key], str) and op[key]):
            raise Skip("invalid_op", f"{key} must be a non-empty string")
    return name, op
