"""Rich rendering for the CLI: live node-by-node progress of a run, outputs and errors.

:class:`ProgressView` turns the events of a run (and of its child runs) into one status row
per node run. On a terminal the rows update in place (``rich.live``); elsewhere each change
is printed as one line, which keeps CI logs readable.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from flowplane.status import TERMINAL_NODE

# status -> (symbol, style, label)
STATUS_STYLES: dict[str, tuple[str, str, str]] = {
    "pending": ("·", "dim", "pending"),
    "ready": ("○", "cyan", "ready"),
    "in-progress": ("●", "yellow", "running"),
    "retrying": ("↻", "yellow", "retrying"),
    "waiting-approval": ("?", "magenta", "waiting approval"),
    "waiting-event": ("…", "magenta", "waiting"),
    "waiting-timer": ("⏲", "blue", "timer"),
    "finished": ("✓", "green", "finished"),
    "failed": ("✗", "red", "failed"),
    "skipped": ("-", "dim", "skipped"),
    "cancelled": ("⊘", "dim", "cancelled"),
}
RUN_STYLES: dict[str, str] = {
    "finished": "bold green",
    "failed": "bold red",
    "cancelled": "bold yellow",
    "timed-out": "bold red",
}
LIVE_REFRESH_PER_SECOND = 8
DETAIL_CHARS = 120


@dataclass
class NodeRow:
    """What the view knows about one node run."""

    run_id: str
    node_id: str
    iteration: int
    label: str
    type: str
    status: str = "pending"
    attempt: int = 0
    started_ms: int | None = None
    ended_ms: int | None = None
    detail: str = ""


@dataclass
class _RunInfo:
    """A run shown in the view: its label prefix and its foreach nodes."""

    prefix: str
    types: dict[str, str]
    foreach: set[str] = field(default_factory=set)
    status: str = "running"


def _short(text: str, limit: int = DETAIL_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_seconds(seconds: float) -> str:
    """Return ``seconds`` as ``830ms``, ``4.2s`` or ``3m05s``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s"


def _clock(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000).strftime("%H:%M:%S")


def error_message(error: Any) -> str:
    """Return the message of an error payload (``{code, message}`` or a string)."""
    if isinstance(error, dict):
        message = error.get("message") or error.get("code") or json.dumps(error)
        return str(message)
    return str(error or "")


