"""``flowplane validate FILE``: every problem of a workflow file, with its line.

Problems come from three layers: the document (YAML/JSON syntax, size, depth), the workflow
model (fields and their types) and the graph (ids, needs, cycles, connector types, params
against the connector's ``inputSchema``, template syntax and references). Each is printed as
``FILE:LINE: [code] node 'x' field: message`` followed by the source line, underlined.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from flowplane.cli._common import EXIT_FAILED, EXIT_OK, build_registry, fail

if TYPE_CHECKING:
    from flowplane.connectors.registry import Registry
    from flowplane.errors import DocumentError, WorkflowInvalid
    from flowplane.model.document import Workflow
    from flowplane.model.graph import ValidationIssue

MAX_FILE_BYTES = 1_048_576


@dataclass
class Problem:
    """One problem of a workflow file, located in the source when possible."""

    code: str
    message: str
    line: int | None = None
    column: int | None = None
    node_id: str | None = None
    field: str | None = None
    path: str | None = None
    length: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the problem as JSON data."""
        return asdict(self)


@dataclass
class Report:
    """The result of validating one file."""

    file: str
    text: str
    workflow: Workflow | None
    problems: list[Problem]

    @property
    def valid(self) -> bool:
        """Whether no problem was found."""
        return not self.problems


def _strip_prefix(message: str, *prefixes: str) -> str:
    for prefix in prefixes:
        if prefix and message.startswith(prefix):
            message = message[len(prefix) :]
    return message


def _document_problem(exc: DocumentError, source: str) -> Problem:
    message = _strip_prefix(exc.detail, f"{source}: ")
    message = re.sub(r"^line \d+(, column \d+)?: ", "", message)
    line, column = exc.extra.get("line"), exc.extra.get("column")
    return Problem(
        code=exc.code,
        message=message,
        line=line if isinstance(line, int) else None,
        column=column if isinstance(column, int) else None,
    )


def _model_problems(exc: WorkflowInvalid, text: str) -> list[Problem]:
    problems = []
    for err in exc.extra.get("errors") or []:
        column, length = None, None
        if err.get("code"):  # a graph or param problem of the parts that parsed
            from flowplane.model.graph import ValidationIssue

            issue = ValidationIssue(
                node_id=err.get("node_id"),
                node_type=err.get("node_type"),
                field=err.get("field"),
                value=err.get("value"),
                error=str(err.get("error", "")),
                code=str(err["code"]),
            )
            column, length = _span(text, err.get("line"), issue)
        message = str(err.get("error", ""))
        if err.get("code") and err.get("node_id"):
            message = _strip_prefix(
                message, f"node {err['node_id']!r}: ", f"node {err['node_id']!r} "
            )
        problems.append(
            Problem(
                code=err.get("code") or exc.code,
                message=message,
                line=err.get("line"),
                column=column,
                length=length,
                node_id=err.get("node_id"),
                field=err.get("field") or (None if err.get("node_id") else err.get("path")),
                path=err.get("path") or None,
            )
        )
    return problems or [Problem(code=exc.code, message=exc.detail)]


def _issue_path(wf: Workflow, issue: ValidationIssue, duplicates: dict[str, int]) -> str | None:
    """Return the document path (``nodes[2].params.url``) an issue points at."""
    from flowplane.model.templates import iter_template_strings

    if issue.node_id is None:
        return issue.field
    indexes = [i for i, node in enumerate(wf.nodes) if node.id == issue.node_id]
    if not indexes:
        return None
    index = indexes[0]
    if issue.code == "duplicate_id":
        # The first node keeps the id; the nth duplicate issue points at the (n+1)th node.
        seen = duplicates.get(issue.node_id, 0) + 1
        duplicates[issue.node_id] = seen
        index = indexes[min(seen, len(indexes) - 1)]
    base = f"nodes[{index}]"
    if not issue.field:
        return base
    node = wf.nodes[index]
    if issue.field == "needs" and isinstance(issue.value, str) and node.needs:
        if issue.value in node.needs:
            return f"{base}.needs[{node.needs.index(issue.value)}]"
    if issue.field == "params" and isinstance(issue.value, str):
        # A reference problem names the whole params; point at the string that holds it.
        for where, text in iter_template_strings(node.params, "params"):
            if issue.value in text:
                return f"{base}.{where}"
    return f"{base}.{issue.field}"


