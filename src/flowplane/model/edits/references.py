"""Rewriting ``nodes.<id>`` references inside templates when a node is renamed."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["rewrite_references"]

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TEMPLATE_SPAN = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)


def _ref(node_id: str) -> str:
    return f"nodes.{node_id}" if _IDENTIFIER.match(node_id) else f"nodes[{node_id!r}]"


def _rewrite_expression(text: str, old: str, new: str) -> tuple[str, int]:
    count = 0
    replacement = _ref(new)
    if _IDENTIFIER.match(old):
        dotted = re.compile(rf"(?<![\w.])nodes\s*\.\s*{re.escape(old)}(?!\w)")
        text, n = dotted.subn(lambda _m: replacement, text)
        count += n
    indexed = re.compile(rf"(?<![\w.])nodes\s*\[\s*(['\"]){re.escape(old)}\1\s*\]")
    text, n = indexed.subn(lambda m: f"nodes[{m.group(1)}{new}{m.group(1)}]", text)
    return text, count + n


def _rewrite_string(text: str, old: str, new: str, *, bare: bool) -> tuple[str, int]:
    if bare:
        return _rewrite_expression(text, old, new)
    total = 0

    def span(match: re.Match[str]) -> str:
        nonlocal total
        rewritten, n = _rewrite_expression(match.group(0), old, new)
        total += n
        return rewritten

    return _TEMPLATE_SPAN.sub(span, text), total


def rewrite_references(value: Any, old: str, new: str, *, bare: bool = False) -> tuple[Any, int]:
    """Rewrite ``nodes.<old>`` / ``nodes['<old>']`` to name ``new`` inside templates.

    Args:
        value: a string or a JSON structure (params, ``when``, ``foreach``); only text inside
            ``{{ }}`` and ``{% %}`` is touched.
        old: the node id being renamed.
        new: its new id (written as ``nodes['new']`` when it is not an identifier).
        bare: read a string without template markers as a bare expression (``when``).

    Returns:
        The rewritten value (a new structure) and the number of references rewritten.
    """
    if isinstance(value, str):
        if "{" not in value and not bare:
            return value, 0
        return _rewrite_string(value, old, new, bare=bare and "{" not in value)
    if isinstance(value, dict):
        total = 0
        out: dict[str, Any] = {}
        for key, item in value.items():
            out[key], n = rewrite_references(item, old, new)
            total += n
        return out, total
    if isinstance(value, list):
        total = 0
        items: list[Any] = []
        for item in value:
            rewritten, n = rewrite_references(item, old, new)
            items.append(rewritten)
            total += n
        return items, total
    return value, 0
