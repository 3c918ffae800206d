"""Conditions ``{field, op, value}`` (filters, ``control.condition``, ``control.switch``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowplane.connectors.builtin._paths import get_path, has_path
from flowplane.connectors.builtin._regex import safe_search
from flowplane.connectors.builtin._schemas import obj, prop
from flowplane.errors import ConnectorError

CONDITION_OPS = (
    "eq",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "in",
    "not_in",
    "contains",
    "not_contains",
    "starts_with",
    "ends_with",
    "matches",
    "exists",
    "not_exists",
    "empty",
    "not_empty",
    "is_true",
    "is_false",
)

CONDITION_SCHEMA = obj(
    {
        "field": prop(
            "string",
            "Dotted path of the value to test inside the subject (empty: the subject itself).",
            default="",
        ),
        "op": prop("string", "Comparison operator.", enum=list(CONDITION_OPS)),
        "value": prop(None, "Value to compare with (unused by exists/empty/is_true ops)."),
    },
    ["op"],
    description="One test: subject[field] <op> value.",
)


def _compare(left: Any, right: Any, op: str) -> bool:
    try:
        if op == "gt":
            return bool(left > right)
        if op == "gte":
            return bool(left >= right)
        if op == "lt":
            return bool(left < right)
        return bool(left <= right)
    except TypeError:
        return False


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | dict) and len(value) == 0)


def check_condition(condition: Mapping[str, Any], subject: Any) -> bool:
    """Evaluate one condition ``{field, op, value}`` against ``subject``."""
    op = condition["op"]
    path = condition.get("field") or ""
    exists = has_path(subject, path)
    left = get_path(subject, path)
    right = condition.get("value")
    if op == "exists":
        return exists
    if op == "not_exists":
        return not exists
    if op == "eq":
        return bool(left == right)
    if op == "ne":
        return bool(left != right)
    if op in ("gt", "gte", "lt", "lte"):
        return _compare(left, right, op)
    if op in ("in", "not_in"):
        inside = isinstance(right, list | str | dict) and _safe_in(left, right)
        return inside if op == "in" else not inside
    if op in ("contains", "not_contains"):
        inside = isinstance(left, list | str | dict) and _safe_in(right, left)
        return inside if op == "contains" else not inside
    if op == "starts_with":
        return isinstance(left, str) and left.startswith(str(right))
    if op == "ends_with":
        return isinstance(left, str) and left.endswith(str(right))
    if op == "matches":
        return isinstance(left, str) and safe_search(str(right), left)
    if op == "empty":
        return _is_empty(left)
    if op == "not_empty":
        return not _is_empty(left)
    if op == "is_true":
        return left is True
    if op == "is_false":
        return left is False
    raise ConnectorError(f"unknown operator {op!r}", retryable=False)


def _safe_in(needle: Any, haystack: Any) -> bool:
    try:
        return bool(needle in haystack)
    except TypeError:
        return False


def check_all(conditions: list[Mapping[str, Any]], subject: Any, mode: str = "all") -> bool:
    """Evaluate ``conditions`` against ``subject``, combined with ``all`` or ``any``."""
    results = (check_condition(condition, subject) for condition in conditions)
    return all(results) if mode == "all" else any(results)
