"""Node params: rendered from templates, then checked against the connector's input schema.

Checking is the costly part: the validator of each schema is built once, and params without
templates that passed once are not checked again (they render to the same values).
"""

from __future__ import annotations

from typing import Any

import jsonschema

from flowplane.errors import ConnectorError
from flowplane.model import templates
from flowplane.model.document import Node

CHECKER_CACHE_SIZE = 512


def resolve_params(node: Node, schema: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """Render ``node``'s params in the template ``context``; check them against ``schema``.

    Params the schema marks ``x-raw`` are passed through unrendered.

    Raises:
        ConnectorError: the rendered params do not match ``schema`` (not retryable).
        TemplateError: a template does not render.
    """
    checker = _checker(schema)
    rendered = (
        {
            k: (v if k in checker.raw else templates.render_value(v, context))
            for k, v in node.params.items()
        }
        if node.params
        else {}
    )
    if not checker.known_valid(node.params):
        _check_params(node.id, checker.validator, rendered)
        checker.passed(node.params)
    return rendered


class _ParamsChecker:
    """What checking params against one connector input schema needs, built once."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.validator = jsonschema.Draft202012Validator(schema)
        # Params marked ``x-raw`` are passed through without template rendering.
        self.raw = {
            k
            for k, v in (schema.get("properties") or {}).items()
            if isinstance(v, dict) and v.get("x-raw")
        }
        # Node params without templates that passed: they render to the same values
        # every time, so they pass again (keyed by the params object, held here).
        self._static_valid: dict[int, dict[str, Any]] = {}

    def known_valid(self, params: dict[str, Any]) -> bool:
        return self._static_valid.get(id(params)) is params

    def passed(self, params: dict[str, Any]) -> None:
        if next(templates.iter_template_strings(params), None) is None:
            if len(self._static_valid) >= CHECKER_CACHE_SIZE:
                self._static_valid.clear()
            self._static_valid[id(params)] = params


_checkers: dict[int, _ParamsChecker] = {}


def _checker(schema: dict[str, Any]) -> _ParamsChecker:
    """The checker of ``schema`` (cached per schema object; manifests are immutable)."""
    checker = _checkers.get(id(schema))
    if checker is None or checker.schema is not schema:
        if len(_checkers) >= CHECKER_CACHE_SIZE:
            _checkers.clear()
        checker = _checkers[id(schema)] = _ParamsChecker(schema)
    return checker


def _check_params(
    node_id: str, validator: jsonschema.protocols.Validator, params: dict[str, Any]
) -> None:
    errors = sorted(validator.iter_errors(params), key=lambda e: list(e.absolute_path))
    if errors:
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e.absolute_path) or '(params)'}: {e.message}"
            for e in errors[:5]
        )
        raise ConnectorError(
            f"params of node {node_id!r} are invalid after rendering: {detail}", retryable=False
        )
