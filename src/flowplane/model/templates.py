"""Sandboxed template rendering for node params, ``when`` and ``foreach``.

Templates are Jinja2 expressions rendered in an immutable sandbox with ``StrictUndefined``.
A string that is exactly one ``{{ expr }}`` keeps the native type of the value; mixed text
renders a string. ``${NAME}`` is shorthand for ``{{ secrets.NAME }}`` (``$${NAME}`` is a
literal ``${NAME}``). Values from the context (run input, node outputs) are inserted as data
and never rendered again.

Every render has a budget: :data:`MAX_RENDER_SECONDS` of time (checked in every attribute
lookup, call, filter, operator and loop step), :data:`MAX_RENDER_BYTES` per result, and
:data:`MAX_RENDER_ALLOC_BYTES` of intermediate strings and lists. Operators and methods that
can amplify their input (``*``, ``**``, ``+``, ``%``, ``str.format``, ``replace``, ``center``,
``join``, ...) are checked *before* they compute.
"""

from __future__ import annotations

import re
from collections.abc import ItemsView, Iterator, KeysView, Mapping, ValuesView
from functools import lru_cache
from typing import Any

from jinja2 import Template, Undefined, nodes
from jinja2.environment import TemplateExpression
from jinja2.exceptions import TemplateError as JinjaTemplateError
from jinja2.parser import Parser

from flowplane.errors import TemplateError
from flowplane.model._sandbox import (
    MAX_RENDER_ALLOC_BYTES,
    MAX_RENDER_BYTES,
    MAX_RENDER_SECONDS,
    FlowplaneSandbox,
    budget,
    estimate_size,
    refuse_non_finite,
    tick,
)
from flowplane.model.document import Node, is_template
from flowplane.security.redaction import mask_values

__all__ = [
    "MAX_RENDER_ALLOC_BYTES",
    "MAX_RENDER_BYTES",
    "MAX_RENDER_SECONDS",
    "check_template",
    "environment",
    "evaluate",
    "iter_template_strings",
    "node_references",
    "node_secret_names",
    "output_fields",
    "references",
    "render_value",
    "secret_names",
    "secret_uses",
    "truthy",
]

_SECRET_SHORTHAND = re.compile(r"(\$?)\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_JINJA_BLOCK = re.compile(r"(\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\})", re.S)
_FALSY_STRINGS = frozenset({"", "false", "0", "no", "off", "none", "null"})
_SNIPPET_CHARS = 200

_ENV = FlowplaneSandbox()


def environment() -> FlowplaneSandbox:
    """Return the shared sandboxed Jinja2 environment (for tests and tooling)."""
    return _ENV


# --- compiling ---------------------------------------------------------------------------


def _rewrite_shorthand(source: str) -> str:
    """Rewrite ``${NAME}`` outside Jinja blocks to ``{{ secrets.NAME }}``."""
    if "${" not in source:
        return source

    def sub(match: re.Match[str]) -> str:
        if match.group(1):  # "$${NAME}" escapes the shorthand
            return "${" + match.group(2) + "}"
        return "{{ secrets." + match.group(2) + " }}"

    parts = _JINJA_BLOCK.split(source)
    for i in range(0, len(parts), 2):  # even indexes are plain text
        parts[i] = _SECRET_SHORTHAND.sub(sub, parts[i])
    return "".join(parts)


def _single_expression(source: str) -> str | None:
    """Return the expression when ``source`` is exactly one ``{{ expr }}``, else ``None``."""
    stripped = source.strip()
    if not (stripped.startswith("{{") and stripped.endswith("}}")):
        return None
    try:
        kinds = [token[1] for token in _ENV.lex(stripped)]
    except JinjaTemplateError:
        return None  # compiling it as a template reports the error
    if kinds.count("variable_begin") != 1 or kinds[0] != "variable_begin":
        return None
    if kinds[-1] != "variable_end" or any(k in kinds for k in ("block_begin", "comment_begin")):
        return None
    inner = stripped[2:-2]
    if inner[:1] in "-+":
        inner = inner[1:]
    if inner[-1:] in "-+":
        inner = inner[:-1]
    return inner


def _snippet(source: str) -> str:
    return source if len(source) <= _SNIPPET_CHARS else source[:_SNIPPET_CHARS] + "..."


