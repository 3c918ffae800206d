"""The whole Flowplane error hierarchy.

Every error has a stable machine ``code`` and an HTTP ``status``. The API turns them into
RFC 9457 problem documents; the client rebuilds the same class from ``code``::

    FlowplaneError
    ├── InvalidInput (400)
    │   ├── DocumentError            workflow document cannot be parsed
    │   ├── WorkflowInvalid          graph or params are invalid (``errors`` lists them)
    │   │   └── WorkflowEmpty        a draft without nodes: it can be stored, not run
    │   ├── IfMatchInvalid           an If-Match header that names no version
    │   ├── TemplateError            a template failed to parse or render
    │   ├── InputInvalid             run input does not match the workflow ``inputs`` schema
    │   ├── DurationInvalid
    │   ├── WorkflowPathOutsideRoot  a ``workflowPath`` that leaves the server's root folder
    │   ├── RunIdRequired            ``resume`` without a ``runId``
    │   ├── InvalidCron              a cron expression that does not parse or never fires
    │   ├── InvalidTimezone          not an IANA time zone name
    │   └── ParamsInvalid            RPC params that do not match the method's model
    ├── Unauthorized (401) -> SignatureInvalid (a webhook signature does not verify)
    ├── Forbidden (403)
    ├── NotFound (404)
    │   ├── WorkflowNotFound, RunNotFound, NodeNotFound, ApprovalNotFound, ConnectorNotFound
    │   └── ScheduleNotFound, TriggerNotFound, UnknownMethod (no such RPC method)
    ├── Conflict (409)
    │   ├── RunNotActive, RunNotSettled, RunAlreadyExists, AlreadyDecided, WorkflowExists,
    │   │   TriggerKeyExists
    ├── PreconditionFailed (412) -> VersionMismatch
    ├── PreconditionRequired (428)
    ├── PayloadTooLarge (413)
    ├── UnprocessableEntity (422) -> IdempotencyKeyReused
    ├── RateLimited (429)
    ├── ConnectorError (node-level failures, 502 when surfaced)
    │   └── NodeTimeout, ApprovalDenied, ChildRunFailed, NetworkPolicyViolation,
    │       CredentialUseDenied
    └── StorageError (503)
        └── DatabaseUnavailable  the database cannot be reached now (``Retry-After``)
"""

from __future__ import annotations

from typing import Any, ClassVar


class FlowplaneError(Exception):
    """Base class: a stable ``code``, an HTTP ``status`` and optional extension members."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str = "", **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra: dict[str, Any] = extra

    def to_dict(self) -> dict[str, Any]:
        """Return the error as a JSON-safe mapping (used in events and node errors)."""
        data: dict[str, Any] = {"code": self.code, "message": self.detail}
        data.update(self.extra)
        return data


class InvalidInput(FlowplaneError):
    """The request or document is malformed."""

    code = "invalid_input"
    status = 400
    title = "Invalid input"


class DocumentError(InvalidInput):
    """A workflow document could not be parsed (syntax, size, depth, aliases)."""

    code = "document_invalid"
    title = "Workflow document cannot be parsed"


class WorkflowInvalid(InvalidInput):
    """A workflow document parsed but failed validation; ``errors`` lists each problem."""

    code = "workflow_invalid"
    title = "Workflow is invalid"


class WorkflowEmpty(WorkflowInvalid):
    """The workflow has no nodes yet: a draft can be stored and edited, but not run."""

    code = "workflow_empty"
    title = "Workflow has no nodes"


class IfMatchInvalid(InvalidInput):
    """An ``If-Match`` header that names no version."""

    code = "invalid_if_match"
    title = "Invalid If-Match"


class TemplateError(InvalidInput):
    """A template expression failed to compile or render, or broke the sandbox budget."""

    code = "template_error"
    title = "Template error"


class ForeachTooLarge(InvalidInput):
    """A ``foreach`` gave more items than ``FLOWPLANE_MAX_FOREACH_ITEMS`` allows."""

    code = "foreach_too_large"
    title = "Too many foreach items"


class InputInvalid(InvalidInput):
    """The run input does not match the workflow's ``inputs`` schema."""

    code = "input_invalid"
    title = "Run input is invalid"


class DurationInvalid(InvalidInput):
    """A duration string such as ``30s`` could not be parsed."""

    code = "duration_invalid"
    title = "Invalid duration"


