"""The retention policy read from the settings: defaults, per-namespace overrides, ages."""

from __future__ import annotations

import pydantic
import pytest

from flowplane.services.retention import RetentionRule, rules_of
from flowplane.settings import Settings, parse_age_ms

DAY_MS = 86_400_000


def test_no_policy_keeps_everything() -> None:
    assert rules_of(Settings()) == []


def test_namespace_overrides_replace_only_the_keys_they_name() -> None:
    settings = Settings(
        retention_finished="14d",
        retention_failed="12w",
        retention_namespaces={
            "ci": {"finished": "1d"},
            "legal": {"finished": None, "failed": None},
        },
    )
    assert rules_of(settings) == [
        RetentionRule(("finished",), 14 * DAY_MS, exclude_namespaces=("ci", "legal")),
        RetentionRule(
            ("failed", "timed-out", "cancelled"), 84 * DAY_MS, exclude_namespaces=("legal",)
        ),
        RetentionRule(("finished",), DAY_MS, namespaces=("ci",)),
    ]


@pytest.mark.parametrize(
    ("text", "ms"), [("90s", 90_000), ("30m", 1_800_000), ("12h", 43_200_000), ("2w", 14 * DAY_MS)]
)
def test_ages(text: str, ms: int) -> None:
    assert parse_age_ms(text) == ms


@pytest.mark.parametrize(
    "values",
    [
        {"retention_finished": "soon"},
        {"retention_failed": "0d"},
        {"retention_finished": "1.5d"},
        {"retention_namespaces": {"ci": {"done": "1d"}}},
        {"retention_namespaces": {"ci": {"finished": "forever"}}},
        {"metrics_token": "short"},
        {"rate_limit_storage": "memcached://x"},
    ],
)
def test_bad_settings_are_refused(values: dict[str, object]) -> None:
    with pytest.raises(pydantic.ValidationError):
        Settings(**values)  # type: ignore[arg-type]
