"""Helpers shared by the built-in connectors: schema builders, paths, conditions, secrets.

This module defines no connector; the registry finds nothing to register in it.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from flowplane.connectors.base import NodeContext
from flowplane.errors import ConnectorError
from flowplane.security.ssrf import policy_client, policy_from_settings

MAX_PATH_DEPTH = 64
MAX_RESPONSE_BYTES = 10 * 1024 * 1024


# --- schema builders ----------------------------------------------------------------------


def obj(
    properties: dict[str, Any], required: Iterable[str] = (), *, description: str = ""
) -> dict[str, Any]:
    """Return a closed object schema (``additionalProperties: false``).

    Args:
        properties: the property schemas.
        required: names of the required properties.
        description: an optional description of the object.
    """
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }
    if description:
        schema["description"] = description
    return schema


def out(properties: dict[str, Any]) -> dict[str, Any]:
    """Return an output schema: an object with the given properties."""
    return {"type": "object", "properties": properties}


def prop(type_: str | list[str] | None, description: str, **extra: Any) -> dict[str, Any]:
    """Return a property schema of ``type_`` (None for any JSON value) with a description."""
    schema: dict[str, Any] = {"description": description}
    if type_ is not None:
        schema["type"] = type_
    schema.update(extra)
    return schema


CREDENTIAL_PROP = prop(
    "string", "Name of the credential holding the secret value.", minLength=1, maxLength=128
)
TIMEOUT_PROP = prop("number", "Timeout in seconds.", exclusiveMinimum=0, maximum=600, default=30)


# --- secrets --------------------------------------------------------------------------------


def credential(ctx: NodeContext, name: str) -> str:
    """Return the value of credential ``name``.

    Raises:
        ConnectorError: (not retryable) the credential is not available to the run.
    """
    value = ctx.credentials.get(name)
    if not value:
        raise ConnectorError(f"credential {name!r} is not available", retryable=False)
    return value


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """Return ``text`` with every secret value replaced by ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 3:
            text = text.replace(secret, "***")
    return text


# --- network --------------------------------------------------------------------------------


def http_client(ctx: NodeContext, timeout: float = 30.0, **kwargs: Any) -> httpx.AsyncClient:
    """Return an HTTP client that enforces the outbound network policy of ``ctx.settings``."""
    return policy_client(policy_from_settings(ctx.settings), timeout=timeout, **kwargs)


async def check_host(ctx: NodeContext, host: str, port: int) -> list[str]:
    """Check a non-HTTP destination against the network policy; return the allowed addresses.

    Connect to one of the returned addresses (not the name) so DNS cannot change in between.

    Raises:
        NetworkPolicyViolation: the address is not allowed.
        ConnectorError: the host cannot be resolved (retryable).
    """
    shown = f"[{host}]" if ":" in host else host
    policy = policy_from_settings(ctx.settings)
    return await policy.check_url(f"http://{shown}:{port}/", timeout=10.0)


@dataclass
class HttpResult:
    """A bounded HTTP response: status, headers, raw body and its JSON (when it parses)."""

    status: int
    headers: dict[str, str]
    content: bytes
    json: Any = None
    is_json: bool = False

    @property
    def text(self) -> str:
        """The body as text (UTF-8, invalid bytes replaced)."""
        return self.content.decode("utf-8", errors="replace")