class WorkflowPathOutsideRoot(InvalidInput):
    """A ``workflowPath`` resolves outside the server's ``--root`` folder."""

    code = "WORKFLOW_PATH_OUTSIDE_ROOT"
    title = "Workflow path is outside the server root"


class RunIdRequired(InvalidInput):
    """A request to resume a run that names no ``runId``."""

    code = "RUN_ID_REQUIRED"
    title = "runId is required"


class InvalidCron(InvalidInput):
    """A cron expression does not parse, or can never fire (``0 0 31 2 *``)."""

    code = "invalid_cron"
    title = "Invalid cron expression"


class InvalidTimezone(InvalidInput):
    """A time zone is not a known IANA name (``Europe/Paris``)."""

    code = "invalid_timezone"
    title = "Invalid time zone"


class ParamsInvalid(InvalidInput):
    """RPC params that do not match the method's parameter model (``errors`` lists them)."""

    code = "validation_error"
    title = "Invalid params"


class Unauthorized(FlowplaneError):
    """No valid credentials were presented."""

    code = "unauthorized"
    status = 401
    title = "Unauthorized"


class SignatureInvalid(Unauthorized):
    """A webhook delivery's signature is missing, malformed, stale or wrong."""

    code = "signature_invalid"
    title = "Webhook signature invalid"


class Forbidden(FlowplaneError):
    """The caller's role does not allow this operation."""

    code = "forbidden"
    status = 403
    title = "Forbidden"


class NotFound(FlowplaneError):
    """The object does not exist (or belongs to another namespace)."""

    code = "not_found"
    status = 404
    title = "Not found"


class WorkflowNotFound(NotFound):
    """No workflow with that id or name."""

    code = "workflow_not_found"
    title = "Workflow not found"


class RunNotFound(NotFound):
    """No run with that id."""

    code = "RUN_NOT_FOUND"
    title = "Run not found"


class NodeNotFound(NotFound):
    """No node with that id in the run."""

    code = "NODE_NOT_FOUND"
    title = "Node not found"


class ApprovalNotFound(NotFound):
    """No pending approval for that node and iteration."""

    code = "APPROVAL_NOT_FOUND"
    title = "Approval not found"


class ConnectorNotFound(NotFound):
    """No connector registered under that type."""

    code = "connector_not_found"
    title = "Connector not found"


class ScheduleNotFound(NotFound):
    """No schedule with that id."""

    code = "schedule_not_found"
    title = "Schedule not found"


class TriggerNotFound(NotFound):
    """No trigger with that id or webhook key."""

    code = "trigger_not_found"
    title = "Trigger not found"


class UnknownMethod(NotFound):
    """No RPC method of that name (``/v1/rpc/{method}`` and ``/v1/ws``)."""

    code = "unknown_method"
    title = "Unknown method"


class Conflict(FlowplaneError):
    """The request conflicts with the current state."""

    code = "conflict"
    status = 409
    title = "Conflict"


class RunNotActive(Conflict):
    """The run is already terminal."""

    code = "RUN_NOT_ACTIVE"
    title = "Run is not active"


class RunNotSettled(Conflict):
    """The run cannot be deleted yet: it is active, or a worker, child or parent needs it."""

    code = "RUN_NOT_SETTLED"
    title = "Run is not settled"


class RunAlreadyExists(Conflict):
    """A new run asked for a ``runId`` that another run already has (without ``resume``)."""

    code = "RUN_ALREADY_EXISTS"
    title = "Run id already exists"


class AlreadyDecided(Conflict):
    """The approval was already granted or denied."""

    code = "AlreadyDecided"
    title = "Approval already decided"


class WorkflowExists(Conflict):
    """A workflow with that name already exists in the namespace."""

    code = "workflow_exists"
    title = "Workflow already exists"


class TriggerKeyExists(Conflict):
    """Another trigger already uses that webhook key."""

    code = "trigger_key_exists"
    title = "Webhook key already in use"


class PreconditionFailed(FlowplaneError):
    """An ``If-Match`` precondition did not hold."""

    code = "precondition_failed"
    status = 412
    title = "Precondition failed"


class VersionMismatch(PreconditionFailed):
    """The ``If-Match`` version is stale; ``current`` holds the current version."""

    code = "version_mismatch"
    title = "Version mismatch"


class PreconditionRequired(FlowplaneError):
    """The route needs an ``If-Match`` header."""

    code = "precondition_required"
    status = 428
    title = "Precondition required"


class PayloadTooLarge(FlowplaneError):
    """The request body is over the size limit."""

    code = "payload_too_large"
    status = 413
    title = "Payload too large"


