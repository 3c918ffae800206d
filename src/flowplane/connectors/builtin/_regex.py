"""Regular expressions with size and time budgets (user patterns on user text)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flowplane.errors import ConnectorError

MAX_PATTERN_CHARS = 1_000
MAX_REGEX_INPUT_CHARS = 1_000_000
REGEX_TIMEOUT_SECONDS = 1.0


def compile_regex(pattern: str, flags: Iterable[str] = ()) -> Any:
    """Compile ``pattern`` with the ``regex`` engine (which supports match timeouts).

    Args:
        pattern: the regular expression (at most ``MAX_PATTERN_CHARS`` characters).
        flags: any of ``ignorecase``, ``multiline``, ``dotall``.

    Raises:
        ConnectorError: (not retryable) the pattern is too long or invalid.
    """
    import regex

    if len(pattern) > MAX_PATTERN_CHARS:
        raise ConnectorError(
            f"pattern is longer than {MAX_PATTERN_CHARS} characters", retryable=False
        )
    value = 0
    names = {"ignorecase": regex.IGNORECASE, "multiline": regex.MULTILINE, "dotall": regex.DOTALL}
    for flag in flags:
        value |= names[flag]
    try:
        return regex.compile(pattern, value | regex.VERSION0)
    except regex.error as exc:
        raise ConnectorError(f"invalid regular expression: {exc}", retryable=False) from exc


def check_regex_input(text: str) -> None:
    """Refuse a regex subject longer than ``MAX_REGEX_INPUT_CHARS``."""
    if len(text) > MAX_REGEX_INPUT_CHARS:
        raise ConnectorError(
            f"text is longer than {MAX_REGEX_INPUT_CHARS} characters", retryable=False
        )


def regex_timeout_error(exc: BaseException) -> ConnectorError:
    """Return the error for a regex that ran past its time budget."""
    return ConnectorError(
        f"regular expression took longer than {REGEX_TIMEOUT_SECONDS}s (catastrophic "
        "backtracking?)",
        retryable=False,
    )


def safe_search(pattern: str, text: str) -> bool:
    """Whether ``pattern`` matches anywhere in ``text``, within the size and time budget."""
    compiled = compile_regex(pattern)
    check_regex_input(text)
    try:
        return compiled.search(text, timeout=REGEX_TIMEOUT_SECONDS) is not None
    except TimeoutError as exc:
        raise regex_timeout_error(exc) from exc
