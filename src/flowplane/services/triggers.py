"""TriggerService: webhook triggers that start runs or signal waiting runs.

``POST /v1/webhooks/{key}`` is authenticated by the trigger's signature, not by an API key.
The delivery's body, headers (minus anything secret-looking) and query become the run input
(``{"body", "headers", "query"}``) or the signal payload. They are data: nothing in them is
ever rendered as a template. A signal trigger's ``correlation`` expression (written by an
editor, not by the sender) is evaluated over that data in the template sandbox to pick the
waiting runs.

Secrets are sealed with the server's master key (AES-256-GCM, bound to the trigger id) when
``FLOWPLANE_SECRET_KEY`` is set; without it they are stored as ``plain:<secret>``.
"""

from __future__ import annotations

import collections
import json
import logging
import re
import secrets
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from flowplane.engine import transitions
from flowplane.errors import (
    InvalidInput,
    SignatureInvalid,
    TriggerKeyExists,
    TriggerNotFound,
    WorkflowNotFound,
)
from flowplane.ids import new_id
from flowplane.model import templates
from flowplane.security import webhooks
from flowplane.security.crypto import KeyRing
from flowplane.services.caller import Caller
from flowplane.services.owned import (
    OwnedKind,
    OwnedService,
    find_workflow,
)
from flowplane.services.runs import RunService
from flowplane.store import trigger_queries as q
from flowplane.store import workflow_queries as wq
from flowplane.store.base import Store
from flowplane.store.records import TriggerRecord
from flowplane.store.tx import Row, Tx

KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
"""Webhook keys: the same pattern the security gate opens ``/v1/webhooks/...`` for."""
KINDS = ("run", "signal")
MAX_SECRET_CHARS = 1024
SECRET_HEADER_WORDS = ("auth", "cookie", "secret", "token", "signature", "password", "api-key")
"""Headers whose name contains one of these never reach the run input."""
PLAIN_PREFIX = "plain:"
_log = logging.getLogger("flowplane.webhooks")


def _secret_context(trigger_id: str) -> str:
    return f"trigger:{trigger_id}"


@dataclass
class Delivery:
    """A webhook request as received."""

    body: bytes
    headers: Mapping[str, str]
    query: Sequence[tuple[str, str]] = ()
    content_type: str = ""


@dataclass
class WebhookOutcome:
    """What a delivery did: the HTTP status and body to answer with."""

    status: int
    body: dict[str, Any]


def webhook_input(delivery: Delivery) -> dict[str, Any]:
    """The run input (or signal payload) of a delivery: ``{body, headers, query}``.

    JSON bodies are parsed, form bodies become a mapping, anything else is text. Headers
    are lower-cased and lose every secret-looking one (``authorization``, ``cookie``,
    signatures, tokens, ...). Repeated query parameters become lists.
    """
    headers = {
        k.lower(): v
        for k, v in delivery.headers.items()
        if not any(word in k.lower() for word in SECRET_HEADER_WORDS)
    }
    return {"body": _parse_body(delivery), "headers": headers, "query": _multi(delivery.query)}