def _compile_error(source: str, exc: Exception) -> TemplateError:
    lineno = getattr(exc, "lineno", None)
    message = getattr(exc, "message", None) or str(exc)
    return TemplateError(
        f"invalid template {_snippet(source)!r}: {message}", template=_snippet(source), line=lineno
    )


@lru_cache(maxsize=4096)
def _compile(source: str) -> TemplateExpression | Template:
    """Compile a template string (after the ``${NAME}`` rewrite); cached on the source."""
    expression = _single_expression(source)
    try:
        if expression is not None:
            return _ENV.compile_expression(expression, undefined_to_none=False)
        return _ENV.from_string(source)
    except JinjaTemplateError as exc:
        raise _compile_error(source, exc) from None
    except TemplateError:
        raise
    except Exception as exc:  # e.g. RecursionError on absurd nesting
        raise _compile_error(source, exc) from None


@lru_cache(maxsize=4096)
def _compile_bare(expression: str) -> TemplateExpression:
    try:
        return _ENV.compile_expression(expression, undefined_to_none=False)
    except JinjaTemplateError as exc:
        raise _compile_error(expression, exc) from None


def check_template(source: str, *, expression: bool = False) -> None:
    """Raise :class:`TemplateError` when ``source`` does not compile.

    Args:
        source: a template string, or a bare expression when ``expression`` is true.
        expression: treat ``source`` as a bare Jinja expression (``x > 1``), as ``when``
            accepts.
    """
    if expression:
        _compile_bare(source)
    elif is_template(source):
        _compile(_rewrite_shorthand(source))


# --- rendering ---------------------------------------------------------------------------


def _redact(message: str, context: Mapping[str, Any]) -> str:
    secrets = context.get("secrets")
    if isinstance(secrets, Mapping):
        return mask_values(message, (v for v in secrets.values() if isinstance(v, str)))
    return message


def _runtime_error(source: str, exc: BaseException, context: Mapping[str, Any]) -> TemplateError:
    if isinstance(exc, TemplateError):
        reason = exc.detail
    elif isinstance(exc, JinjaTemplateError):
        reason = exc.message or type(exc).__name__
    elif isinstance(exc, RecursionError):
        reason = "maximum recursion depth exceeded"
    elif isinstance(exc, MemoryError):
        reason = "out of memory"
    else:
        reason = f"{type(exc).__name__}: {exc}"
    reason = _redact(reason, context)
    return TemplateError(
        f"template {_snippet(source)!r} failed: {reason}", template=_snippet(source)
    )


def _native(value: Any) -> Any:
    """Turn what an expression returned into plain data, or refuse it."""
    if isinstance(value, Undefined):
        str(value)  # StrictUndefined raises the precise UndefinedError / SecurityError
    if isinstance(value, range | Iterator | KeysView | ValuesView | ItemsView | set | frozenset):
        value = list(value)
    elif isinstance(value, Mapping) and not isinstance(value, dict):
        value = dict(value)
    elif isinstance(value, str) and type(value) is not str:  # Markup
        value = str(value)
    if callable(value):
        raise TemplateError("a template cannot return a function or method")
    if estimate_size(value, MAX_RENDER_BYTES) > MAX_RENDER_BYTES:
        raise TemplateError(f"result is larger than {MAX_RENDER_BYTES} bytes")
    refuse_non_finite(value)
    return value


def _render_text(template: Template, context: Mapping[str, Any]) -> str:
    chunks: list[str] = []
    size = 0
    for chunk in template.generate(dict(context)):
        size += len(chunk)
        if size > MAX_RENDER_BYTES:
            raise TemplateError(f"rendered text is larger than {MAX_RENDER_BYTES} bytes")
        chunks.append(chunk)
        tick()
    return "".join(chunks)


def _render_string(source: str, context: Mapping[str, Any]) -> Any:
    if not is_template(source):
        return source
    rewritten = _rewrite_shorthand(source)
    compiled = _compile(rewritten)
    try:
        if isinstance(compiled, TemplateExpression):
            return _native(compiled(dict(context)))
        return _render_text(compiled, context)
    except Exception as exc:
        raise _runtime_error(source, exc, context) from None


