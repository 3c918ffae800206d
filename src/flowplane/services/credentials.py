"""CredentialService: write-only secret values, sealed with AES-256-GCM at rest.

Values go in through :meth:`CredentialService.create` and :meth:`CredentialService.update`
and come out only through :class:`DatabaseSecrets`, which the worker calls when a node that
references ``{{ secrets.NAME }}`` (or ``${NAME}``) runs. Nothing else returns a value: API
responses, audit entries and listings carry names, types and timestamps.

Each credential also has a use policy (:class:`~flowplane.engine.secrets.UsePolicy`), set
by admins only: which workflows and connectors may use it, and how far templates may. The
worker checks it before it decrypts a value (:meth:`DatabaseSecrets.policies`).
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

from flowplane.engine.secrets import (
    DEFAULT_POLICY,
    TEMPLATE_USES,
    EnvSecrets,
    SecretsProvider,
    TemplateUse,
    UsePolicy,
)
from flowplane.errors import (
    CredentialExists,
    CredentialNotFound,
    DecryptionFailed,
    InvalidInput,
    SecretKeyMissing,
    VersionMismatch,
)
from flowplane.security.crypto import (
    KEY_ENV,
    KeyRing,
    credential_context,
    key_id_of,
)
from flowplane.security.key_file import read_key_file
from flowplane.security.redaction import remember_in_logs
from flowplane.services.caller import Caller
from flowplane.services.paging import Page, visible_page
from flowplane.settings import Settings
from flowplane.store import audit
from flowplane.store import credential_queries as q
from flowplane.store.base import Store
from flowplane.store.records import CredentialPolicyRecord, CredentialRecord
from flowplane.store.tx import Tx

_log = logging.getLogger("flowplane.credentials")

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
TYPE_PATTERN = r"^[a-z][a-z0-9_.-]{0,31}$"
DEFAULT_TYPE = "generic"
MAX_VALUE_BYTES = 64 * 1024
MAX_LIST_LIMIT = 500
ROTATE_BATCH = 200
# A connector pattern: a node type (``slack.send``) or a glob over them (``http.*``).
CONNECTOR_PATTERN = r"^[A-Za-z0-9_.*?-]{1,128}$"
MAX_POLICY_ENTRIES = 100
MAX_WORKFLOW_REF_CHARS = 128


class _Keep:
    """The type of :data:`KEEP`."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Final = _Keep()
"""An update argument left as it is (``None`` means "any" for the policy's lists)."""


def policy_of(row: CredentialPolicyRecord) -> UsePolicy:
    """The use policy of a credential."""
    workflows = row.allowed_workflows
    connectors = row.allowed_connectors
    template_use = row.template_use or DEFAULT_POLICY.template_use
    return UsePolicy(
        allowed_workflows=tuple(workflows) if workflows is not None else None,
        allowed_connectors=tuple(connectors) if connectors is not None else None,
        template_use=cast(TemplateUse, template_use),
    )


def _check_list(
    values: Sequence[str] | None, what: str, pattern: str | None, max_chars: int
) -> list[str] | None:
    """``values`` deduplicated and sorted, checked; ``None`` stays ``None`` (any)."""
    if values is None:
        return None
    if isinstance(values, str) or len(values) > MAX_POLICY_ENTRIES:
        raise InvalidInput(f"{what} is a list of at most {MAX_POLICY_ENTRIES} entries, or null")
    for value in values:
        if not isinstance(value, str) or not 0 < len(value) <= max_chars:
            raise InvalidInput(f"each of {what} is a string of 1 to {max_chars} characters")
        if pattern is not None and not re.fullmatch(pattern, value):
            raise InvalidInput(
                f"{what} holds node types or glob patterns over them (http.*), got {value[:40]!r}"
            )
    return sorted(set(values))


def _check_template_use(template_use: str) -> TemplateUse:
    for allowed in TEMPLATE_USES:
        if template_use == allowed:
            return allowed
    raise InvalidInput(f"templateUse is one of {', '.join(TEMPLATE_USES)}")


