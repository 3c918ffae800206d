"""Loading and dumping workflow documents (YAML or JSON), safely.

Documents are untrusted: :func:`load_document` enforces a size limit, a nesting depth limit
and an alias budget *while parsing events*, before anything is constructed, so a "billion
laughs" YAML bomb fails in milliseconds. YAML is read with ``safe_load`` semantics, except
that timestamps stay strings, duplicate keys are refused and the result must be plain JSON
data (string keys, no ``.nan``, no ``!!binary`` or ``!!set``).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pydantic
import yaml

from flowplane.errors import DocumentError, WorkflowInvalid
from flowplane.model.document import Workflow
from flowplane.model.graph import Catalog, salvage_issues

__all__ = [
    "MAX_ALIASES",
    "MAX_DEPTH",
    "MAX_DOCUMENT_BYTES",
    "MAX_EXPANDED_WEIGHT",
    "dump_json",
    "dump_yaml",
    "line_of",
    "lines_of",
    "load_document",
    "parse_path",
    "parse_workflow",
]

MAX_DOCUMENT_BYTES = 1_048_576
MAX_DEPTH = 64
MAX_ALIASES = 64
MAX_EXPANDED_WEIGHT = 4 * MAX_DOCUMENT_BYTES

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[valid-type,misc]
    """SafeLoader that keeps timestamps as strings and refuses duplicate keys."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[str, Any]:
    loader.flatten_mapping(node)
    result: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if isinstance(key, int) and not isinstance(key, bool):
            key = str(key)
        if not isinstance(key, str):
            raise yaml.constructor.ConstructorError(
                None, None, f"mapping keys must be strings, not {key!r}", key_node.start_mark
            )
        if key in result:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        result[key] = loader.construct_object(value_node, deep=True)
    return result