def _render_walk(value: Any, context: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        return _render_string(value, context)
    if isinstance(value, dict):
        return {key: _render_walk(item, context) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_render_walk(item, context) for item in value)
    return value


def render_value(value: Any, context: Mapping[str, Any]) -> Any:
    """Render every template string inside ``value``.

    Dicts and lists are walked recursively (keys are left alone). A string that is exactly
    one ``{{ expr }}`` (or one ``${NAME}``) becomes the native value of the expression;
    other template strings render to text; strings without templates are returned as is.
    Context data is never rendered itself.

    Args:
        value: a params mapping, a list, or a scalar from the workflow document.
        context: ``input``, ``nodes``, ``item``, ``index``, ``secrets``, ``run``, ``workflow``.

    Returns:
        A new structure with the templates replaced by their values.

    Raises:
        TemplateError: a template does not compile, fails, or breaks the sandbox or budget.
    """
    with budget():
        return _render_walk(value, context)


def evaluate(expr: Any, context: Mapping[str, Any]) -> Any:
    """Evaluate a ``when`` (or ``foreach``) expression.

    Accepts ``"{{ x > 1 }}"``, mixed text (rendered to a string), a bare expression
    ``"x > 1"``, or a literal bool / number / ``None`` (returned unchanged).

    Raises:
        TemplateError: the expression does not compile or fails.
    """
    if not isinstance(expr, str):
        return expr
    if is_template(expr):
        return render_value(expr, context)
    compiled = _compile_bare(expr)
    with budget():
        try:
            return _native(compiled(dict(context)))
        except Exception as exc:
            raise _runtime_error(expr, exc, context) from None


def truthy(value: Any) -> bool:
    """Return whether a ``when`` value means "run".

    Strings ``""``, ``false``, ``0``, ``no``, ``off``, ``none`` and ``null`` (any case, any
    surrounding space) are false, as are ``None``, ``False``, zero and empty collections.
    """
    if isinstance(value, str):
        return value.strip().lower() not in _FALSY_STRINGS
    return bool(value)


# --- static analysis ---------------------------------------------------------------------


def iter_template_strings(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Yield ``(path, string)`` for every template string inside ``value``.

    Paths look like ``headers.Authorization`` or ``items[2]`` (relative to ``path``).
    """
    if isinstance(value, str):
        if is_template(value):
            yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from iter_template_strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from iter_template_strings(item, f"{path}[{index}]")


@lru_cache(maxsize=4096)
def _ast(source: str) -> nodes.Node | None:
    """Parse a template string (or bare expression) to its AST; ``None`` when invalid."""
    try:
        if is_template(source):
            return _ENV.parse(_rewrite_shorthand(source))
        parser = Parser(_ENV, source, state="variable")
        expr = parser.parse_expression()
        return expr if parser.stream.eos else None
    except JinjaTemplateError:
        return None


def _chain(node: nodes.Node) -> list[str] | None:
    """Return ``["nodes", "x", "output", "f"]`` for ``nodes.x.output.f`` / ``nodes['x']...``."""
    parts: list[str] = []
    while True:
        if isinstance(node, nodes.Getattr):
            parts.append(node.attr)
            node = node.node
        elif isinstance(node, nodes.Getitem):
            if not (isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str)):
                return None
            parts.append(node.arg.value)
            node = node.node
        elif isinstance(node, nodes.Name):
            parts.append(node.name)
            return parts[::-1]
        else:
            return None


@lru_cache(maxsize=4096)
def _chains(source: str) -> tuple[tuple[str, ...], ...]:
    tree = _ast(source)
    if tree is None:
        return ()
    called = {id(call.node) for call in tree.find_all(nodes.Call)}
    found: list[tuple[str, ...]] = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        chain = _chain(node)
        if chain is None:
            continue
        if id(node) in called:  # nodes.x.output.get('a'): "get" is a method, not a field
            chain = chain[:-1]
        found.append(tuple(chain))
    return tuple(found)


def _all_chains(value: Any, expression: bool) -> Iterator[tuple[str, ...]]:
    if expression and isinstance(value, str) and not is_template(value):
        yield from _chains(value)
        return
    for _, source in iter_template_strings(value):
        yield from _chains(source)


def references(value: Any, *, expression: bool = False) -> set[str]:
    """Return the node ids referenced as ``nodes.X`` / ``nodes['X']`` in any template.

    Args:
        value: a string, or a structure walked like :func:`render_value` walks it.
        expression: when ``value`` is a string without template markers, read it as a bare
            expression (as ``when`` allows) instead of plain text.
    """
    return {
        chain[1]
        for chain in _all_chains(value, expression)
        if len(chain) >= 2 and chain[0] == "nodes"
    }


def secret_names(value: Any, *, expression: bool = False) -> set[str]:
    """Return the secret names referenced as ``secrets.NAME`` or ``${NAME}``."""
    return {
        chain[1]
        for chain in _all_chains(value, expression)
        if len(chain) >= 2 and chain[0] == "secrets"
    }


# Blocks whose ``{{ }}`` outputs go straight into the rendered text: an output inside any
# other block (``{% filter %}``, ``{% set %}...{% endset %}``, a macro, a call block) can
# be transformed before it reaches the text.
_PASS_THROUGH = (nodes.Template, nodes.If, nodes.For)


def _exact_secret(node: nodes.Node) -> str | None:
    """The name when ``node`` is exactly ``secrets.NAME`` / ``secrets['NAME']``."""
    chain = _chain(node) if isinstance(node, nodes.Getattr | nodes.Getitem) else None
    if chain is not None and len(chain) == 2 and chain[0] == "secrets":
        return chain[1]
    return None


@lru_cache(maxsize=4096)
def secret_uses(source: str) -> tuple[tuple[str, bool], ...]:
    """How the template ``source`` uses secrets: ``(name, exact)`` pairs.

    ``exact`` is true when every use of ``name`` is a substitution as is (``${NAME}``,
    ``{{ secrets.NAME }}``) whose text reaches the rendered result unchanged, the only use
    that redaction of exact values can follow. Any other use (a filter, a slice, a test,
    a method, an output inside ``{% filter %}`` or ``{% set %}``) is not exact. A bare
    ``secrets`` (``{{ secrets | list }}``) is reported under the name ``""``: it reaches
    every secret the node has. A template that does not parse reports nothing (it fails
    to render anyway).
    """
    tree = _ast(source)
    if tree is None:
        return ()
    found: dict[str, bool] = {}
    called = {id(call.node) for call in tree.find_all(nodes.Call)}

    def visit(node: nodes.Node, plain: bool) -> None:
        if plain and isinstance(node, nodes.Output):
            for output in node.nodes:
                name = _exact_secret(output)
                if name is not None:
                    found.setdefault(name, True)
                else:
                    visit(output, False)
            return
        if isinstance(node, nodes.Getattr | nodes.Getitem):
            chain = _chain(node)
            if chain is not None and len(chain) >= 2 and chain[0] == "secrets":
                first: nodes.Node = node  # the access right on the name: secrets.X
                while not isinstance(first.node, nodes.Name):  # type: ignore[attr-defined]
                    first = first.node  # type: ignore[attr-defined]
                # ``secrets.values()``: a method of the mapping, reaching every secret.
                found["" if id(first) in called else chain[1]] = False
                return
        if isinstance(node, nodes.Name) and node.name == "secrets":
            found[""] = False
            return
        inner = plain and isinstance(node, _PASS_THROUGH)
        for child in node.iter_child_nodes():
            visit(child, inner)

    visit(tree, True)
    return tuple(sorted(found.items()))


def output_fields(value: Any, *, expression: bool = False) -> set[tuple[str, str]]:
    """Return ``(node_id, field)`` pairs for references ``nodes.<id>.output.<field>``."""
    return {
        (chain[1], chain[3])
        for chain in _all_chains(value, expression)
        if len(chain) >= 4 and chain[0] == "nodes" and chain[2] == "output"
    }


def _node_parts(node: Node) -> Iterator[tuple[Any, bool]]:
    yield node.params, False
    if isinstance(node.when, str):
        yield node.when, not is_template(node.when)
    if node.foreach is not None:
        yield node.foreach, False


def node_references(node: Node) -> set[str]:
    """Return the node ids referenced by ``node``'s params, ``when`` and ``foreach``.

    Unlike ``references([node.params, node.when, node.foreach])`` this reads a bare
    ``when`` expression (``nodes.a.output.ok``) as an expression, not as plain text.
    """
    found: set[str] = set()
    for value, bare in _node_parts(node):
        found |= references(value, expression=bare)
    return found


def node_secret_names(node: Node) -> set[str]:
    """Return the secret names used by ``node``'s params, ``when`` and ``foreach``."""
    found: set[str] = set()
    for value, bare in _node_parts(node):
        found |= secret_names(value, expression=bare)
    return found
