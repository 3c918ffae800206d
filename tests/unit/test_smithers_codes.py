"""Smithers' error code of every problem: the one mapping in ``api/problems.py``."""

from __future__ import annotations

import json

import pytest

from flowplane.api.problems import problem_response, smithers_code


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (404, "RUN_NOT_FOUND", "NOT_FOUND"),
        (404, "not_found", "NOT_FOUND"),
        (404, "workflow_not_found", "NOT_FOUND"),
        (401, "signature_invalid", "UNAUTHORIZED"),
        (413, "payload_too_large", "PAYLOAD_TOO_LARGE"),
        (400, "invalid_json", "INVALID_JSON"),
        (400, "validation_error", "INVALID_REQUEST"),
        (400, "json_too_deep", "INVALID_REQUEST"),
        (400, "RUN_ID_REQUIRED", "RUN_ID_REQUIRED"),
        (400, "WORKFLOW_PATH_OUTSIDE_ROOT", "WORKFLOW_PATH_OUTSIDE_ROOT"),
        (409, "RUN_ALREADY_EXISTS", "RUN_ALREADY_EXISTS"),
        (409, "RUN_NOT_ACTIVE", "RUN_NOT_ACTIVE"),
        (409, "AlreadyDecided", "ALREADY_DECIDED"),
        (409, "conflict", "CONFLICT"),
        (403, "forbidden", "FORBIDDEN"),
        (422, "idempotency_key_reused", "IDEMPOTENCY_KEY_REUSED"),
        (500, "internal_error", "SERVER_ERROR"),
        (503, "database_unavailable", "SERVER_ERROR"),
    ],
)
def test_smithers_code(status: int, code: str, expected: str) -> None:
    assert smithers_code(status, code) == expected


def test_a_problem_is_also_smithers_envelope() -> None:
    response = problem_response(409, "RUN_NOT_ACTIVE", "Run is not active", "run r is done")
    body = json.loads(response.body)
    assert body["code"] == "RUN_NOT_ACTIVE" and body["status"] == 409
    assert body["error"] == {"code": "RUN_NOT_ACTIVE", "message": "run r is done"}
    # An extension member cannot replace the envelope.
    clash = problem_response(400, "invalid_input", "Invalid", "bad", error="mine")
    assert json.loads(clash.body)["error"] == {"code": "INVALID_REQUEST", "message": "bad"}
