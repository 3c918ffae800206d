"""The Jinja2 sandbox behind :mod:`flowplane.model.templates`: budgets and guards.

Kept apart from the public template API because it is all mechanism: a time budget checked
in every intercepted operation, an allocation budget, size checks that run *before* an
operator or method that can amplify its input, a code generator that guards loops and
string concatenation, and a curated set of globals and filters.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import re
import string
import time
import types
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, Undefined, nodes, pass_context, pass_environment
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, safe_range

from flowplane.errors import TemplateError

MAX_RENDER_BYTES = 1_000_000
MAX_RENDER_SECONDS = 1.0
MAX_RENDER_ALLOC_BYTES = 32 * MAX_RENDER_BYTES
MAX_INT_BITS = 16_384
MAX_ITEMS = 100_000
MAX_JSON_INDENT = 16

_UNSAFE_NAMES = frozenset({"self"})
_DROPPED_FILTERS = frozenset({"random", "attr", "tojson"})


# --- budgets -----------------------------------------------------------------------------


@dataclass
class _Budget:
    deadline: float
    allocated: int = 0


_BUDGET: ContextVar[_Budget | None] = ContextVar("flowplane_template_budget", default=None)


@contextmanager
def budget() -> Iterator[None]:
    """Start a render budget unless one is already running (nested calls share it)."""
    if _BUDGET.get() is not None:
        yield
        return
    token = _BUDGET.set(_Budget(time.monotonic() + MAX_RENDER_SECONDS))
    try:
        yield
    finally:
        _BUDGET.reset(token)


def tick() -> None:
    """Raise :class:`TemplateError` when the current render is over its time budget."""
    current = _BUDGET.get()
    if current is not None and time.monotonic() > current.deadline:
        raise TemplateError(f"template exceeded the time budget of {MAX_RENDER_SECONDS:g}s")


def _charge(size: int) -> None:
    current = _BUDGET.get()
    if current is not None:
        current.allocated += size
        if current.allocated > MAX_RENDER_ALLOC_BYTES:
            raise TemplateError(
                f"template exceeded the memory budget of {MAX_RENDER_ALLOC_BYTES} bytes"
            )


_SMALL_INT = 1 << 63


def _leaf_size(item: Any) -> int | None:
    """Return the size of a scalar, or ``None`` for a container to walk."""
    kind = type(item)
    if kind is str or kind is bytes:
        return len(item)
    if kind is int:
        if -_SMALL_INT < item < _SMALL_INT:
            return 8
        return int(item.bit_length() * 31 // 100 + 2)
    if kind is float or kind is bool or item is None:
        return 8
    if isinstance(item, dict | list | tuple | set | frozenset):
        return None
    if isinstance(item, str | bytes):  # subclasses such as Markup
        return len(item)
    if isinstance(item, int):
        return int(item.bit_length() * 31 // 100 + 2)
    return 16


def estimate_size(value: Any, limit: int = MAX_RENDER_BYTES) -> int:
    """Return a rough serialised size of ``value``, stopping early once over ``limit``.

    Shared references count every time they appear, so ``[s] * n`` costs ``n`` times ``s``.
    """
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        size = _leaf_size(item)
        if size is not None:
            total += size
        else:
            total += 2
            children = (
                [x for pair in item.items() for x in pair] if isinstance(item, dict) else item
            )
            for child in children:
                kind = type(child)
                if kind is str:  # fast paths for the common JSON scalars
                    total += len(child)
                    continue
                if kind is int and -_SMALL_INT < child < _SMALL_INT:
                    total += 8
                    continue
                size = _leaf_size(child)
                if size is None:
                    stack.append(child)
                else:
                    total += size
            if len(stack) > limit:
                return limit + 1
        if total > limit:
            return total
    return total


def refuse_non_finite(value: Any) -> None:
    """Refuse a result holding ``inf`` or ``nan`` (``{{ 1e308 * 10 }}``).

    JSON has no such numbers: stored, they would turn into ``null`` without a word.

    Raises:
        TemplateError: ``value`` is, or contains, a float that is not finite.
    """
    stack = [value]
    while stack:
        item = stack.pop()
        if type(item) is float:
            if not math.isfinite(item):
                raise TemplateError(
                    f"the result is not a finite number ({item!r}): JSON cannot hold it"
                )
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)


def _refuse_size(what: str, size: int) -> None:
    if size > MAX_RENDER_BYTES:
        raise TemplateError(f"{what} would be larger than {MAX_RENDER_BYTES} bytes")


def _length(value: Any) -> int | None:
    return len(value) if isinstance(value, str | bytes | list | tuple) else None


# --- operators ---------------------------------------------------------------------------

_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[a-zA-Z%]")
_DIGITS = re.compile(r"\d+")


def _check_percent_format(fmt: str, args: Any) -> None:
    arg_size = estimate_size(args)
    total = len(fmt)
    for match in _PERCENT_SPEC.finditer(fmt):
        if "*" in match.group(0):
            raise TemplateError("'*' widths are not allowed in % formats")
        total += sum(int(n) for n in (match.group(1), match.group(2)) if n) + arg_size
        _refuse_size("formatted string", total)


def _check_str_format(fmt: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    arg_size = estimate_size((args, kwargs))
    total = len(fmt)
    try:
        fields = list(string.Formatter().parse(fmt))
    except ValueError as exc:
        raise TemplateError(f"invalid format string: {exc}") from None
    for _literal, field, spec, _conversion in fields:
        if field is None:
            continue
        if spec and ("{" in spec or "}" in spec):
            raise TemplateError("nested replacement fields are not allowed in format specs")
        total += sum(int(n) for n in _DIGITS.findall(spec or "")) + arg_size
        _refuse_size("formatted string", total)


def _check_binop(operator: str, left: Any, right: Any) -> None:
    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            size = _length(seq)
            if size is not None and isinstance(times, int):
                if size * max(times, 0) > MAX_ITEMS and not isinstance(seq, str | bytes):
                    raise TemplateError(f"a list of more than {MAX_ITEMS} items is not allowed")
                _refuse_size("repeated value", estimate_size(seq) * max(times, 0))
        if isinstance(left, int) and isinstance(right, int):
            if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise TemplateError(f"integer result over {MAX_INT_BITS} bits")
    elif operator == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
            if right * left.bit_length() > MAX_INT_BITS:
                raise TemplateError(f"integer result over {MAX_INT_BITS} bits")
    elif operator == "+":
        if _length(left) is not None and _length(right) is not None:
            _refuse_size("concatenation", estimate_size(left) + estimate_size(right))
    elif operator == "%" and isinstance(left, str):
        _check_percent_format(left, right)


# --- str methods -------------------------------------------------------------------------


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, name: str, default: Any) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _replace_size(text: Any, old: Any, new: Any, count: Any) -> int:
    if not isinstance(text, str | bytes) or not isinstance(old, str | bytes):
        return 0
    hits = text.count(old) if old else len(text) + 1  # type: ignore[arg-type]
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * max(0, len(new) - len(old)) if isinstance(new, str | bytes) else 0


def _check_str_method(
    name: str, text: str | bytes, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, ...]:
    """Refuse a str/bytes method call whose result would be too large; return its args."""
    if name == "replace":
        old, new = _arg(args, kwargs, 0, "old", ""), _arg(args, kwargs, 1, "new", "")
        size = _replace_size(text, old, new, _arg(args, kwargs, 2, "count", -1))
        _refuse_size("replace() result", size)
    elif name in ("center", "ljust", "rjust", "zfill"):
        width = _arg(args, kwargs, 0, "width", 0)
        if isinstance(width, int):
            _refuse_size(f"{name}() result", width)
    elif name == "expandtabs":
        tabsize = _arg(args, kwargs, 0, "tabsize", 8)
        tabs = text.count("\t") if isinstance(text, str) else text.count(b"\t")
        if isinstance(tabsize, int):
            _refuse_size("expandtabs() result", len(text) + tabs * tabsize)
    elif name == "join" and args:
        items = list(_bounded(args[0]))
        _refuse_size("join() result", estimate_size(items) + len(text) * len(items))
        return (items, *args[1:])
    elif name == "translate" and args and isinstance(args[0], dict):
        longest = max((estimate_size(v) for v in args[0].values()), default=1)
        _refuse_size("translate() result", len(text) * max(longest, 1))
    return args


def _bounded(iterable: Iterable[Any]) -> Iterator[Any]:
    for count, item in enumerate(iterable):
        if count >= MAX_ITEMS:
            raise TemplateError(f"more than {MAX_ITEMS} items")
        tick()
        yield item


# --- filters -----------------------------------------------------------------------------


def _pre_center(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    width = _arg(args, kwargs, 1, "width", 80)
    if isinstance(width, int):
        _refuse_size("center result", width)
    return args


def _pre_indent(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    text, width = args[0], _arg(args, kwargs, 1, "width", 4)
    pad = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    lines = str(text).count("\n") + 1
    _refuse_size("indent result", len(str(text)) + lines * pad)
    return args


def _pre_wordwrap(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    text = str(args[0])
    wrap = _arg(args, kwargs, 4, "wrapstring", None)
    breaks = len(text) + 1  # at most one break per character
    _refuse_size("wordwrap result", len(text) + breaks * len(str(wrap or "\n")))
    return args


def _pre_replace(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    old, new = str(_arg(args, kwargs, 1, "old", "")), str(_arg(args, kwargs, 2, "new", ""))
    size = _replace_size(str(args[0]), old, new, _arg(args, kwargs, 3, "count", None))
    _refuse_size("replace result", size)
    return args


def _pre_join(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    items = list(_bounded(args[0]))
    sep = _arg(args, kwargs, 1, "d", "")
    _refuse_size("join result", estimate_size(items) + len(str(sep)) * len(items))
    return (items, *args[1:])


def _pre_format(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    _check_percent_format(str(args[0]), (args[1:], kwargs))
    return args


def _pre_batch(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    count = args[1] if len(args) > 1 else kwargs.get("linecount", kwargs.get("slices"))
    if isinstance(count, int) and count > MAX_ITEMS:
        raise TemplateError(f"batch/slice size over {MAX_ITEMS}")
    return args


_PRECHECKS: dict[str, Callable[[tuple[Any, ...], dict[str, Any]], tuple[Any, ...]]] = {
    "center": _pre_center,
    "indent": _pre_indent,
    "wordwrap": _pre_wordwrap,
    "replace": _pre_replace,
    "join": _pre_join,
    "format": _pre_format,
    "batch": _pre_batch,
    "slice": _pre_batch,
}


def _guard_filter(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    offset = 1 if getattr(fn, "jinja_pass_arg", None) is not None else 0
    precheck = _PRECHECKS.get(name)

    @functools.wraps(fn)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        tick()
        if len(args) > offset:
            _refuse_size(f"input of filter {name!r}", estimate_size(args[offset]))
            if precheck is not None:
                args = (*args[:offset], *precheck(args[offset:], kwargs))
        result = fn(*args, **kwargs)
        if not isinstance(result, Iterator):
            size = estimate_size(result)
            _refuse_size(f"result of filter {name!r}", size)
            _charge(size)
        return result

    return guarded


def _tojson(value: Any, indent: int | None = None) -> str:
    if indent is not None and not (isinstance(indent, int) and 0 <= indent <= MAX_JSON_INDENT):
        raise TemplateError(f"tojson indent must be between 0 and {MAX_JSON_INDENT}")
    try:
        return json.dumps(value, indent=indent, ensure_ascii=False, default=_json_default)
    except ValueError as exc:
        raise TemplateError(f"tojson: {exc}") from None


def _json_default(value: Any) -> Any:
    if isinstance(value, Undefined):
        str(value)  # raises the UndefinedError
    if isinstance(value, tuple | set | frozenset | Iterator):
        return list(_bounded(value))
    raise TypeError(f"object of type {type(value).__name__} is not JSON serialisable")


def _fromjson(value: str) -> Any:
    try:
        return json.loads(value)
    except (ValueError, RecursionError) as exc:
        raise TemplateError(f"fromjson: invalid JSON: {exc}") from None


def _b64encode(value: str | bytes) -> str:
    data = value.encode("utf-8") if isinstance(value, str) else value
    return base64.b64encode(data).decode("ascii")


def _b64decode(value: str) -> str:
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise TemplateError(f"b64decode: {exc}") from None


@pass_environment
def _attr(env: FlowplaneSandbox, obj: Any, name: str) -> Any:
    value = env.getattr(obj, name)
    if callable(value) and not isinstance(value, Undefined):
        raise TemplateError(f"attr({name!r}) would return a method, which is not allowed")
    return value


@pass_context
def _loop_guard(_context: Context, iterable: Any) -> Iterator[Any]:
    if isinstance(iterable, Undefined):
        iter(iterable)  # StrictUndefined raises
    for item in iterable:
        tick()
        yield item


@pass_context
def _finalize(_context: Context, value: Any) -> Any:
    tick()
    if callable(value) and not isinstance(value, Undefined):
        raise TemplateError("a function or method cannot be rendered")
    size = estimate_size(value)
    _refuse_size("rendered value", size)
    _charge(size)
    refuse_non_finite(value)
    return value


def _concat(chunks: Iterable[str]) -> str:
    out: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_RENDER_BYTES:
            raise TemplateError(f"rendered text is larger than {MAX_RENDER_BYTES} bytes")
        out.append(chunk)
    tick()
    _charge(size)
    return "".join(out)


def _guarded_concat(parts: tuple[Any, ...]) -> str:
    tick()
    size = sum(estimate_size(part) for part in parts)
    _refuse_size("concatenation", size)
    _charge(size)
    return "".join(str(part) for part in parts)


# --- the environment ---------------------------------------------------------------------


class _GuardedCodeGenerator(CodeGenerator):
    """Compiles loops and ``~`` through guards and refuses ``self`` and template imports."""

    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        for name in node.find_all(nodes.Name):
            if name.ctx == "load" and name.name in _UNSAFE_NAMES:
                self.fail(f"{name.name!r} is not available in templates", name.lineno)
        for kind in (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport):
            for found in node.find_all(kind):
                self.fail("templates cannot extend, include or import others", found.lineno)
        # Rewrite before code generation starts: it collects the filters a template uses.
        for loop in node.find_all(nodes.For):
            loop.iter = nodes.Filter(
                loop.iter, "_fp_loop", [], [], None, None, lineno=loop.iter.lineno
            )
        super().visit_Template(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.guarded_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class FlowplaneSandbox(ImmutableSandboxedEnvironment):
    """An immutable Jinja2 sandbox with time, size and allocation budgets."""

    code_generator_class = _GuardedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})
    concat = staticmethod(_concat)
    guarded_concat = staticmethod(_guarded_concat)

    def __init__(self) -> None:
        super().__init__(
            undefined=StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            finalize=_finalize,
            cache_size=0,
        )
        self.globals.clear()
        self.globals["range"] = safe_range
        filters = {name: fn for name, fn in self.filters.items() if name not in _DROPPED_FILTERS}
        filters.update(
            tojson=_tojson, fromjson=_fromjson, b64encode=_b64encode, b64decode=_b64decode
        )
        self.filters = {name: _guard_filter(name, fn) for name, fn in filters.items()}
        self.filters["attr"] = _attr
        self.filters["_fp_loop"] = _loop_guard

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """Check sizes before computing an intercepted operator."""
        tick()
        _check_binop(operator, left, right)
        result = super().call_binop(context, operator, left, right)
        if _length(result) is not None:
            _charge(estimate_size(result))
        return result

    def getattr(self, obj: Any, attribute: str) -> Any:
        """Look up an attribute under the time budget."""
        tick()
        if isinstance(obj, Undefined):
            str(obj)  # report "'x' is undefined" rather than a sandbox refusal
        if isinstance(obj, dict) and attribute in obj:
            # Data keys win over dict methods: `nodes.items.output` means the node "items".
            return obj[attribute]
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        """Subscript under the time budget."""
        tick()
        if isinstance(obj, Undefined):
            str(obj)
        return super().getitem(obj, argument)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """Sandbox ``str.format`` and refuse formats that would produce huge strings."""
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        fmt: str = value.__self__
        is_map = value.__name__ == "format_map"

        def checked(*args: Any, **kwargs: Any) -> str:
            tick()
            if is_map:
                _check_str_format(fmt, (), args[0] if args else {})
            else:
                _check_str_format(fmt, args, kwargs)
            result = wrapped(*args, **kwargs)
            _charge(len(result))
            return result

        return functools.update_wrapper(checked, wrapped)

    def call(
        __self,  # jinja's dunder names avoid clashes with keyword arguments
        __context: Context,
        __obj: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        """Call under the time budget, checking amplifying str/bytes methods first."""
        tick()
        owner = getattr(__obj, "__self__", None)
        if isinstance(__obj, types.BuiltinMethodType) and isinstance(owner, str | bytes):
            args = _check_str_method(__obj.__name__, owner, args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        if isinstance(result, str | bytes | list | tuple):
            size = estimate_size(result)
            _refuse_size("call result", size)
            _charge(size)
        return result