def _graph_problems(wf: Workflow, text: str, issues: list[ValidationIssue]) -> list[Problem]:
    from flowplane.model.yaml import line_of

    problems: list[Problem] = []
    duplicates: dict[str, int] = {}
    for issue in issues:
        path = _issue_path(wf, issue, duplicates)
        message = _strip_prefix(
            issue.error,
            f"node {issue.node_id!r}: " if issue.node_id else "",
            f"{issue.field}: " if issue.field else "",
        )
        if issue.node_id:
            message = _strip_prefix(message, f"node {issue.node_id!r} ")
        line = line_of(text, path) if path else None
        column, length = _span(text, line, issue)
        problems.append(
            Problem(
                code=issue.code,
                message=message,
                line=line,
                column=column,
                node_id=issue.node_id,
                field=issue.field,
                path=path,
                length=length,
            )
        )
    return problems


def _span(text: str, line: int | None, issue: ValidationIssue) -> tuple[int | None, int | None]:
    """Return the 1-based column and length of the offending key or value on ``line``."""
    lines = text.splitlines()
    if line is None or not 0 < line <= len(lines):
        return None, None
    source = lines[line - 1]
    key = issue.field.rsplit(".", 1)[-1] if issue.field else None
    value = issue.value if isinstance(issue.value, str) and issue.value else None
    keys = [rf"(?<![\w.-]){re.escape(key)}(?=:)"] if key and not key.endswith("]") else []
    values = [rf"(?<![\w-]){re.escape(value)}(?![\w-])"] if value else []
    patterns = keys + values if issue.code in _KEY_CODES else values + keys
    for pattern in patterns:
        found = re.search(pattern, source)
        if found:
            return found.start() + 1, len(found.group())
    return None, None


# Problems about a key itself (rather than its value): point at the key.
_KEY_CODES = frozenset({"unknown_param", "missing_param", "duplicate_id"})


def check_text(text: str, source: str, registry: Registry) -> Report:
    """Parse and validate a workflow document; return every problem found.

    Args:
        text: the YAML or JSON document.
        source: the file name, for messages.
        registry: the connectors that node types and params are checked against.
    """
    from flowplane.errors import DocumentError, WorkflowInvalid
    from flowplane.model.graph import validate_workflow
    from flowplane.model.yaml import parse_workflow

    try:
        wf = parse_workflow(text, source=source, catalog=registry)
    except DocumentError as exc:
        return Report(source, text, None, [_document_problem(exc, source)])
    except WorkflowInvalid as exc:
        return Report(source, text, None, _model_problems(exc, text))
    issues = validate_workflow(wf, registry)
    problems = _graph_problems(wf, text, issues)
    problems.sort(key=lambda p: (p.line is None, p.line or 0))
    return Report(source, text, wf, problems)


def credential_warnings(report: Report, server: str | None, token: str | None) -> list[Problem]:
    """One ``credential_missing`` problem per node and credential it uses that is not set:
    on ``server`` when given (what it stores), else in this environment
    (``FLOWPLANE_SECRET_<NAME>``)."""
    from flowplane.model.graph import credential_references
    from flowplane.model.yaml import line_of

    if report.workflow is None or not report.valid:
        return []
    used = credential_references(report.workflow)
    if not used:
        return []
    index = {node.id: i for i, node in reversed(list(enumerate(report.workflow.nodes)))}
    if server is not None:
        from flowplane.cli._client import remote

        with remote(server, token) as fp:
            result = fp.validate_workflow(report.text)
        missing = {(w.node_id, str(w.value)) for w in result.warnings}
        advice = f"it is not stored on {server}"
    else:
        missing = {
            (node.id, name) for node, name in used if not os.environ.get(f"FLOWPLANE_SECRET_{name}")
        }
        advice = (
            "runs fail unless it is stored where they run (or FLOWPLANE_SECRET_{name} is "
            "set); --server URL checks a server's credentials"
        )
    problems = []
    for node, name in used:
        if (node.id, name) not in missing:
            continue
        path = f"nodes[{index[node.id]}].params"
        problems.append(
            Problem(
                code="credential_missing",
                message=f"uses credential {name!r}: "
                + advice.replace("{name}", name)
                + f" (flowplane credentials set {name})",
                line=line_of(report.text, path),
                node_id=node.id,
                field="params",
                path=path,
            )
        )
    return problems


