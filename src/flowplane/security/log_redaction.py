"""Keep resolved secret values out of the process's log records.

Node outputs, node logs, events and errors are redacted by the worker (``engine/secrets.py``).
Libraries a connector uses log on their own, though: httpx logs every request URL at INFO
(a token in a query string), httpcore logs response headers at DEBUG (an echoed
``Authorization``). Once a secret value has been resolved in this process it is remembered
here, and a log record factory replaces it (plain, base64 and URL-encoded forms) in every
record created afterwards, whatever logger or handler is involved.

Only values this process resolved are remembered, at most :data:`MAX_REMEMBERED` of them
(least recently used dropped first); they were in this process's memory anyway.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from flowplane.engine.secrets import Redactor

MAX_REMEMBERED = 1024

_lock = threading.Lock()
_values: OrderedDict[str, None] = OrderedDict()
_redactor = Redactor(())
_installed = False


def remember(values: Iterable[str]) -> None:
    """Redact ``values`` from every log record created from now on (installs the factory)."""
    global _redactor
    new = [v for v in values if v]
    if not new:
        return
    with _lock:
        changed = False
        for value in new:
            if value not in _values:
                changed = True
            _values[value] = None
            _values.move_to_end(value)
        while len(_values) > MAX_REMEMBERED:
            _values.popitem(last=False)
            changed = True
        if changed:
            _redactor = Redactor(list(_values))
    install()


def forget_all() -> None:
    """Forget every remembered value (tests)."""
    global _redactor
    with _lock:
        _values.clear()
        _redactor = Redactor(())


def redact(text: str) -> str:
    """Return ``text`` with every remembered value replaced."""
    return _redactor.text(text)


def install() -> None:
    """Wrap the log record factory once per process (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
        previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if not _values:
            return record
        redactor = _redactor
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the logging machinery
            return record
        clean = redactor.text(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            # Format the traceback now, redacted; handlers reuse ``exc_text``.
            record.exc_text = redactor.text(logging.Formatter().formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(factory)
