"""``system.python``: call an operator-registered Python function.

``system.python`` never runs code from a workflow: it calls a function the operator
registered with :func:`register_function` or listed in ``FLOWPLANE_PYTHON_FUNCTIONS``
(``name=package.module:function,...``).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import os
import re
from collections.abc import Callable
from typing import Any

from flowplane.connectors.base import NodeContext, connector
from flowplane.connectors.builtin._schemas import obj, out, prop
from flowplane.connectors.builtin._settings import settings_value
from flowplane.errors import ConnectorError

_FUNCTION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")
FUNCTIONS_ENV = "FLOWPLANE_PYTHON_FUNCTIONS"


def _bad(message: str) -> ConnectorError:
    return ConnectorError(message, retryable=False)


PythonFunction = Callable[..., Any]
_FUNCTIONS: dict[str, PythonFunction] = {}


def register_function(name: str, fn: PythonFunction) -> PythonFunction:
    """Allow workflows to call ``fn`` as ``system.python`` function ``name``.

    ``fn`` may be sync (run in a thread) or async. It receives the node's ``kwargs`` as
    keyword arguments, plus ``ctx`` (the :class:`NodeContext`) when it declares that
    parameter, and must return a JSON-serialisable value.

    Args:
        name: the name workflows use.
        fn: the function.

    Returns:
        ``fn`` (so this can be used as a decorator helper).
    """
    if not _FUNCTION_NAME.match(name):
        raise ValueError(f"invalid function name {name!r}")
    if not callable(fn):
        raise TypeError(f"{fn!r} is not callable")
    _FUNCTIONS[name] = fn
    return fn


def unregister_function(name: str) -> None:
    """Remove function ``name`` (no error when absent)."""
    _FUNCTIONS.pop(name, None)


def _configured(ctx: NodeContext) -> dict[str, str]:
    """Parse ``name=module:attr,...`` from settings (``python_functions``) and the env."""
    specs: dict[str, str] = {}
    raw_sources = [os.environ.get(FUNCTIONS_ENV, ""), settings_value(ctx, "python_functions", "")]
    for raw in raw_sources:
        if isinstance(raw, dict):
            specs.update({str(k): str(v) for k, v in raw.items()})
            continue
        for item in str(raw).split(","):
            name, sep, target = item.strip().partition("=")
            if sep and name.strip() and ":" in target:
                specs[name.strip()] = target.strip()
    return specs


def resolve_function(name: str, ctx: NodeContext) -> PythonFunction:
    """Return the function registered or configured as ``name``.

    Raises:
        ConnectorError: (not retryable) no such function, or its module fails to import.
    """
    if name in _FUNCTIONS:
        return _FUNCTIONS[name]
    target = _configured(ctx).get(name)
    if target is None:
        known = sorted(set(_FUNCTIONS) | set(_configured(ctx)))
        raise _bad(f"python function {name!r} is not registered; known: {known}")
    module_name, _, attr = target.partition(":")
    try:
        fn: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            fn = getattr(fn, part)
    except (ImportError, AttributeError) as exc:
        raise _bad(f"python function {name!r} ({target}) cannot be loaded: {exc}") from exc
    if not callable(fn):
        raise _bad(f"python function {name!r} ({target}) is not callable")
    return register_function(name, fn)


@connector(
    "system.python",
    name="Call Python function",
    category="system",
    description="Call a Python function the operator registered by name, with keyword arguments.",
    input_schema=obj(
        {
            "function": prop("string", "Registered function name.", pattern=_FUNCTION_NAME.pattern),
            "kwargs": prop("object", "Keyword arguments (JSON values)."),
            "timeout": prop(
                "number", "Time limit in seconds.", exclusiveMinimum=0, maximum=3600, default=60
            ),
        },
        ["function"],
    ),
    output_schema=out({"result": prop(None, "The function's return value.")}),
    examples=[{"function": "score_lead", "kwargs": {"email": "{{ input.email }}"}}],
)
async def python_call(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Call the registered function ``function`` with ``kwargs``."""
    name = params["function"]
    fn = resolve_function(name, ctx)
    kwargs = dict(params.get("kwargs") or {})
    try:
        signature = inspect.signature(fn)
        if "ctx" in signature.parameters:
            kwargs["ctx"] = ctx
        signature.bind(**kwargs)
    except TypeError as exc:
        raise _bad(f"bad arguments for {name!r}: {exc}") from None
    except ValueError:  # builtins without a signature
        pass
    timeout = float(params.get("timeout", 60))
    try:
        async with asyncio.timeout(timeout):
            if inspect.iscoroutinefunction(fn):
                result = await fn(**kwargs)
            else:
                result = await asyncio.to_thread(fn, **kwargs)
                if inspect.isawaitable(result):
                    result = await result
    except ConnectorError:
        raise
    except TimeoutError:
        raise ConnectorError(f"{name!r} ran longer than {timeout:g}s", retryable=True) from None
    except Exception as exc:
        raise _bad(f"{name!r} raised {type(exc).__name__}: {exc}"[:1000]) from exc
    try:
        json.dumps(result)
    except (TypeError, ValueError) as exc:
        raise _bad(f"{name!r} returned a value that is not JSON: {exc}") from None
    return {"result": result}
