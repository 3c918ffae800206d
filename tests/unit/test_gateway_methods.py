"""The Smithers Gateway table: names, aliases, scopes and roles, error codes, event names."""

from __future__ import annotations

from flowplane.api import gateway_methods as gm
from flowplane.api import rpc
from flowplane.errors import (
    AlreadyDecided,
    Forbidden,
    ParamsInvalid,
    RunNotActive,
    RunNotFound,
    UnknownMethod,
)
from flowplane.services.caller import ROLE_RANK

DOCUMENTED = {
    # docs/integrations/gateway.mdx, "RPC methods" (less Smithers' DevTools methods).
    "health": "read",
    "runs.list": "read",
    "runs.get": "read",
    "runs.create": "execute",
    "runs.cancel": "execute",
    "runs.rerun": "execute",
    "runs.diff": "read",
    "frames.list": "read",
    "frames.get": "read",
    "attempts.list": "read",
    "attempts.get": "read",
    "getNodeOutput": "read",
    "jumpToFrame": "execute",
    "approvals.list": "read",
    "approvals.decide": "approve",
    "signals.send": "execute",
    "cron.list": "read",
    "cron.add": "admin",
    "cron.remove": "admin",
    "cron.trigger": "execute",
}


def test_every_documented_method_with_its_scope() -> None:
    assert {name: m.scope for name, m in gm.METHODS.items()} == DOCUMENTED


def test_aliases_name_smithers_methods() -> None:
    assert {alias: gm.resolve(alias).name for alias in gm.ALIASES} == {  # type: ignore[union-attr]
        "launchRun": "runs.create",
        "getRun": "runs.get",
        "listRuns": "runs.list",
        "submitApproval": "approvals.decide",
        "submitSignal": "signals.send",
    }
    assert gm.resolve("cancelRun") is None and "cancelRun" in rpc.METHODS


def test_scopes_rank_onto_roles() -> None:
    ranks = [ROLE_RANK[gm.SCOPE_ROLE[s]] for s in ("read", "execute", "approve", "admin")]
    assert ranks == sorted(ranks)
    for role, scopes in gm.ROLE_SCOPES.items():
        for scope in scopes:
            if scope in gm.SCOPE_ROLE:
                assert ROLE_RANK[gm.SCOPE_ROLE[scope]] <= ROLE_RANK[role], (role, scope)


def test_error_codes() -> None:
    assert gm.error_code(UnknownMethod("x")) == ("METHOD_NOT_FOUND", 404)
    assert gm.error_code(ParamsInvalid("x")) == ("INVALID_REQUEST", 400)
    assert gm.error_code(Forbidden("x")) == ("FORBIDDEN", 403)
    assert gm.error_code(RunNotFound("x")) == ("NOT_FOUND", 404)
    assert gm.error_code(RunNotActive("x")) == ("RUN_NOT_ACTIVE", 409)
    assert gm.error_code(AlreadyDecided("x")) == ("AlreadyDecided", 409)
    assert gm.error_code(ValueError("x")) == ("SERVER_ERROR", 500)
    body = gm.error_body(RunNotFound("run 'r' not found"))
    assert body == {
        "code": "NOT_FOUND",
        "message": "run 'r' not found",
        "status": 404,
        "flowplaneCode": "RUN_NOT_FOUND",
    }


def test_event_names() -> None:
    run = {"runId": "r", "nodeId": "n", "iteration": 0}
    assert gm.smithers_event({"type": "NodeStarted", **run}) == (
        "node.started",
        {"runId": "r", "nodeId": "n", "iteration": 0, "state": "in-progress"},
    )
    assert gm.smithers_event({"type": "NodeFinished", **run})[0] == "node.finished"  # type: ignore[index]
    assert gm.smithers_event({"type": "NodeFailed", **run, "error": "e"}) == (
        "node.failed",
        {"runId": "r", "nodeId": "n", "iteration": 0, "state": "failed", "error": "e"},
    )
    assert gm.smithers_event({"type": "ApprovalDenied", **run}) == (
        "approval.decided",
        {"runId": "r", "nodeId": "n", "iteration": 0, "approved": False},
    )
    assert gm.smithers_event({"type": "RunCancelled", "runId": "r"}) == (
        "run.completed",
        {"runId": "r", "status": "cancelled"},
    )
    fired = {"type": "RunStarted", "runId": "r", "workflowName": "w", "triggeredBy": "schedule:s"}
    assert gm.smithers_event(fired) == (
        "cron.triggered",
        {"cronId": "s", "workflow": "w", "runId": "r"},
    )
    assert gm.smithers_event({"type": "RunStarted", "runId": "r", "triggeredBy": "me"}) is None
    assert gm.smithers_event({"type": "FrameCommitted", "runId": "r"}) is None