def _multi(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Name/value pairs as a mapping; a repeated name maps to the list of its values."""
    out: dict[str, Any] = {}
    for name, value in pairs:
        if name not in out:
            out[name] = value
        elif isinstance(out[name], list):
            out[name].append(value)
        else:
            out[name] = [out[name], value]
    return out


def _parse_body(delivery: Delivery) -> Any:
    raw = delivery.body
    if not raw:
        return None
    media = delivery.content_type.split(";", 1)[0].strip().lower()
    text = raw.decode("utf-8", "replace")
    if media == "application/x-www-form-urlencoded":
        return _multi(urllib.parse.parse_qsl(text, keep_blank_values=True))
    if media == "application/json" or media.endswith("+json") or not media:
        try:
            return json.loads(text)
        except ValueError:
            if media:
                raise InvalidInput("the body is not valid JSON") from None
    return text


class TriggerService(OwnedService[TriggerRecord]):
    """Create, read, change and delete triggers; receive webhook deliveries."""

    kind = OwnedKind.over(q, "trigger", TriggerRecord, TriggerNotFound, ("key", "kind", "scheme"))
    delete_advice = "remove it from the workflow document"

    def __init__(self, store: Store, runs: RunService, keyring: KeyRing | None = None) -> None:
        self.store = store
        self.runs = runs
        self.keyring = keyring
        self.signature_failures: collections.Counter[tuple[str, str]] = collections.Counter()

    def _seal(self, trigger_id: str, secret: str | None) -> str | None:
        if secret is None:
            return None
        if self.keyring is None:
            return PLAIN_PREFIX + secret
        return self.keyring.encrypt(secret, context=_secret_context(trigger_id))

    def _open(self, row: TriggerRecord) -> str | None:
        sealed = row.secret
        if not sealed:
            return None
        if sealed.startswith(PLAIN_PREFIX):
            return str(sealed[len(PLAIN_PREFIX) :])
        if self.keyring is None:
            raise SignatureInvalid(
                "the trigger's secret is encrypted but the server has no master key",
                reason="no_secret",
            )
        return self.keyring.decrypt(sealed, context=_secret_context(row.id))

    def _checked(self, values: Mapping[str, Any], *, require_secret: bool) -> dict[str, Any]:
        key = values.get("key") or secrets.token_urlsafe(18).replace("-", "x").replace("_", "y")
        if not KEY_PATTERN.match(key):
            raise InvalidInput(
                f"webhook key {key!r} must match {KEY_PATTERN.pattern} (letters, digits, '_', "
                f"'.', '-'; at most 128)"
            )
        kind = values.get("kind") or "run"
        if kind not in KINDS:
            raise InvalidInput(f"kind must be 'run' or 'signal', not {kind!r}")
        scheme = values.get("scheme") or "none"
        if scheme not in webhooks.SCHEMES:
            raise InvalidInput(f"scheme must be one of {', '.join(webhooks.SCHEMES)}")
        signal_name = values.get("signal_name")
        correlation = values.get("correlation")
        if kind == "signal":
            if not signal_name:
                raise InvalidInput("a signal trigger needs signalName")
            if correlation:
                templates.check_template(str(correlation), expression=True)
        elif signal_name or correlation:
            raise InvalidInput("signalName and correlation are for kind 'signal'")
        elif not values.get("workflow_id") and not values.get("workflow"):
            raise InvalidInput("a run trigger needs workflowId")
        secret = values.get("secret")
        _check_secret(secret)
        if require_secret and scheme != "none" and not secret:
            raise InvalidInput(f"scheme {scheme!r} needs a secret")
        return {
            "key": key,
            "kind": kind,
            "signal_name": signal_name if kind == "signal" else None,
            "correlation": correlation if kind == "signal" else None,
            "scheme": scheme,
            "enabled": bool(values.get("enabled", True)),
        }

    async def create(self, caller: Caller, values: Mapping[str, Any]) -> TriggerRecord:
        """Create an API-owned trigger (editor); the caller is its ``created_by``.

        Args:
            caller: who asks.
            values: ``workflow_id`` (or ``workflow`` and ``namespace``), ``kind``, ``key``
                (generated when absent), ``signal_name``, ``correlation``, ``scheme``,
                ``secret``, ``enabled``.

        Raises:
            InvalidInput: a field is wrong. TriggerKeyExists: the key is taken.
            WorkflowNotFound: the workflow is not visible.
        """
        row: Row = {"id": new_id(), **self._checked(values, require_secret=True)}
        row.update(secret=self._seal(row["id"], values.get("secret")), owner="api")

        def place(tx: Tx, row: Row) -> None:
            namespace, workflow_id = _target(tx, values, caller)
            if q.trigger_by_key(tx, row["key"]) is not None:
                raise TriggerKeyExists(f"webhook key {row['key']!r} is already in use")
            row.update(namespace=namespace, workflow_id=workflow_id)

        return await self._create(caller, row, place)

    async def replace(
        self, caller: Caller, trigger_id: str, values: Mapping[str, Any]
    ) -> TriggerRecord:
        """Replace a trigger's settings (``PUT``); an absent ``secret`` keeps the current one.

        A trigger declared in a workflow document accepts only ``secret`` and ``enabled``.
        """

        def change(tx: Tx, current: TriggerRecord) -> tuple[dict[str, Any], dict[str, Any]]:
            changes: dict[str, Any] = {}
            if current.owner == "workflow":
                if set(values) - {"secret", "enabled"}:
                    raise self._declared(
                        "change the workflow document (only `secret` and `enabled` can be set here)"
                    )
                if "enabled" in values:
                    changes["enabled"] = bool(values["enabled"])
            else:
                wanted = {**values, "key": values.get("key") or current.key}
                changes = self._checked(wanted, require_secret=False)
                namespace, workflow_id = _target(tx, values, caller, current.namespace)
                changes.update(namespace=namespace, workflow_id=workflow_id)
                keeps = "secret" not in values and current.secret is not None
                if changes["scheme"] != "none" and not values.get("secret") and not keeps:
                    raise InvalidInput(f"scheme {changes['scheme']!r} needs a secret")
                if changes["key"] != current.key and q.trigger_by_key(tx, changes["key"]):
                    raise TriggerKeyExists(f"webhook key {changes['key']!r} is already in use")
            if "secret" in values:
                _check_secret(values["secret"])
                changes["secret"] = self._seal(trigger_id, values["secret"])
            return changes, {"secretChanged": "secret" in values}

        return await self._update(caller, trigger_id, change)

    async def receive(
        self,
        key: str,
        delivery: Delivery,
        admit: Callable[[str], Awaitable[None]] | None = None,
        *,
        input_shape: Literal["envelope", "body"] = "envelope",
    ) -> WebhookOutcome:
        """Verify and act on one delivery to ``/v1/webhooks/{key}``.

        The run input (or signal payload) is ``{body, headers, query}`` (``envelope``), or
        the parsed body alone (``body``: what thodare's webhook routes give a run; a body
        that is not a JSON object stays under ``body``).

        Returns 202 ``{runId}`` for a run trigger, 202 ``{delivered, runIds}`` for a signal
        trigger, and 200 ``{duplicate: true, ...}`` for a delivery id already handled.
        ``admit(trigger_id)`` is called once the trigger's scheme accepted the delivery (a
        rate limit raises from it).

        Raises:
            TriggerNotFound: no enabled trigger has that key.
            SignatureInvalid: the signature does not verify (counted).
            WorkflowNotFound, InputInvalid: the run cannot start.
        """
        row = await self.store.read(lambda tx: q.trigger_by_key(tx, key))
        if row is None or not row.enabled:
            raise TriggerNotFound(f"no webhook trigger with key {key!r}")
        try:
            verified = webhooks.verify(row.scheme, self._open(row), delivery.body, delivery.headers)
        except SignatureInvalid as exc:
            self.signature_failures[(row.scheme, str(exc.extra.get("reason", "")))] += 1
            _log.info("webhook %s: signature refused: %s", key, exc.detail)
            raise
        if admit is not None:
            await admit(str(row.id))
        delivery_id = verified.delivery_id
        if delivery_id is not None:
            seen = await self.store.read(lambda tx: q.get_delivery(tx, row.id, delivery_id))
            if seen is not None:
                return WebhookOutcome(200, {"duplicate": True, "runId": seen.run_id})
        payload = webhook_input(delivery)
        if input_shape == "body":
            body = payload["body"]
            payload = body if isinstance(body, dict) else {"body": body}
        if row.kind == "signal":
            return await self._signal(row, payload, delivery_id)
        return await self._start(row, payload, delivery_id)

    async def _start(
        self, row: TriggerRecord, payload: dict[str, Any], delivery_id: str | None
    ) -> WebhookOutcome:
        workflow_id = row.workflow_id
        workflow = None
        if workflow_id is not None:
            workflow = await self.store.read(lambda tx: wq.get_workflow_row(tx, workflow_id))
        if workflow is None:
            raise WorkflowNotFound("the trigger's workflow was deleted")
        key = f"webhook:{row.id}:{delivery_id}" if delivery_id is not None else None
        started = await self.runs.start(
            Caller.system(),
            workflow.document,
            payload,
            namespace=row.namespace,
            workflow_id=workflow.id,
            workflow_version=workflow.version,
            idempotency_key=key,
            trigger="webhook",
            triggered_by=f"webhook:{row.key}",
        )
        run_id = started.run.id
        if delivery_id is not None:
            await self.store.transact(lambda tx: q.record_delivery(tx, row.id, delivery_id, run_id))
        if not started.created:
            return WebhookOutcome(200, {"duplicate": True, "runId": run_id})
        return WebhookOutcome(202, {"runId": run_id})

    async def _signal(
        self, row: TriggerRecord, payload: dict[str, Any], delivery_id: str | None
    ) -> WebhookOutcome:
        correlation: str | None = None
        if row.correlation:
            value = templates.evaluate(row.correlation, payload)
            correlation = None if value is None else str(value)
        name = str(row.signal_name)

        def fn(tx: Tx) -> WebhookOutcome:
            if delivery_id is not None and not q.record_delivery(tx, row.id, delivery_id, None):
                return WebhookOutcome(200, {"duplicate": True, "runId": None})
            run_ids: list[str] = []
            nodes = q.waiting_signal_nodes(tx, row.namespace, workflow_id=row.workflow_id)
            for node_run_id, node_wait in nodes:
                wait = node_wait or {}
                if wait.get("kind") != "signal" or wait.get("name") != name:
                    continue
                wanted = wait.get("correlationId")
                if wanted is not None and wanted != correlation:
                    continue
                if node_run_id not in run_ids:
                    run_ids.append(node_run_id)
            for run_id in run_ids:
                transitions.send_signal(tx, run_id, name, payload, correlation)
            return WebhookOutcome(
                202, {"delivered": len(run_ids), "runIds": run_ids, "correlationId": correlation}
            )

        return await self.store.transact(fn)


def _check_secret(secret: Any) -> None:
    if secret is not None and (
        not isinstance(secret, str) or not 1 <= len(secret) <= MAX_SECRET_CHARS
    ):
        raise InvalidInput(f"secret must be a string of 1 to {MAX_SECRET_CHARS} characters")


def _target(
    tx: Tx,
    values: Mapping[str, Any],
    caller: Caller,
    default_namespace: str | None = None,
) -> tuple[str, str | None]:
    """The namespace and workflow a trigger points at (404 when not visible)."""
    workflow = find_workflow(tx, values, caller, default_namespace)
    if workflow is not None:
        return workflow.namespace, workflow.id
    namespace = str(values.get("namespace") or default_namespace or "default")
    if not caller.can_see(namespace):
        raise WorkflowNotFound(f"namespace {namespace!r} not found")
    return namespace, None
