"""Rendered run documents whose only moving part is the clock.

A live run's detail and a page of run summaries change between two reads of the database
only in ``durationMs`` of what is still running (``now - startedAtMs``). The run cache keeps
their records until a change is announced (:mod:`flowplane.services.run_cache`); rendering
them again through pydantic for every answer would cost most of what the cache saves. A
:class:`Template` is the document rendered once with a unique placeholder number in each
moving ``durationMs``, cut at the placeholders: an answer joins the pieces with the
durations of the moment, the very bytes a fresh rendering would write.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

from flowplane.api.run_pages import CAPPED_FIELDS
from flowplane.api.run_views import describe, run_fields
from flowplane.client.models import Run
from flowplane.ids import now_ms
from flowplane.services.runs import RunRecord, RunSnapshot
from flowplane.status import TERMINAL_NODE, TERMINAL_RUN

__all__ = ["Template", "cached_body", "detail_template", "list_template", "render_runs"]

_RUN_KEYS: tuple[tuple[str, str], ...] = tuple(
    (name, field.alias or name) for name, field in Run.model_fields.items()
)
"""``(field, wire key)`` of the list model, in its order."""


class Template:
    """A rendered document cut where running durations go (see the module doc)."""

    __slots__ = ("_body", "_ms", "pieces", "starts")

    def __init__(self, pieces: list[bytes], starts: list[int]) -> None:
        self.pieces = pieces
        """The bytes around the durations (one more than :attr:`starts`)."""
        self.starts = starts
        """``startedAtMs`` of each running duration, in document order."""
        self._body = pieces[0] if not starts else b""
        self._ms = -1

    def body(self, now: int | None = None) -> bytes:
        """The document at ``now`` (epoch ms; default: the clock)."""
        if not self.starts:
            return self._body
        now = now_ms() if now is None else now
        if now != self._ms:  # (exact for the millisecond it was made in)
            out = [self.pieces[0]]
            for start, piece in zip(self.starts, self.pieces[1:], strict=True):
                out.append(str(max(0, now - start)).encode())
                out.append(piece)
            self._body, self._ms = b"".join(out), now
        return self._body


class _Marks:
    """Unique placeholder numbers for the running durations of one rendering."""

    def __init__(self) -> None:
        # 16 digits, random per rendering: a number in a user's output that happens to
        # equal one is found by cut() (it occurs twice) and the template is not used.
        self.base = 1_000_000_000_000_000 + secrets.randbelow(8_000_000_000_000_000)
        self.starts: list[int] = []

    def mark(
        self, started: int | None, finished: int | None, running: bool, current: int | None
    ) -> int | None:
        """A placeholder for a duration that grows with the clock, else ``current`` (the
        rule of :func:`~flowplane.services.run_reads.duration_ms`)."""
        if not running or started is None or finished is not None:
            return current
        self.starts.append(started)
        return self.base + len(self.starts) - 1

    def cut(self, raw: bytes) -> Template | None:
        """``raw`` cut at the placeholders, or ``None`` if one is not found exactly once."""
        pieces: list[bytes] = []
        at = 0
        for index in range(len(self.starts)):
            token = str(self.base + index).encode()
            found = raw.find(token, at)
            if found < 0 or raw.count(token) != 1:
                return None
            pieces.append(raw[at:found])
            at = found + len(token)
        pieces.append(raw[at:])
        return Template(pieces, list(self.starts))


def detail_template(snapshot: RunSnapshot) -> Template | None:
    """The template of ``GET /v1/runs/{id}`` for a (not capped) snapshot; ``None`` when the
    document cannot be cut (render it whole each time)."""
    run, nodes, _attempts = snapshot
    detail = describe(*snapshot)
    marks = _Marks()
    running = run.status not in TERMINAL_RUN
    detail.duration_ms = marks.mark(
        run.started_at_ms, run.finished_at_ms, running, detail.duration_ms
    )
    for state, node in zip(detail.nodes, nodes, strict=True):
        running = node.status.value not in TERMINAL_NODE
        state.duration_ms = marks.mark(
            node.started_at_ms, node.finished_at_ms, running, state.duration_ms
        )
    return marks.cut(detail.model_dump_json(by_alias=True, exclude=CAPPED_FIELDS).encode())


def list_template(runs: list[RunRecord]) -> Template | None:
    """The template of a ``GET /v1/runs`` page; ``None`` when it cannot be cut."""
    marks = _Marks()
    out: list[dict[str, Any]] = []
    for run in runs:
        fields = run_fields(run)
        running = run.status not in TERMINAL_RUN
        fields["duration_ms"] = marks.mark(
            run.started_at_ms, run.finished_at_ms, running, fields["duration_ms"]
        )
        out.append({key: fields.get(name) for name, key in _RUN_KEYS})
    return marks.cut(_dumps(out))


def render_runs(runs: list[RunRecord]) -> bytes:
    """The JSON body of ``GET /v1/runs``: the list models of ``runs``, serialised straight
    from their fields (what pydantic writes for ``list[Run]``, without building and
    validating a model per run)."""
    rows = [run_fields(run) for run in runs]
    return _dumps([{key: fields.get(name) for name, key in _RUN_KEYS} for fields in rows])


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def cached_body(
    entry: Any, make: Callable[[], Template | None], render: Callable[[], bytes]
) -> bytes:
    """The answer of a cached entry with a ``view`` slot: its template's body at this
    moment (made on first use), or, when the document cannot be cut, a full rendering."""
    view = entry.view
    if view is None:
        view = entry.view = make() or False
    return view.body() if view else render()
