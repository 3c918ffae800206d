"""JSON log lines (``FLOWPLANE_LOG_FORMAT=json``): one object a line on stderr.

A standard-library :class:`logging.Formatter`, not structlog: every module of Flowplane and
of its libraries (uvicorn, SQLAlchemy, httpx) logs through the standard library, so one
formatter on the root handler turns every record into JSON without touching a call site,
and the secret-redacting record factory of :mod:`flowplane.security.redaction` has already
cleaned each message (and traceback) before it gets here.

Fields: ``ts`` (ISO-8601, UTC, milliseconds), ``level``, ``logger``, ``message``; where
known, ``requestId`` (the HTTP request), ``runId``, ``nodeId`` and ``iteration`` (the node
run a worker executes), ``traceId`` and ``spanId`` (with OpenTelemetry on); ``exc`` for an
exception's traceback. Nothing else from a record is copied, so ``extra=`` values never
reach the log by accident.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from flowplane.engine.log_context import iteration_var, node_id_var, run_id_var
from flowplane.services.context import request_id_var


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object (see the module docstring for the fields)."""

    def format(self, record: logging.LogRecord) -> str:
        seconds = int(record.created)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        data: dict[str, Any] = {
            "ts": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id is not None:
            data["requestId"] = request_id
        run_id = run_id_var.get()
        if run_id is not None:
            data["runId"] = run_id
            data["nodeId"] = node_id_var.get()
            data["iteration"] = iteration_var.get()
        trace = sys.modules.get("opentelemetry.trace")
        if trace is not None:
            context = trace.get_current_span().get_span_context()
            if context.is_valid:
                data["traceId"] = f"{context.trace_id:032x}"
                data["spanId"] = f"{context.span_id:016x}"
        if record.exc_info:
            data["exc"] = record.exc_text or self.formatException(record.exc_info)
        elif record.exc_text:
            data["exc"] = record.exc_text
        return json.dumps(data, default=str, ensure_ascii=False)