async def http_call(
    ctx: NodeContext,
    method: str,
    url: str,
    *,
    label: str,
    timeout: float = 30.0,
    max_bytes: int = MAX_RESPONSE_BYTES,
    secrets: Iterable[str | None] = (),
    **request: Any,
) -> HttpResult:
    """Send one request through the network policy and read a bounded body.

    Errors name ``label`` (never the URL, which may carry a token) and are redacted of
    ``secrets``. Transport failures and timeouts are retryable; policy refusals are not.

    Args:
        ctx: the node context (settings give the network policy).
        method: the HTTP method.
        url: the absolute URL.
        label: how the destination is named in errors ("Slack webhook", "GraphQL endpoint").
        timeout: whole-request limit in seconds.
        max_bytes: largest body read.
        secrets: values to redact from error text.
        **request: ``httpx`` request options (``json``, ``content``, ``headers``, ``params``).
    """
    ctx.check_cancelled()
    try:
        async with (
            asyncio.timeout(timeout),
            http_client(ctx, timeout=timeout, follow_redirects=False) as client,
            client.stream(method, url, **request) as response,
        ):
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise ConnectorError(
                        f"{label} response is larger than {max_bytes} bytes", retryable=False
                    )
                chunks.append(chunk)
    except ConnectorError as exc:
        exc.detail = redact(exc.detail, [*secrets, url])
        exc.args = (exc.detail,)
        raise
    except (TimeoutError, httpx.TimeoutException):
        raise ConnectorError(f"{label} timed out after {timeout:g}s", retryable=True) from None
    except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError):
        raise ConnectorError(f"{label}: invalid URL", retryable=False) from None
    except httpx.HTTPError as exc:
        raise ConnectorError(
            f"{label} request failed: {type(exc).__name__}", retryable=True
        ) from None
    content = b"".join(chunks)
    result = HttpResult(
        status=response.status_code,
        headers={k.lower(): v for k, v in response.headers.items()},
        content=content,
    )
    if content.strip():
        try:
            result.json = json.loads(content)
            result.is_json = True
        except ValueError:
            pass
    return result


def status_error(
    result: HttpResult, label: str, secrets: Iterable[str | None] = ()
) -> ConnectorError:
    """Return the error for an unsuccessful HTTP status (retryable on 408/425/429/5xx)."""
    retryable = result.status >= 500 or result.status in (408, 425, 429)
    body = redact(result.text[:500], secrets)
    extra: dict[str, Any] = {"status_code": result.status, "body": body}
    if "retry-after" in result.headers:
        extra["retry_after"] = result.headers["retry-after"]
    return ConnectorError(f"{label} returned HTTP {result.status}", retryable=retryable, **extra)


def settings_value(ctx: NodeContext, name: str, default: Any) -> Any:
    """Return setting ``name`` from ``ctx.settings``, or ``default`` when missing."""
    value = getattr(ctx.settings, name, None) if ctx.settings is not None else None
    return default if value is None else value


def data_dir(ctx: NodeContext) -> Path:
    """Return the resolved data folder of the engine."""
    return Path(settings_value(ctx, "data_dir", Path("./flowplane-data"))).resolve()


# --- paths ----------------------------------------------------------------------------------

_MISSING = object()


def split_path(path: str | list[str | int]) -> list[str | int]:
    """Split a dotted path (``a.b.0.c``) into keys; lists are taken as already split."""
    if isinstance(path, list):
        parts: list[str | int] = list(path)
    elif path == "":
        parts = []
    else:
        parts = list(path.split("."))
    if len(parts) > MAX_PATH_DEPTH:
        raise ConnectorError(f"path is deeper than {MAX_PATH_DEPTH} levels", retryable=False)
    return parts


def get_path(data: Any, path: str | list[str | int], default: Any = None) -> Any:
    """Return the value at ``path`` in ``data`` (dicts by key, lists by index), or ``default``."""
    current = data
    for part in split_path(path):
        if isinstance(current, Mapping):
            if str(part) not in current:
                return default
            current = current[str(part)]
        elif isinstance(current, list):
            try:
                current = current[int(part)]
            except (ValueError, IndexError):
                return default
        else:
            return default
    return current


def has_path(data: Any, path: str | list[str | int]) -> bool:
    """Whether ``path`` exists in ``data``."""
    return get_path(data, path, _MISSING) is not _MISSING


def set_path(data: Any, path: str | list[str | int], value: Any) -> Any:
    """Set ``value`` at ``path`` in ``data`` in place (creating dicts); return ``data``."""
    parts = split_path(path)
    if not parts:
        return value
    current = data
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if isinstance(current, list):
            try:
                position = int(part)
                if last:
                    current[position] = value
                else:
                    current = current[position]
            except (ValueError, IndexError) as exc:
                raise ConnectorError(f"bad list index {part!r} in path", retryable=False) from exc
        elif isinstance(current, dict):
            key = str(part)
            if last:
                current[key] = value
            else:
                if not isinstance(current.get(key), dict | list):
                    current[key] = {}
                current = current[key]
        else:
            raise ConnectorError(f"cannot set {part!r} inside a scalar", retryable=False)
    return data