def _policy_columns(
    allowed_workflows: Sequence[str] | None,
    allowed_connectors: Sequence[str] | None,
    template_use: str,
) -> dict[str, Any]:
    return {
        "allowed_workflows": _check_list(
            allowed_workflows, "allowedWorkflows", None, MAX_WORKFLOW_REF_CHARS
        ),
        "allowed_connectors": _check_list(
            allowed_connectors, "allowedConnectors", CONNECTOR_PATTERN, 128
        ),
        "template_use": _check_template_use(template_use),
    }


@dataclass(frozen=True)
class Credential:
    """A credential as shown to callers: everything but the value."""

    id: str
    namespace: str
    name: str
    type: str
    description: str | None
    version: int
    key_id: str
    created_at_ms: int
    updated_at_ms: int
    created_by: str | None
    updated_by: str | None
    policy: UsePolicy = DEFAULT_POLICY

    @classmethod
    def from_row(cls, row: CredentialRecord) -> Credential:
        """Build from a stored credential (the envelope is left out)."""
        return cls(
            id=row.id,
            namespace=row.namespace,
            name=row.name,
            type=row.type,
            description=row.description,
            version=int(row.version),
            key_id=row.key_id,
            created_at_ms=int(row.created_at_ms),
            updated_at_ms=int(row.updated_at_ms),
            created_by=row.created_by,
            updated_by=row.updated_by,
            policy=policy_of(row),
        )


CredentialPage = Page[Credential]
"""One page of credentials; ``next_cursor`` is ``None`` on the last page."""


@dataclass(frozen=True)
class RotationReport:
    """What :func:`rotate_key` did."""

    key_id: str
    rotated: int
    already_current: int


def _check_name(name: str) -> None:
    if not re.fullmatch(NAME_PATTERN, name):
        raise InvalidInput(
            "a credential name is a letter or _ then up to 127 letters, digits or _ "
            "(it is used as {{ secrets.NAME }} and ${NAME})"
        )


def _check_type(type_: str) -> None:
    if not re.fullmatch(TYPE_PATTERN, type_):
        raise InvalidInput("a credential type is 1-32 of a-z 0-9 _ . - starting with a letter")


def _check_value(value: str) -> None:
    if not value:
        raise InvalidInput("a credential value cannot be empty")
    if len(value.encode()) > MAX_VALUE_BYTES:
        raise InvalidInput(f"a credential value is at most {MAX_VALUE_BYTES} bytes")


def _encode_cursor(row: CredentialRecord) -> str:
    return f"{row.namespace}/{row.name}"


def _decode_cursor(cursor: str) -> tuple[str, str]:
    namespace, sep, name = cursor.partition("/")
    if not sep:
        raise InvalidInput("cursor must be a nextCursor returned by a listing")
    return namespace, name


def _locked(
    tx: Tx, credential_id: str, namespaces: Sequence[str] | None, if_match: int | None
) -> CredentialRecord:
    """The credential, locked for a write at version ``if_match`` (when given).

    Raises:
        CredentialNotFound: absent or in another namespace.
        VersionMismatch: at another version than ``if_match``.
    """
    row = q.get(tx, credential_id, for_update=True)
    if row is None or (namespaces is not None and row.namespace not in namespaces):
        raise CredentialNotFound(f"credential {credential_id!r} not found")
    if if_match is not None and if_match != row.version:
        raise VersionMismatch(f"credential is at version {row.version}", current=row.version)
    return row


