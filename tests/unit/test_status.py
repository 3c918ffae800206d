"""The one definition of statuses, and the copies that must stay equal to it."""

from __future__ import annotations

import typing

from flowplane.cli import _output
from flowplane.client import models as client_models
from flowplane.status import TERMINAL_NODE, TERMINAL_RUN, WAITING_NODE, NodeStatus, RunStatus


def test_client_run_statuses_equal_the_server_definition() -> None:
    assert list(typing.get_args(client_models.RunStatus)) == [s.value for s in RunStatus]
    assert set(TERMINAL_RUN) == client_models.TERMINAL_STATUSES


def test_terminal_and_waiting_sets_are_members() -> None:
    assert set(TERMINAL_RUN) <= {s.value for s in RunStatus}
    assert set(TERMINAL_NODE) | set(WAITING_NODE) <= {s.value for s in NodeStatus}
    assert not set(TERMINAL_NODE) & set(WAITING_NODE)


def test_cli_styles_every_node_status() -> None:
    assert {s.value for s in NodeStatus} <= set(_output.STATUS_STYLES)
    assert set(_output.RUN_STYLES) == set(TERMINAL_RUN)
