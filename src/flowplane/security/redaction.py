"""Redaction: keeping secret values out of records, error text, audit details and logs.

Every way Flowplane hides a secret lives here, so that a newcomer looking for "where do
secrets get scrubbed" finds one module:

- :class:`Redactor`: a node run's resolved secret values, in every encoded form (plain,
  base64, URL-encoded), replaced with ``[REDACTED]`` in the run's outputs, logs, events and
  errors (the worker builds one per node run).
- :func:`mask_values`: the short form for error text a connector or a template builds
  itself from values it knows (a password, a URL with a token), replaced with ``***``.
- :func:`redact_keys`: JSON details with sensitive-looking keys replaced with
  ``[REDACTED]`` and long strings cut (the audit log).
- :func:`remember_in_logs`: libraries a connector uses log on their own, though: httpx
  logs every request URL at INFO (a token in a query string), httpcore logs response
  headers at DEBUG (an echoed ``Authorization``). Once a secret value has been resolved in
  this process it is remembered here, and a log record factory replaces it (all the forms a
  :class:`Redactor` knows) in every record created afterwards, whatever logger or handler is
  involved. Only values this process resolved are remembered, at most
  :data:`MAX_REMEMBERED` of them (least recently used dropped first); they were in this
  process's memory anyway.
"""

from __future__ import annotations

import base64
import logging
import threading
import urllib.parse
from collections import OrderedDict
from collections.abc import Collection, Iterable
from typing import Any

REDACTED = "[REDACTED]"
MIN_REDACT_LENGTH = 4
MASK = "***"
MIN_MASK_LENGTH = 3
MAX_REMEMBERED = 1024


class Redactor:
    """Replaces secret values (plain, base64 and URL-encoded) with ``[REDACTED]``."""

    def __init__(self, values: Iterable[str]) -> None:
        forms: set[str] = set()
        for value in values:
            if len(value) < MIN_REDACT_LENGTH:
                continue
            raw = value.encode()
            forms.update(
                {
                    value,
                    base64.b64encode(raw).decode(),
                    base64.b64encode(raw).decode().rstrip("="),
                    base64.urlsafe_b64encode(raw).decode().rstrip("="),
                    urllib.parse.quote(value, safe=""),
                    # Jinja's urlencode filter and URLs keep "/" (quote's default).
                    urllib.parse.quote(value),
                    urllib.parse.quote_plus(value),
                }
            )
        # Longest first, so a value containing another is replaced whole.
        self._forms = sorted(
            (f for f in forms if len(f) >= MIN_REDACT_LENGTH), key=len, reverse=True
        )

    def text(self, text: str) -> str:
        """Return ``text`` with every secret form replaced."""
        for form in self._forms:
            if form in text:
                text = text.replace(form, REDACTED)
        return text

    def value(self, value: Any) -> Any:
        """Return ``value`` (JSON-like) with secrets replaced in every string."""
        if not self._forms:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value


def mask_values(text: str, values: Iterable[str | None]) -> str:
    """Return ``text`` with every value (of at least ``MIN_MASK_LENGTH`` chars) replaced by ``***``.

    Args:
        text: error text built from, or echoing, the values.
        values: the values to hide; ``None`` and empty ones are skipped.
    """
    for value in values:
        if value and len(value) >= MIN_MASK_LENGTH:
            text = text.replace(value, MASK)
    return text


def redact_keys(value: Any, keys: Collection[str], max_string_chars: int) -> Any:
    """Return ``value`` with the values of ``keys`` replaced and long strings cut.

    Args:
        value: JSON-like data (dicts, lists, scalars).
        keys: lower-case key names whose values are replaced with ``[REDACTED]`` at any depth
            (a key matches case-insensitively).
        max_string_chars: longer strings are cut to this length and end with ``…``.
    """
    if isinstance(value, dict):
        return {
            str(k): (REDACTED if str(k).lower() in keys else redact_keys(v, keys, max_string_chars))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_keys(v, keys, max_string_chars) for v in value]
    if isinstance(value, str) and len(value) > max_string_chars:
        return value[:max_string_chars] + "…"
    return value


# --- the process's log records ------------------------------------------------------------

_lock = threading.Lock()
_remembered: OrderedDict[str, None] = OrderedDict()
_log_redactor = Redactor(())
_installed = False


def remember_in_logs(values: Iterable[str]) -> None:
    """Redact ``values`` from every log record created from now on (installs the factory)."""
    global _log_redactor
    new = [v for v in values if v]
    if not new:
        return
    with _lock:
        changed = False
        for value in new:
            if value not in _remembered:
                changed = True
            _remembered[value] = None
            _remembered.move_to_end(value)
        while len(_remembered) > MAX_REMEMBERED:
            _remembered.popitem(last=False)
            changed = True
        if changed:
            _log_redactor = Redactor(list(_remembered))
    install_log_factory()


def install_log_factory() -> None:
    """Wrap the log record factory once per process (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
        previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if not _remembered:
            return record
        redactor = _log_redactor
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