class CredentialService:
    """Create, list, update and delete credentials; values are write-only."""

    def __init__(self, store: Store, keyring: KeyRing | None) -> None:
        self.store = store
        self.keyring = keyring

    def _ring(self) -> KeyRing:
        if self.keyring is None:
            raise SecretKeyMissing(
                "credentials need a master key: set FLOWPLANE_SECRET_KEY to the base64 of "
                "32 random bytes (flowplane secrets generate-key), or serve on SQLite once to "
                "generate <data dir>/master.key; values are never stored unencrypted"
            )
        return self.keyring

    async def create(
        self,
        caller: Caller,
        namespace: str,
        name: str,
        value: str,
        *,
        type_: str = DEFAULT_TYPE,
        description: str | None = None,
        allowed_workflows: Sequence[str] | None = None,
        allowed_connectors: Sequence[str] | None = None,
        template_use: str = DEFAULT_POLICY.template_use,
        actor: audit.Actor | None = None,
    ) -> Credential:
        """Seal ``value`` and store it as credential ``name`` of ``namespace`` (admin).

        ``allowed_workflows``, ``allowed_connectors`` and ``template_use`` are its use
        policy (:class:`~flowplane.engine.secrets.UsePolicy`; the defaults allow any
        workflow and connector, templates only as exact substitutions in secret-bearing
        params). ``actor`` names someone else than the caller in the audit log (the CLI
        names the operating-system user).

        Raises:
            NotFound: the namespace is not visible to the caller.
            SecretKeyMissing: no master key is configured (nothing is stored).
            CredentialExists: the name is taken in the namespace.
        """
        caller.require("admin")
        caller.check_namespace(namespace, "namespace")
        _check_name(name)
        _check_type(type_)
        _check_value(value)
        policy = _policy_columns(allowed_workflows, allowed_connectors, template_use)
        ring = self._ring()
        who = actor or caller.actor
        credential_id = f"cred_{uuid.uuid4().hex}"
        envelope = ring.encrypt(value, context=credential_context(namespace, credential_id))

        def fn(tx: Tx) -> CredentialRecord:
            if q.by_name(tx, namespace, name) is not None:
                raise CredentialExists(
                    f"credential {name!r} already exists in namespace {namespace!r}"
                )
            row = {
                "id": credential_id,
                "namespace": namespace,
                "name": name,
                "type": type_,
                "description": description,
                "envelope": envelope,
                "key_id": ring.current.kid,
                "version": 1,
                "created_at_ms": tx.now_ms,
                "updated_at_ms": tx.now_ms,
                "created_by": who.name[:128],
                "updated_by": who.name[:128],
                **policy,
            }
            q.insert(tx, row)
            audit.record(
                tx,
                actor=who,
                action="credential.create",
                namespace=namespace,
                target_type="credential",
                target_id=credential_id,
                after_version=1,
                details={"name": name, "type": type_, "policy": _policy_details(policy)},
            )
            return CredentialRecord.from_row(row)

        return Credential.from_row(await self.store.transact(fn))

    async def get(self, caller: Caller, credential_id: str) -> Credential:
        """Return a credential's metadata (admin; 404 when absent or not visible)."""
        caller.require("admin")
        row = await self.store.read(lambda tx: q.get(tx, credential_id))
        if row is None or not caller.can_see(row.namespace):
            raise CredentialNotFound(f"credential {credential_id!r} not found")
        return Credential.from_row(row)

    async def list(
        self,
        caller: Caller,
        *,
        namespaces: Sequence[str] | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> CredentialPage:
        """Credentials ordered by namespace and name, in ``namespaces`` the caller sees
        (``None``: all); admin."""
        caller.require("admin")
        after = _decode_cursor(cursor) if cursor else None

        def read(tx: Tx, visible: list[str] | None, n: int) -> list[CredentialRecord]:
            return q.listing(tx, namespaces=visible, after=after, limit=n)

        limit = max(1, min(limit, MAX_LIST_LIMIT))
        page = await visible_page(self.store, caller, namespaces, limit, read, _encode_cursor)
        return page.map(Credential.from_row)

    async def update(
        self,
        caller: Caller,
        credential_id: str,
        *,
        value: str | None = None,
        type_: str | None = None,
        description: str | None = None,
        allowed_workflows: Sequence[str] | _Keep | None = KEEP,
        allowed_connectors: Sequence[str] | _Keep | None = KEEP,
        template_use: str | None = None,
        if_match: int | None = None,
        actor: audit.Actor | None = None,
    ) -> Credential:
        """Replace the value, type, description or use policy of a credential (admin).

        Args:
            caller: who asks (the credential must be in a namespace it sees).
            credential_id: the credential.
            value: a new value (sealed anew, with a new nonce).
            type_: a new type.
            description: a new description.
            allowed_workflows: new workflow names or ids allowed to use it (``None``:
                any; :data:`KEEP`: unchanged).
            allowed_connectors: new node types or patterns allowed (``None``: any;
                :data:`KEEP`: unchanged).
            template_use: a new template use (``none``, ``exact`` or ``any``).
            if_match: only update the credential at this version (412 otherwise).
            actor: who the audit log names instead of the caller.
        """
        caller.require("admin")
        if value is not None:
            _check_value(value)
        if type_ is not None:
            _check_type(type_)
        policy: dict[str, Any] = {}
        if not isinstance(allowed_workflows, _Keep):
            policy["allowed_workflows"] = _check_list(
                allowed_workflows, "allowedWorkflows", None, MAX_WORKFLOW_REF_CHARS
            )
        if not isinstance(allowed_connectors, _Keep):
            policy["allowed_connectors"] = _check_list(
                allowed_connectors, "allowedConnectors", CONNECTOR_PATTERN, 128
            )
        if template_use is not None:
            policy["template_use"] = _check_template_use(template_use)
        ring = self._ring() if value is not None else self.keyring
        who = actor or caller.actor
        namespaces = caller.namespaces

        def fn(tx: Tx) -> CredentialRecord:
            row = _locked(tx, credential_id, namespaces, if_match)
            changes: dict[str, Any] = {
                "version": row.version + 1,
                "updated_at_ms": tx.now_ms,
                "updated_by": who.name[:128],
            }
            changed = []
            if value is not None and ring is not None:
                context = credential_context(row.namespace, credential_id)
                changes["envelope"] = ring.encrypt(value, context=context)
                changes["key_id"] = ring.current.kid
                changed.append("value")
            if type_ is not None and type_ != row.type:
                changes["type"] = type_
                changed.append("type")
            if description is not None and description != row.description:
                changes["description"] = description
                changed.append("description")
            for column, new in policy.items():
                if new != getattr(row, column):
                    changes[column] = new
                    changed.append(_POLICY_FIELDS[column])
            q.update(tx, credential_id, expect_version=row.version, **changes)
            audit.record(
                tx,
                actor=who,
                action="credential.update",
                namespace=row.namespace,
                target_type="credential",
                target_id=credential_id,
                before_version=row.version,
                after_version=changes["version"],
                details={
                    "name": row.name,
                    "changed": changed,
                    **(
                        {"policy": _policy_details({**row.columns(), **changes})}
                        if any(f in changed for f in _POLICY_FIELDS.values())
                        else {}
                    ),
                },
            )
            return CredentialRecord.from_row({**row.columns(), **changes})

        return Credential.from_row(await self.store.transact(fn))

    async def delete(
        self,
        caller: Caller,
        credential_id: str,
        *,
        if_match: int | None = None,
        actor: audit.Actor | None = None,
    ) -> Credential:
        """Delete a credential (admin); return what it was."""
        caller.require("admin")
        who = actor or caller.actor
        namespaces = caller.namespaces

        def fn(tx: Tx) -> CredentialRecord:
            row = _locked(tx, credential_id, namespaces, if_match)
            q.delete(tx, credential_id)
            audit.record(
                tx,
                actor=who,
                action="credential.delete",
                namespace=row.namespace,
                target_type="credential",
                target_id=credential_id,
                before_version=row.version,
                details={"name": row.name},
            )
            return row

        return Credential.from_row(await self.store.transact(fn))

    async def resolve(self, namespace: str, names: Iterable[str]) -> dict[str, str]:
        """Return the plaintext values of ``names`` in ``namespace`` (the worker's path).

        Without a master key nothing is resolved from the database. A value that cannot be
        decrypted is left out (the node then fails on the missing secret) and logged by
        name only.
        """
        wanted = list(names)
        if self.keyring is None or not wanted:
            return {}
        ring = self.keyring
        rows = await self.store.read(lambda tx: q.by_names(tx, namespace, wanted))
        out: dict[str, str] = {}
        for row in rows:
            try:
                out[row.name] = ring.decrypt(
                    row.envelope, context=credential_context(namespace, row.id)
                )
            except DecryptionFailed as exc:
                _log.error(
                    "credential %s/%s cannot be decrypted: %s", namespace, row.name, exc.detail
                )
        return out


class DatabaseSecrets:
    """The worker's secrets: credentials of the run's namespace first, then the environment.

    The environment fallback (``FLOWPLANE_SECRET_<NAME>``) keeps ``flowplane run`` and
    single-machine set-ups working without stored credentials.
    """

    def __init__(
        self,
        store: Store,
        keyring: KeyRing | None,
        *,
        fallback: SecretsProvider | None = None,
    ) -> None:
        self.credentials = CredentialService(store, keyring)
        self.fallback: SecretsProvider = fallback or EnvSecrets()

    async def resolve(self, namespace: str, names: Iterable[str]) -> dict[str, str]:
        """Return the values of ``names`` that exist (missing names are left out)."""
        wanted = list(dict.fromkeys(names))
        found = await self.credentials.resolve(namespace, wanted)
        missing = [n for n in wanted if n not in found]
        if missing:
            found.update(await self.fallback.resolve(namespace, missing))
        # Libraries used by connectors log too (httpx logs request URLs): keep the values
        # out of this process's log records.
        remember_in_logs(found.values())
        return found

    async def policies(self, namespace: str, names: Iterable[str]) -> dict[str, UsePolicy]:
        """Return the use policies of the stored credentials among ``names`` (environment
        secrets and missing names follow the default policy)."""
        wanted = list(dict.fromkeys(names))
        if not wanted:
            return {}
        rows = await self.credentials.store.read(lambda tx: q.policies(tx, namespace, wanted))
        return {row.name: policy_of(row) for row in rows}


_POLICY_FIELDS = {
    "allowed_workflows": "allowedWorkflows",
    "allowed_connectors": "allowedConnectors",
    "template_use": "templateUse",
}


def _policy_details(row: Mapping[str, Any]) -> dict[str, Any]:
    """The policy of ``row`` as an audit entry shows it (wire names)."""
    return {wire: row.get(column) for column, wire in _POLICY_FIELDS.items()}


def keyring_from_settings(
    settings: Settings, environ: Mapping[str, str] | None = None
) -> KeyRing | None:
    """Return the key ring of ``settings.secret_key`` (plus ``FLOWPLANE_SECRET_KEYS_OLD``).

    Without ``FLOWPLANE_SECRET_KEY``, the key generated on first start in
    ``<data dir>/master.key`` (:mod:`flowplane.security.key_file`) is used when it exists.
    """
    env = os.environ if environ is None else environ
    key = settings.secret_key
    if not (key or "").strip() and not env.get(KEY_ENV, "").strip():
        key = read_key_file(settings.data_dir)
    return KeyRing.from_env(env, key=key)


def worker_options(store: Store, settings: Settings) -> dict[str, Any]:
    """Return the ``Worker`` keyword arguments for credentials and the KV store.

    ``secrets`` is a :class:`DatabaseSecrets` when a master key is configured (environment
    variables only otherwise); ``kv_factory`` gives connectors the store-backed KV.
    """
    from flowplane.services.kv import kv_factory

    options: dict[str, Any] = {"kv_factory": kv_factory(store)}
    keyring = keyring_from_settings(settings)
    if keyring is not None:
        options["secrets"] = DatabaseSecrets(store, keyring)
    return options


async def rotate_key(store: Store, keyring: KeyRing, *, actor: audit.Actor) -> RotationReport:
    """Re-encrypt every credential not sealed under ``keyring.current``.

    Every key of the ring decrypts; the current one seals. Each batch is one transaction
    (with an audit entry per credential), so an interrupted rotation can simply be run
    again. Raises ``DecryptionFailed`` naming the missing key id when an envelope's key is
    not in the ring.
    """
    kid = keyring.current.kid
    rotated = 0

    def batch(tx: Tx) -> int:
        count = 0
        for credential_id in q.ids_needing_rotation(tx, kid, ROTATE_BATCH):
            row = q.get(tx, credential_id, for_update=True)
            if row is None or key_id_of(row.envelope) == kid:
                continue
            context = credential_context(row.namespace, credential_id)
            value = keyring.decrypt(row.envelope, context=context)
            q.update(
                tx,
                credential_id,
                expect_version=row.version,
                envelope=keyring.encrypt(value, context=context),
                key_id=kid,
            )
            audit.record(
                tx,
                actor=actor,
                action="credential.rotate_key",
                namespace=row.namespace,
                target_type="credential",
                target_id=credential_id,
                before_version=row.version,
                after_version=row.version,
                details={"name": row.name, "fromKeyId": row.key_id, "toKeyId": kid},
            )
            count += 1
        return count

    while True:
        done = await store.transact(batch)
        rotated += done
        if done == 0:
            break
    counts = await store.read(q.count_by_key)
    return RotationReport(key_id=kid, rotated=rotated, already_current=counts.get(kid, 0) - rotated)