class ProgressView:
    """Renders run events: a live table on a terminal, one line per change elsewhere.

    Args:
        console: where to render (stdout).
        live: update rows in place; when false, print one line per status change.
    """

    def __init__(self, console: Console, *, live: bool) -> None:
        self.console = console
        self.rows: list[NodeRow] = []
        self._index: dict[tuple[str, str, int], NodeRow] = {}
        self._runs: dict[str, _RunInfo] = {}
        self._main_run: str | None = None
        self._closed = False
        self._live: Live | None = None
        if live:
            self._live = Live(
                get_renderable=self.render,
                console=console,
                refresh_per_second=LIVE_REFRESH_PER_SECOND,
                transient=True,
            )

    # --- runs ---------------------------------------------------------------------------

    def add_run(
        self, run_id: str, document: dict[str, Any], *, parent_label: str | None = None
    ) -> None:
        """Show ``run_id``: one pending row per node of its ``document``.

        Args:
            run_id: the run.
            document: its pinned workflow document.
            parent_label: for a child run, the label of the parent node it runs under.
        """
        if run_id in self._runs:
            return
        nodes = [n for n in document.get("nodes") or [] if isinstance(n, dict)]
        info = _RunInfo(
            prefix=f"{parent_label} › " if parent_label else "",
            types={str(n.get("id")): str(n.get("type", "")) for n in nodes},
            foreach={str(n.get("id")) for n in nodes if n.get("foreach") is not None},
        )
        self._runs[run_id] = info
        if self._main_run is None:
            self._main_run = run_id
            name = document.get("name", "?")
            self.console.print(
                f"[bold]Run[/] {run_id} · workflow [bold]{escape(str(name))}[/]", highlight=False
            )
        position = self._insert_position(parent_label)
        for node_id in info.types:
            iteration = -1 if node_id in info.foreach else 0
            row = self._new_row(run_id, node_id, iteration)
            self.rows.insert(position, row)
            position += 1

    def _insert_position(self, parent_label: str | None) -> int:
        if not parent_label:
            return len(self.rows)
        position = len(self.rows)
        for i, row in enumerate(self.rows):
            if row.label == parent_label or row.label.startswith(parent_label + " › "):
                position = i + 1
        return position

    def _new_row(self, run_id: str, node_id: str, iteration: int) -> NodeRow:
        info = self._runs[run_id]
        suffix = f"[{iteration}]" if node_id in info.foreach and iteration >= 0 else ""
        row = NodeRow(
            run_id=run_id,
            node_id=node_id,
            iteration=iteration,
            label=f"{info.prefix}{node_id}{suffix}",
            type=info.types.get(node_id, ""),
        )
        self._index[(run_id, node_id, iteration)] = row
        return row

    def row(self, run_id: str, node_id: str, iteration: int) -> NodeRow:
        """Return the row of a node run, creating it (after its siblings) when new."""
        key = (run_id, node_id, iteration)
        existing = self._index.get(key)
        if existing is not None:
            return existing
        if run_id not in self._runs:
            self._runs[run_id] = _RunInfo(prefix=f"{run_id[:8]} › ", types={})
        row = self._new_row(run_id, node_id, iteration)
        position = len(self.rows)
        for i, other in enumerate(self.rows):
            if other.run_id == run_id and other.node_id == node_id:
                position = i + 1
        self.rows.insert(position, row)
        return row

    def label_of(self, run_id: str, node_id: str, iteration: int) -> str:
        """Return the label a node run is shown with."""
        return self.row(run_id, node_id, iteration).label

    # --- events -------------------------------------------------------------------------

    def handle(self, event: dict[str, Any]) -> None:
        """Update the view with one event."""
        kind = str(event.get("type", ""))
        run_id = str(event.get("runId", ""))
        node_id = event.get("nodeId")
        if node_id is None:
            self._run_event(run_id, kind, event)
            return
        row = self.row(run_id, str(node_id), int(event.get("iteration") or 0))
        at = int(event.get("timestampMs") or time.time() * 1000)
        if kind == "NodeLog":
            level = str(event.get("level", "info"))
            style = {"error": "red", "warning": "yellow"}.get(level, "dim")
            message = escape(str(event.get("message", "")))
            self.message(f"  [{style}]│ {escape(row.label)}: {message}[/]")
            return
        if kind in ("ApprovalGranted", "ApprovalDenied"):
            verb = "approved" if kind == "ApprovalGranted" else "denied"
            by = f" by {event['decidedBy']}" if event.get("decidedBy") else ""
            note = f": {event['note']}" if event.get("note") else ""
            self.message(f"  [magenta]│ {escape(row.label)} {verb}{escape(by + note)}[/]")
            return
        if self._node_event(row, kind, event, at):
            self._changed(row)

    def _node_event(self, row: NodeRow, kind: str, event: dict[str, Any], at: int) -> bool:
        """Apply a node event to ``row``; return whether its status line changed."""
        if kind == "NodeReady":
            if row.status == "retrying":
                return False  # NodeRetrying already said when it runs again
            row.status, row.detail = "ready", ""
        elif kind == "NodeStarted":
            row.status, row.detail = "in-progress", ""
            row.attempt = int(event.get("attempt") or row.attempt or 1)
            row.started_ms, row.ended_ms = row.started_ms or at, None
        elif kind == "NodeFinished":
            row.status, row.ended_ms, row.detail = "finished", at, ""
            row.attempt = int(event.get("attempt") or row.attempt)
        elif kind == "NodeFailed":
            message = _short(error_message(event.get("error")))
            row.attempt = int(event.get("attempt") or row.attempt)
            if event.get("willRetry"):
                # NodeRetrying follows in the same transaction and prints the line.
                row.status, row.detail = "retrying", f"attempt {row.attempt} failed: {message}"
                return False
            else:
                row.status, row.ended_ms, row.detail = "failed", at, message
        elif kind == "NodeRetrying":
            delay = int(event.get("delayMs") or 0) / 1000
            row.status = "retrying"
            retry = f"retry #{event.get('attempt')} in {format_seconds(delay)}"
            row.detail = f"{row.detail}; {retry}" if row.detail else retry
        elif kind == "NodeSkipped":
            reason = event.get("reason")
            row.status, row.ended_ms = "skipped", at
            row.detail = {"when": "when was false", "trigger_rule": "trigger rule"}.get(
                str(reason), str(reason or "")
            )
        elif kind == "NodeWaitingApproval":
            row.status, row.detail = "waiting-approval", _short(str(event.get("title", "")))
        elif kind == "NodeWaitingEvent":
            row.status = "waiting-event"
            if event.get("childRunId"):
                row.detail = f"child run {event['childRunId']}"
            else:
                correlation = event.get("correlationId")
                extra = f" (correlation id {correlation})" if correlation else ""
                row.detail = f"signal {event.get('signal')!r}{extra}"
        elif kind == "NodeWaitingTimer":
            fires = event.get("firesAtMs")
            row.status = "waiting-timer"
            row.detail = f"fires at {_clock(int(fires))}" if fires else ""
        elif kind == "NodeCancelled":
            row.status, row.ended_ms = "cancelled", at
        else:
            return False
        return True

    def _run_event(self, run_id: str, kind: str, event: dict[str, Any]) -> None:
        info = self._runs.get(run_id)
        if info is None:
            return
        if kind == "RunStatusChanged":
            info.status = str(event.get("status", info.status))
        elif kind in ("RunFinished", "RunFailed", "RunCancelled", "RunTimedOut"):
            info.status = {
                "RunFinished": "finished",
                "RunFailed": "failed",
                "RunCancelled": "cancelled",
                "RunTimedOut": "timed-out",
            }[kind]
            if kind in ("RunCancelled", "RunTimedOut"):
                at = int(event.get("timestampMs") or time.time() * 1000)
                for row in self.rows:
                    if row.run_id == run_id and row.status not in TERMINAL_NODE:
                        row.status, row.ended_ms = "cancelled", at
                        self._changed(row)
        elif kind == "SignalReceived":
            self.message(f"  [magenta]│ signal {escape(repr(event.get('name')))} received[/]")

    # --- rendering ----------------------------------------------------------------------

    def _changed(self, row: NodeRow) -> None:
        if self._live is None:
            self.console.print(self.row_line(row), highlight=False)

    def message(self, markup: str) -> None:
        """Print one line above the live table (or in the flow of lines)."""
        self.console.print(markup, highlight=False)

    def row_line(self, row: NodeRow) -> Text:
        """Return the one-line form of ``row`` (line mode)."""
        symbol, style, label = STATUS_STYLES.get(row.status, ("?", "", row.status))
        line = Text()
        line.append(f"{symbol} ", style=style)
        line.append(row.label, style="bold")
        line.append(f" {label}", style=style)
        if row.attempt > 1:
            line.append(f" (attempt {row.attempt})", style="yellow")
        elapsed = self._elapsed(row)
        if elapsed and row.status in TERMINAL_NODE:
            line.append(f" {elapsed}", style="dim")
        if row.detail:
            line.append(f" — {row.detail}", style="dim" if row.status != "failed" else "red")
        return line

    def _elapsed(self, row: NodeRow) -> str:
        if row.started_ms is None:
            return ""
        end = row.ended_ms if row.ended_ms is not None else int(time.time() * 1000)
        return format_seconds(max(0, end - row.started_ms) / 1000)

    def render(self) -> RenderableType:
        """Return the status table."""
        table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 1))
        # Fixed minimum widths keep the short columns whole; only the detail is cut.
        table.add_column(width=2, no_wrap=True)
        table.add_column(style="bold", no_wrap=True, min_width=self._widest("label"))
        table.add_column(style="dim", no_wrap=True, min_width=self._widest("type"))
        table.add_column(no_wrap=True, min_width=20)
        table.add_column(justify="right", style="dim", no_wrap=True, min_width=6)
        table.add_column(overflow="ellipsis", no_wrap=True, ratio=1)
        for row in self.rows:
            symbol, style, label = STATUS_STYLES.get(row.status, ("?", "", row.status))
            mark: RenderableType = Text(symbol, style=style)
            if row.status == "in-progress":
                mark = Spinner("dots", style=style)
            status = Text(label, style=style)
            if row.attempt > 1:
                status.append(f" #{row.attempt}", style="yellow")
            detail = Text(row.detail, style="red" if row.status == "failed" else "dim")
            table.add_row(mark, row.label, row.type, status, self._elapsed(row), detail)
        main = self._runs.get(self._main_run or "")
        if main is not None:
            table.caption = f"run {main.status}"
            table.caption_style = RUN_STYLES.get(main.status, "dim")
            table.caption_justify = "left"
        return table

    def _widest(self, attribute: str) -> int:
        return max((len(str(getattr(row, attribute))) for row in self.rows), default=4)

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Start live rendering (no-op in line mode)."""
        if self._live is not None and not self._closed:
            self._live.start()

    def stop(self) -> None:
        """Stop live rendering for good and leave the final table on screen."""
        if self._closed:
            return
        self._closed = True
        if self._live is not None:
            if self._live.is_started:
                self._live.stop()
            self.console.print(self.render())

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Suspend live rendering (for a prompt), then resume it unless stopped meanwhile."""
        live = self._live
        if live is None or not live.is_started:
            yield
            return
        live.stop()
        try:
            yield
        finally:
            if not self._closed:
                live.start()