# --- conditions -----------------------------------------------------------------------------

CONDITION_OPS = (
    "eq",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "in",
    "not_in",
    "contains",
    "not_contains",
    "starts_with",
    "ends_with",
    "matches",
    "exists",
    "not_exists",
    "empty",
    "not_empty",
    "is_true",
    "is_false",
)

CONDITION_SCHEMA = obj(
    {
        "field": prop(
            "string",
            "Dotted path of the value to test inside the subject (empty: the subject itself).",
            default="",
        ),
        "op": prop("string", "Comparison operator.", enum=list(CONDITION_OPS)),
        "value": prop(None, "Value to compare with (unused by exists/empty/is_true ops)."),
    },
    ["op"],
    description="One test: subject[field] <op> value.",
)


def _compare(left: Any, right: Any, op: str) -> bool:
    try:
        if op == "gt":
            return bool(left > right)
        if op == "gte":
            return bool(left >= right)
        if op == "lt":
            return bool(left < right)
        return bool(left <= right)
    except TypeError:
        return False


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | dict) and len(value) == 0)


def check_condition(condition: Mapping[str, Any], subject: Any) -> bool:
    """Evaluate one condition ``{field, op, value}`` against ``subject``."""
    op = condition["op"]
    path = condition.get("field") or ""
    exists = has_path(subject, path)
    left = get_path(subject, path)
    right = condition.get("value")
    if op == "exists":
        return exists
    if op == "not_exists":
        return not exists
    if op == "eq":
        return bool(left == right)
    if op == "ne":
        return bool(left != right)
    if op in ("gt", "gte", "lt", "lte"):
        return _compare(left, right, op)
    if op in ("in", "not_in"):
        inside = isinstance(right, list | str | dict) and _safe_in(left, right)
        return inside if op == "in" else not inside
    if op in ("contains", "not_contains"):
        inside = isinstance(left, list | str | dict) and _safe_in(right, left)
        return inside if op == "contains" else not inside
    if op == "starts_with":
        return isinstance(left, str) and left.startswith(str(right))
    if op == "ends_with":
        return isinstance(left, str) and left.endswith(str(right))
    if op == "matches":
        return isinstance(left, str) and safe_search(str(right), left)
    if op == "empty":
        return _is_empty(left)
    if op == "not_empty":
        return not _is_empty(left)
    if op == "is_true":
        return left is True
    if op == "is_false":
        return left is False
    raise ConnectorError(f"unknown operator {op!r}", retryable=False)


def _safe_in(needle: Any, haystack: Any) -> bool:
    try:
        return bool(needle in haystack)
    except TypeError:
        return False


def check_all(conditions: list[Mapping[str, Any]], subject: Any, mode: str = "all") -> bool:
    """Evaluate ``conditions`` against ``subject``, combined with ``all`` or ``any``."""
    results = (check_condition(condition, subject) for condition in conditions)
    return all(results) if mode == "all" else any(results)


# --- safe regular expressions ------------------------------------------------------------

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


# --- numbers ------------------------------------------------------------------------------


def finite(value: float) -> float | int | None:
    """Return ``value`` as a JSON-safe number (None for NaN/infinity, int when integral)."""
    if math.isnan(value) or math.isinf(value):
        return None
    if float(value).is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def to_number(value: Any) -> float:
    """Return ``value`` as a float, accepting numeric strings.

    Raises:
        ConnectorError: (not retryable) the value is not a number.
    """
    if isinstance(value, bool):
        raise ConnectorError(f"expected a number, got {value!r}", retryable=False)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and re.fullmatch(
        r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*", value
    ):
        return float(value)
    raise ConnectorError(f"expected a number, got {value!r}"[:200], retryable=False)
