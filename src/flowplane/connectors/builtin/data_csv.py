"""``data.csv_parse`` and ``data.csv_format``."""

from __future__ import annotations

import csv
import io
from typing import Any

from flowplane.connectors.base import NodeContext, connector
from flowplane.connectors.builtin._format_input import TEXT, cell_text, invalid
from flowplane.connectors.builtin._schemas import obj, out, prop
from flowplane.errors import ConnectorError

MAX_CSV_ROWS = 100_000
DELIMITER = prop(
    "string", "Field delimiter (one character).", minLength=1, maxLength=1, default=","
)


@connector(
    "data.csv_parse",
    name="Parse CSV",
    category="data",
    kind="transform",
    description="Parse CSV text into rows (objects keyed by the header, or lists).",
    input_schema=obj(
        {
            "text": TEXT,
            "delimiter": DELIMITER,
            "header": prop("boolean", "The first row holds column names.", default=True),
            "skip_empty": prop("boolean", "Skip blank lines.", default=True),
        },
        ["text"],
    ),
    output_schema=out(
        {
            "rows": prop("array", "Rows: objects with header, lists without."),
            "columns": prop("array", "Column names (empty without header)."),
            "count": prop("integer", "Number of rows."),
        }
    ),
    examples=[
        {"text": "id,name\n1,Ada\n2,Linus\n"},
        {"text": "1;2\n3;4", "delimiter": ";", "header": False},
    ],
)
async def csv_parse(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Parse ``text`` as CSV."""
    reader = csv.reader(io.StringIO(params["text"]), delimiter=params.get("delimiter", ","))
    rows: list[list[str]] = []
    try:
        for row in reader:
            if not row and params.get("skip_empty", True):
                continue
            rows.append(row)
            if len(rows) > MAX_CSV_ROWS + 1:
                raise ConnectorError(f"more than {MAX_CSV_ROWS} CSV rows", retryable=False)
    except csv.Error as exc:
        raise invalid("CSV", exc) from exc
    if not params.get("header", True):
        return {"rows": rows, "columns": [], "count": len(rows)}
    if not rows:
        return {"rows": [], "columns": [], "count": 0}
    columns = rows[0]
    records = [
        {name: (row[i] if i < len(row) else None) for i, name in enumerate(columns)}
        for row in rows[1:]
    ]
    return {"rows": records, "columns": columns, "count": len(records)}


@connector(
    "data.csv_format",
    name="Format CSV",
    category="data",
    kind="transform",
    description="Serialise rows (objects or lists) to CSV text with a header line.",
    input_schema=obj(
        {
            "rows": prop(
                "array",
                "Rows: objects (keys become columns) or lists.",
                items={"type": ["object", "array"]},
            ),
            "columns": prop(
                "array",
                "Column order (default: keys in order of appearance).",
                items={"type": "string"},
            ),
            "delimiter": DELIMITER,
            "header": prop("boolean", "Write a header line (object rows).", default=True),
        },
        ["rows"],
    ),
    output_schema=out(
        {"text": prop("string", "The CSV text."), "count": prop("integer", "Rows written.")}
    ),
    examples=[{"rows": [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Linus"}]}],
)
async def csv_format(params: dict[str, Any], ctx: NodeContext) -> Any:
    """Serialise ``rows`` as CSV."""
    rows: list[Any] = params["rows"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=params.get("delimiter", ","), lineterminator="\n")
    columns: list[str] = list(params.get("columns") or [])
    if not columns:
        for row in rows:
            if isinstance(row, dict):
                columns.extend(key for key in row if key not in columns)
    if columns and params.get("header", True):
        writer.writerow(columns)
    for row in rows:
        if isinstance(row, dict):
            writer.writerow([cell_text(row.get(name)) for name in columns])
        else:
            writer.writerow([cell_text(value) for value in row])
    return {"text": buffer.getvalue(), "count": len(rows)}