def read_workflow_file(path: Path) -> str:
    """Return the text of a workflow file (exits with status 2 when it cannot be read)."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            fail(f"{path}: file is larger than {MAX_FILE_BYTES} bytes", 2)
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        fail(f"{path}: no such file", 2)
    except UnicodeDecodeError:
        fail(f"{path}: file is not valid UTF-8", 2)
    except OSError as exc:
        fail(f"{path}: cannot read: {exc.strerror or exc}", 2)


def print_problems(console: Console, report: Report) -> None:
    """Print each problem as ``FILE:LINE: [code] node 'x' field: message`` plus context."""
    lines = report.text.splitlines()
    for problem in report.problems:
        where = report.file
        if problem.line is not None:
            where += f":{problem.line}"
            if problem.column is not None:
                where += f":{problem.column}"
        subject = ""
        if problem.node_id:
            subject += f"node {problem.node_id!r} "
        if problem.field:
            subject += f"{problem.field}: "
        elif subject:
            subject = subject.rstrip() + ": "
        console.print(
            f"[bold]{escape(where)}:[/] [red]\\[{escape(problem.code)}][/] "
            f"{escape(subject)}{escape(problem.message)}",
            highlight=False,
            soft_wrap=True,
        )
        if problem.line is not None and 0 < problem.line <= len(lines):
            source_line = lines[problem.line - 1]
            gutter = f"{problem.line:>5} | "
            console.print(f"[dim]{escape(gutter)}[/]{escape(source_line)}", highlight=False)
            if problem.column is not None:
                start = problem.column - 1
                token = re.match(r"[^\s,\]}:]+", source_line[start:])
                width = problem.length or (len(token.group()) if token else 1)
            else:
                start = len(source_line) - len(source_line.lstrip())
                width = max(1, len(source_line.rstrip()) - start)
            marker = " " * start + "^" * width
            console.print(f"[dim]{' ' * 5} | [/][red]{marker}[/]", highlight=False)


def summary(wf: Workflow) -> dict[str, Any]:
    """Return ``{name, nodes, edges}`` for a valid workflow."""
    from flowplane.model.graph import Graph

    graph = Graph.from_workflow(wf)
    edges = sum(len(graph.upstream(node_id)) for node_id in graph.node_ids)
    return {"name": wf.name, "nodes": len(graph), "edges": edges}


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def validate_command(
    files: Annotated[
        list[Path], typer.Argument(help="Workflow files (YAML or JSON).", show_default=False)
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON report instead of text.")
    ] = False,
    plugin: Annotated[
        list[str] | None,
        typer.Option("--plugin", help="Import connectors from this module (repeatable)."),
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            help="Check the credentials the workflows use against this server's.",
            show_default=False,
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option("--token", envvar="FLOWPLANE_TOKEN", help="API key for --server."),
    ] = None,
) -> None:
    """Check workflow files: syntax, fields, graph, connector params and templates, every
    problem in one pass; warn about the credentials they use that are not set (in this
    environment, or with --server on that server)."""
    registry = build_registry(plugin)
    console = Console(highlight=False, soft_wrap=True)
    reports = [check_text(read_workflow_file(path), str(path), registry) for path in files]
    warnings = {r.file: credential_warnings(r, server, token) for r in reports}
    if as_json:
        data = []
        for report in reports:
            entry: dict[str, Any] = {
                "file": report.file,
                "valid": report.valid,
                "errors": [p.to_dict() for p in report.problems],
                "warnings": [p.to_dict() for p in warnings[report.file]],
            }
            if report.valid and report.workflow is not None:
                entry.update(summary(report.workflow))
            data.append(entry)
        print(json.dumps(data[0] if len(data) == 1 else data, indent=2, ensure_ascii=False))
    else:
        for report in reports:
            if report.valid and report.workflow is not None:
                info = summary(report.workflow)
                console.print(
                    f"[green]✓[/] {escape(report.file)}: valid — workflow "
                    f"[bold]{escape(info['name'])}[/], {_plural(info['nodes'], 'node')}, "
                    f"{_plural(info['edges'], 'edge')}"
                )
                for warning in warnings[report.file]:
                    where = f"{report.file}:{warning.line}" if warning.line else report.file
                    console.print(
                        f"[bold]{escape(where)}:[/] [yellow]warning \\[{warning.code}][/] "
                        f"node {warning.node_id!r}: {escape(warning.message)}"
                    )
            else:
                print_problems(console, report)
                count = _plural(len(report.problems), "problem")
                console.print(f"[red]✗[/] {escape(report.file)}: {count}")
    raise typer.Exit(EXIT_OK if all(r.valid for r in reports) else EXIT_FAILED)


def register(app: typer.Typer) -> None:
    """Add ``flowplane validate``."""
    app.command("validate")(validate_command)
