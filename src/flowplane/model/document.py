"""The workflow document: pydantic models for workflows, nodes and retry policies."""

from __future__ import annotations

import random
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from flowplane.errors import DurationInvalid
from flowplane.model.durations import parse_duration

NODE_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"
NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$"
NAMESPACE_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
DEFAULT_NAMESPACE = "default"

TriggerRule = Literal["all_success", "all_done", "one_success", "none_failed"]
OnError = Literal["fail", "continue"]
Duration = str | int | float


def _check_duration_value(value: Duration) -> None:
    """Validate a duration inside a pydantic validator (which only maps ``ValueError``)."""
    try:
        parse_duration(value)
    except DurationInvalid as exc:
        raise ValueError(exc.detail) from None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RetryPolicy(_Strict):
    """How a failed node is retried: ``max_attempts`` tries in all, spaced by a backoff."""

    max_attempts: int = Field(default=1, ge=1, le=100)
    backoff: Literal["fixed", "exponential"] = "exponential"
    initial: Duration = "1s"
    max: Duration = "5m"
    jitter: bool = True

    @field_validator("initial", "max")
    @classmethod
    def _check_duration(cls, value: Duration) -> Duration:
        _check_duration_value(value)
        return value

    def delay_seconds(self, failed_attempt: int, rng: random.Random | None = None) -> float:
        """Return the wait before the attempt after ``failed_attempt`` (1-based)."""
        initial = parse_duration(self.initial)
        cap = parse_duration(self.max)
        if self.backoff == "fixed":
            delay = initial
        else:
            delay = min(cap, initial * (2 ** max(0, failed_attempt - 1)))
        delay = min(delay, cap)
        if self.jitter and delay > 0:
            # "Equal jitter": keep half the delay, randomise the other half.
            delay = delay / 2 + (rng or random).uniform(0, delay / 2)
        return delay


class Node(_Strict):
    """One node of a workflow graph: a call of a connector."""

    id: str = Field(pattern=NODE_ID_PATTERN)
    type: str = Field(min_length=1, max_length=128)
    name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    params: dict[str, Any] = Field(default_factory=dict)
    needs: list[str] | None = None
    when: str | bool | None = None
    foreach: str | list[Any] | None = None
    max_parallel: int | None = Field(default=None, ge=1, le=10_000)
    retry: RetryPolicy | None = None
    timeout: Duration | None = None
    trigger_rule: TriggerRule = "all_success"
    on_error: OnError = "fail"

    @field_validator("needs", mode="before")
    @classmethod
    def _needs_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [value]
        return value

    @field_validator("timeout")
    @classmethod
    def _check_timeout(cls, value: Duration | None) -> Duration | None:
        if value is not None:
            _check_duration_value(value)
        return value

    @property
    def timeout_seconds(self) -> float | None:
        """The node timeout in seconds, or ``None``."""
        return None if self.timeout is None else parse_duration(self.timeout)

    @property
    def retry_policy(self) -> RetryPolicy:
        """The retry policy, defaulting to a single attempt."""
        return self.retry or RetryPolicy()


class Trigger(BaseModel):
    """A trigger declared in the document (schedules and webhooks; handled by services)."""

    model_config = ConfigDict(extra="allow")
    type: Literal["schedule", "webhook"]


class Workflow(_Strict):
    """A workflow document."""

    name: str = Field(pattern=NAME_PATTERN)
    namespace: str = Field(default=DEFAULT_NAMESPACE, pattern=NAMESPACE_PATTERN)
    description: str = Field(default="", max_length=10_000)
    version: int | None = Field(default=None, description="Informational; set by the server.")
    inputs: dict[str, Any] | None = None
    timeout: Duration | None = None
    nodes: list[Node] = Field(
        default_factory=list,
        max_length=5000,
        description="The graph; empty in a draft, which can be stored and edited, not run.",
    )
    triggers: list[Trigger] = Field(default_factory=list)

    @field_validator("timeout")
    @classmethod
    def _check_timeout(cls, value: Duration | None) -> Duration | None:
        if value is not None:
            _check_duration_value(value)
        return value

    @model_validator(mode="after")
    def _check_unique_ids(self) -> Workflow:
        seen: set[str] = set()
        for node in self.nodes:
            if node.id in seen:
                raise ValueError(f"duplicate node id {node.id!r}")
            seen.add(node.id)
        return self

    @property
    def timeout_seconds(self) -> float | None:
        """The run timeout in seconds, or ``None``."""
        return None if self.timeout is None else parse_duration(self.timeout)

    def node(self, node_id: str) -> Node:
        """Return the node with ``node_id`` (``KeyError`` when absent)."""
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def edges(self) -> dict[str, list[str]]:
        """Return ``{node_id: [upstream ids]}``.

        A document where no node declares ``needs`` runs in listed order; once any node
        declares ``needs``, only ``needs`` define edges.
        """
        if all(node.needs is None for node in self.nodes):
            return {
                node.id: ([self.nodes[i - 1].id] if i > 0 else [])
                for i, node in enumerate(self.nodes)
            }
        return {node.id: list(node.needs or []) for node in self.nodes}

    def to_document(self) -> dict[str, Any]:
        """Return the JSON form of the document, without defaults that were not set."""
        return self.model_dump(mode="json", exclude_unset=True, exclude_none=True)


_EXPR = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)


def is_template(value: Any) -> bool:
    """Return whether ``value`` is a string holding a template expression or ``${NAME}``."""
    return isinstance(value, str) and ("{{" in value or "{%" in value or "${" in value)