class UnprocessableEntity(FlowplaneError):
    """The request is well-formed but cannot be processed."""

    code = "unprocessable"
    status = 422
    title = "Unprocessable entity"


class IdempotencyKeyReused(UnprocessableEntity):
    """An ``Idempotency-Key`` was reused with a different request body."""

    code = "idempotency_key_reused"
    title = "Idempotency key reused with another request"


class RateLimited(FlowplaneError):
    """Too many requests for this key."""

    code = "rate_limited"
    status = 429
    title = "Too many requests"


class ConnectorError(FlowplaneError):
    """A connector failed while executing a node. ``retryable`` says whether to retry."""

    code = "connector_error"
    status = 502
    title = "Connector failed"

    def __init__(self, detail: str = "", *, retryable: bool = True, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retryable = retryable


class NodeTimeout(ConnectorError):
    """A node ran longer than its ``timeout``."""

    code = "node_timeout"
    title = "Node timed out"


class ApprovalDenied(ConnectorError):
    """A human denied an approval."""

    code = "approval_denied"
    title = "Approval denied"


class ChildRunFailed(ConnectorError):
    """A sub-workflow run ended without finishing."""

    code = "child_run_failed"
    title = "Sub-workflow failed"


class NetworkPolicyViolation(ConnectorError):
    """An outbound request was refused by the network policy."""

    code = "network_policy_violation"
    title = "Outbound address refused by the network policy"


class CredentialUseDenied(ConnectorError):
    """A node uses a credential in a way its use policy does not allow (never retried).

    ``credential`` names the credential and ``rule`` the policy field that refused it
    (``allowedWorkflows``, ``allowedConnectors`` or ``templateUse``); the value is never
    part of the error.
    """

    code = "credential_use_denied"
    title = "Credential use refused by its policy"

    def __init__(self, detail: str = "", **extra: Any) -> None:
        super().__init__(detail, retryable=False, **extra)


class StorageError(FlowplaneError):
    """The database failed or is unreachable."""

    code = "storage_error"
    status = 503
    title = "Storage unavailable"


class DatabaseUnavailable(StorageError):
    """The database cannot be reached or is restarting: a transient state.

    Answered as 503 with ``Retry-After``; workers, the scheduler and the event feed wait
    and retry with backoff instead of stopping.
    """

    code = "database_unavailable"
    title = "Database unavailable"
    retry_after_seconds: ClassVar[int] = 2

    @property
    def headers(self) -> dict[str, str]:
        """The HTTP headers of the problem response (``Retry-After``)."""
        return {"Retry-After": str(self.retry_after_seconds)}


class KVKeyNotFound(NotFound):
    """No live entry under that key."""

    code = "kv_key_not_found"
    title = "Key not found"


class KVValueNotNumeric(Conflict):
    """``increment`` on an entry whose value is not a number."""

    code = "kv_value_not_numeric"
    title = "Value is not a number"


class CredentialNotFound(NotFound):
    """No credential with that id (or it belongs to another namespace)."""

    code = "credential_not_found"
    title = "Credential not found"


class CredentialExists(Conflict):
    """A credential with that name already exists in the namespace."""

    code = "credential_exists"
    title = "Credential already exists"


class CredentialMissing(FlowplaneError):
    """A node names a credential that is neither stored in its namespace nor in the
    environment (``FLOWPLANE_SECRET_<NAME>``)."""

    code = "credential_missing"
    status = 400
    title = "Credential missing"


class SecretKeyMissing(FlowplaneError):
    """No master key is configured, so credentials can be neither stored nor read."""

    code = "secret_key_missing"
    status = 503
    title = "Secret key missing"


class DecryptionFailed(FlowplaneError):
    """An envelope could not be opened: unknown key id, tampering, or the wrong binding."""

    code = "secret_decryption_failed"
    status = 500
    title = "Credential cannot be decrypted"


def _all_subclasses(cls: type[FlowplaneError]) -> list[type[FlowplaneError]]:
    out: list[type[FlowplaneError]] = []
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_all_subclasses(sub))
    return out


def error_class_for_code(code: str) -> type[FlowplaneError]:
    """Return the error class registered for ``code`` (``FlowplaneError`` when unknown)."""
    classes: list[type[FlowplaneError]] = [FlowplaneError, *_all_subclasses(FlowplaneError)]
    for cls in classes:
        if cls.code == code:
            return cls
    return FlowplaneError