def _construct_refused(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    raise yaml.constructor.ConstructorError(
        None, None, f"the tag {node.tag} is not allowed in a workflow document", node.start_mark
    )


def _construct_timestamp(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return str(node.value)


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)
for _tag in ("binary", "set", "omap", "pairs"):
    _Loader.add_constructor(f"tag:yaml.org,2002:{_tag}", _construct_refused)


def _error(source: str, message: str, line: int | None, column: int | None) -> DocumentError:
    where = f"line {line}, column {column}: " if line is not None else ""
    extra: dict[str, Any] = {}
    if line is not None:
        extra = {"line": line, "column": column}
    return DocumentError(f"{source}: {where}{message}", **extra)


def _mark_error(source: str, message: str, mark: Any) -> DocumentError:
    if mark is None:
        return _error(source, message, None, None)
    return _error(source, message, mark.line + 1, mark.column + 1)


def _scan_events(text: str, source: str) -> int:
    """Check depth and alias expansion on the event stream; return the alias count."""
    depth = 0
    aliases = 0
    anchors: dict[str, int] = {}
    # Each open collection: [anchor, expanded weight so far].
    stack: list[list[Any]] = [[None, 0]]
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise _mark_error(source, f"nesting deeper than {MAX_DEPTH}", event.start_mark)
            stack.append([event.anchor, 1])
            continue
        if isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
            anchor, weight = stack.pop()
            if anchor is not None:
                anchors[anchor] = weight
        elif isinstance(event, yaml.ScalarEvent):
            weight = len(event.value) + 1
            if event.anchor is not None:
                anchors[event.anchor] = weight
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                raise _mark_error(source, f"more than {MAX_ALIASES} YAML aliases", event.start_mark)
            weight = anchors.get(event.anchor or "", 0)
        else:
            continue
        stack[-1][1] += weight
        if stack[-1][1] > MAX_EXPANDED_WEIGHT:
            raise _mark_error(
                source, "YAML aliases expand beyond the document size limit", event.start_mark
            )
    return aliases


def _check_data(value: Any, source: str) -> None:
    """Refuse values JSON cannot hold and nesting deeper than :data:`MAX_DEPTH`."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _error(source, f"nesting deeper than {MAX_DEPTH}", None, None)
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise _error(source, f"{item} is not a valid number in a document", None, None)
        elif not (item is None or isinstance(item, str | int | float | bool)):
            kind = type(item).__name__
            raise _error(source, f"values of type {kind} are not allowed", None, None)


def _load_json(text: str, source: str) -> Any:
    def refuse_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a valid number in a document")

    try:
        return json.loads(text, parse_constant=refuse_constant)
    except json.JSONDecodeError as exc:
        raise _error(source, f"invalid JSON: {exc.msg}", exc.lineno, exc.colno) from None
    except RecursionError:
        raise _error(source, f"nesting deeper than {MAX_DEPTH}", None, None) from None
    except ValueError as exc:
        raise _error(source, str(exc), None, None) from None


def _load_yaml(text: str, source: str) -> Any:
    try:
        aliases = _scan_events(text, source)
        data = yaml.load(text, Loader=_Loader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        message = exc.problem or str(exc)
        if exc.context:
            message = f"{message} ({exc.context})"
        raise _mark_error(source, message, exc.problem_mark) from None
    except yaml.YAMLError as exc:
        raise _error(source, f"invalid YAML: {exc}", None, None) from None
    return _unshare(data) if aliases else data


def _unshare(value: Any) -> Any:
    """Copy a structure so aliased parts become independent (``deepcopy`` keeps sharing)."""
    if isinstance(value, dict):
        return {key: _unshare(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unshare(item) for item in value]
    return value


def load_document(text: str | bytes, *, source: str = "<document>") -> dict[str, Any]:
    """Parse a workflow document from JSON or YAML text.

    Args:
        text: the document; bytes must be UTF-8.
        source: a name for error messages (a file name, ``<request>``, ...).

    Returns:
        The document as plain JSON data; the top level is a mapping.

    Raises:
        DocumentError: the text is too large, not UTF-8, not JSON/YAML, too deeply nested,
            uses too many aliases, or its top level is not a mapping. ``line`` and
            ``column`` (1-based) are set when known.
    """
    size = len(text) if isinstance(text, bytes) else len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_DOCUMENT_BYTES:
        raise DocumentError(
            f"{source}: document is {size} bytes, over the limit of {MAX_DOCUMENT_BYTES}"
        )
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DocumentError(f"{source}: document is not valid UTF-8: {exc.reason}") from None
    stripped = text.lstrip()
    if not stripped:
        raise DocumentError(f"{source}: document is empty")
    if stripped.startswith(("{", "[")):
        try:
            data = _load_json(text, source)
        except DocumentError as json_error:
            try:  # YAML flow style, e.g. "{name: x, nodes: [...]}"
                data = _load_yaml(text, source)
            except DocumentError:
                raise json_error from None
    else:
        data = _load_yaml(text, source)
    if not isinstance(data, dict):
        kind = "empty" if data is None else type(data).__name__
        raise DocumentError(
            f"{source}: the top level of a workflow document must be a mapping, not {kind}"
        )
    _check_data(data, source)
    return data


# --- line numbers ------------------------------------------------------------------------

_PATH_TOKEN = re.compile(r"\[(\d+)\]|\[['\"]([^'\"]*)['\"]\]|\.?([^.\[\]]+)")


def parse_path(path: str) -> list[str | int]:
    """Split ``nodes[1].params.url`` into ``["nodes", 1, "params", "url"]``."""
    parts: list[str | int] = []
    for index, quoted, name in _PATH_TOKEN.findall(path):
        parts.append(int(index) if index else quoted or name)
    return parts


def _compose(text: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError:
        return None


def _node_line(root: yaml.Node | None, loc: list[str | int]) -> int | None:
    node = root
    if node is None:
        return None
    for part in loc:
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    child = value
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if 0 <= part < len(node.value):
                child = node.value[part]
        if child is None:
            break
        node = child
    return int(node.start_mark.line) + 1


def line_of(text: str | bytes, path: str | list[str | int]) -> int | None:
    """Return the 1-based line of ``path`` (e.g. ``nodes[1].params.url``) in ``text``.

    When the path does not exist entirely, the line of its deepest existing parent is
    returned; ``None`` when the text cannot be parsed or is over the size limit.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if len(text) > MAX_DOCUMENT_BYTES:
        return None
    try:
        _scan_events(text, "<document>")
    except (DocumentError, yaml.YAMLError):
        return None
    loc = parse_path(path) if isinstance(path, str) else path
    return _node_line(_compose(text), loc)


def lines_of(text: str | bytes, paths: list[list[str | int]]) -> list[int | None]:
    """:func:`line_of` for several paths of one text, composing the text once."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if len(text) > MAX_DOCUMENT_BYTES:
        return [None] * len(paths)
    try:
        _scan_events(text, "<document>")
    except (DocumentError, yaml.YAMLError):
        return [None] * len(paths)
    root = _compose(text)
    return [_node_line(root, loc) if root is not None else None for loc in paths]


# --- workflows ---------------------------------------------------------------------------


def _format_loc(loc: list[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _real_loc(doc: Any, loc: tuple[int | str, ...]) -> list[str | int]:
    """Keep the part of a pydantic ``loc`` that names document keys (drop union tags)."""
    real: list[str | int] = []
    current = doc
    for part in loc:
        if isinstance(current, dict):
            real.append(part)
            current = current.get(part) if isinstance(part, str) else None
        elif isinstance(current, list) and isinstance(part, int):
            real.append(part)
            current = current[part] if 0 <= part < len(current) else None
        else:
            break
    return real


def _validation_errors(
    exc: pydantic.ValidationError, doc: dict[str, Any], text: str | None
) -> list[dict[str, Any]]:
    root = _compose(text) if text is not None else None
    merged: dict[str, dict[str, Any]] = {}
    for err in exc.errors():
        loc = _real_loc(doc, tuple(err["loc"]))
        message = str(err["msg"]).removeprefix("Value error, ")
        path = _format_loc(loc)
        if path in merged:
            if message not in merged[path]["error"]:
                merged[path]["error"] += f"; or {message}"
            continue
        node_id = None
        field_loc = loc
        if len(loc) >= 2 and loc[0] == "nodes" and isinstance(loc[1], int):
            node = doc["nodes"][loc[1]]
            node_id = node.get("id") if isinstance(node, dict) else None
            node_id = node_id if isinstance(node_id, str) else None
            field_loc = loc[2:]
        merged[path] = {
            "path": path,
            "node_id": node_id,
            "field": _format_loc(field_loc) or None,
            "error": message,
            "line": _node_line(root, loc) if root is not None else None,
        }
    return sorted(merged.values(), key=lambda e: (e["line"] is None, e["line"] or 0))


def _salvaged_errors(
    doc: dict[str, Any], text: str | None, catalog: Catalog | None
) -> list[dict[str, Any]]:
    """The graph, parameter and template problems of the parts of ``doc`` that are valid,
    as :func:`parse_workflow` lists errors (plus their ``code``)."""
    root = _compose(text) if text is not None else None
    raw_nodes = doc.get("nodes")
    nodes: list[Any] = raw_nodes if isinstance(raw_nodes, list) else []
    index = {n.get("id"): i for i, n in reversed(list(enumerate(nodes))) if isinstance(n, dict)}
    errors = []
    for issue in salvage_issues(doc, catalog):
        loc: list[str | int] = []
        if issue.node_id is not None and issue.node_id in index:
            loc = ["nodes", index[issue.node_id]]
        if issue.field:
            loc += parse_path(issue.field)
        errors.append(
            {
                "path": _format_loc(loc),
                "node_id": issue.node_id,
                "field": issue.field,
                "error": issue.error,
                "line": _node_line(root, loc) if root is not None and loc else None,
                "code": issue.code,
                "node_type": issue.node_type,
                "value": issue.value,
            }
        )
    return errors


def parse_workflow(
    text: str | bytes | dict[str, Any],
    *,
    source: str = "<document>",
    catalog: Catalog | None = None,
) -> Workflow:
    """Parse and validate a workflow document.

    When the document does not match the model, the parts that do are checked as well
    (graph, templates, and connector params against ``catalog``), so the error lists every
    problem at once, not only the first layer's.

    Args:
        text: YAML or JSON text, or an already loaded mapping.
        source: a name for error messages.
        catalog: the connector catalog the params of the valid parts are checked against.

    Raises:
        DocumentError: the text cannot be parsed (see :func:`load_document`).
        WorkflowInvalid: the document does not match the workflow model; ``errors`` lists
            ``{"path", "node_id", "field", "error", "line"}`` for each problem (graph and
            param problems also carry their ``code``).
    """
    if isinstance(text, dict):
        doc, raw = text, None
    else:
        doc = load_document(text, source=source)
        raw = text.decode("utf-8-sig") if isinstance(text, bytes) else text
    try:
        return Workflow.model_validate(doc)
    except pydantic.ValidationError as exc:
        errors = _validation_errors(exc, doc, raw) + _salvaged_errors(doc, raw, catalog)
        errors.sort(key=lambda e: (e["line"] is None, e["line"] or 0))
        lines = [
            f"  - {e['path'] or '(document)'}"
            + (f" (line {e['line']})" if e["line"] else "")
            + f": {e['error']}"
            for e in errors
        ]
        detail = f"{source}: workflow is invalid ({len(errors)} problem(s)):\n" + "\n".join(lines)
        raise WorkflowInvalid(detail, errors=errors) from None


# --- dumping -----------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    """Block style, no anchors, multi-line strings as ``|`` literals."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def dump_yaml(doc: dict[str, Any]) -> str:
    """Return ``doc`` as block-style YAML, keys in their original order."""
    return yaml.dump(
        doc,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )


def dump_json(doc: Any) -> str:
    """Return ``doc`` as indented JSON (UTF-8 characters kept, trailing newline)."""
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