def print_json(console: Console, value: Any) -> None:
    """Print ``value`` as indented JSON (coloured on a terminal, plain otherwise)."""
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    if console.is_terminal:
        console.print_json(text)
    else:
        console.print(text, markup=False, highlight=False, soft_wrap=True)


def print_result(console: Console, run: dict[str, Any]) -> None:
    """Print the final status, error and outputs of ``run``."""
    status = str(run.get("status"))
    took = ""
    started, finished = run.get("started_at_ms"), run.get("finished_at_ms")
    if isinstance(started, int) and isinstance(finished, int):
        took = f" in {format_seconds((finished - started) / 1000)}"
    style = RUN_STYLES.get(status, "bold")
    console.print(f"[{style}]Run {run.get('id')} {status}{took}[/]", highlight=False)
    if run.get("error"):
        console.print(f"[red]{escape(error_message(run['error']))}[/]", highlight=False)
    output = run.get("output")
    if output not in (None, {}) or status == "finished":
        console.print("[bold]Outputs:[/]")
        print_json(console, output)


UNBOUNDED_WIDTH = 10_000


def print_table(console: Console, table: Table) -> None:
    """Print ``table`` with no cell cut: when it is wider than the terminal, the lines are
    left longer (the terminal wraps them) rather than ids shortened to ``…``."""
    from rich.measure import Measurement

    needed = Measurement.get(console, console.options.update(width=UNBOUNDED_WIDTH), table).maximum
    if needed <= console.width:
        console.print(table)
    else:  # a console as wide as the table, writing where this one writes
        wide = Console(
            file=console.file,
            width=needed,
            force_terminal=console.is_terminal,
            no_color=console.no_color,
            highlight=False,
        )
        wide.print(table, crop=False)
