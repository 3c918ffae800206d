"""Wire models of ``/v1/credentials``: bodies in and out (never a value out)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from flowplane.api.models.common import iso
from flowplane.client.models import WireModel
from flowplane.model.document import DEFAULT_NAMESPACE, NAMESPACE_PATTERN
from flowplane.services.credentials import (
    CONNECTOR_PATTERN,
    MAX_POLICY_ENTRIES,
    MAX_WORKFLOW_REF_CHARS,
    NAME_PATTERN,
    TYPE_PATTERN,
    Credential,
)

SECRET_VALUE_MAX_CHARS = 65_536

TemplateUseField = Literal["none", "exact", "any"]
WorkflowRef = Annotated[str, Field(min_length=1, max_length=MAX_WORKFLOW_REF_CHARS)]
ConnectorRef = Annotated[str, Field(pattern=CONNECTOR_PATTERN)]

_ALLOWED_WORKFLOWS = (
    "Names or ids of the stored workflows whose runs may use the credential; null: any. "
    "A name never matches an inline (ad-hoc) run."
)
_ALLOWED_CONNECTORS = (
    "Node types that may use the credential, exact (`slack.send`) or glob patterns "
    "(`http.*`); null: any."
)
_TEMPLATE_USE = (
    "`none`: only through a connector's credential parameter (`credential: NAME`); "
    "`exact`: also substituted as is (`${NAME}`) in params the connector declares "
    "secret-bearing (HTTP headers and URLs); `any`: in any template, transformed or not "
    "(values escape redaction once transformed)."
)


class _Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class CredentialCreate(_Body):
    """``POST /v1/credentials``."""

    namespace: str = Field(default=DEFAULT_NAMESPACE, pattern=NAMESPACE_PATTERN)
    name: str = Field(
        pattern=NAME_PATTERN, description="Referenced as `{{ secrets.NAME }}` or `${NAME}`."
    )
    type: str = Field(
        default="generic",
        pattern=TYPE_PATTERN,
        description="Free-form kind, e.g. `generic`, `api_key`, `password`, `oauth_token`.",
    )
    description: str | None = Field(default=None, max_length=500)
    value: str = Field(
        min_length=1,
        max_length=SECRET_VALUE_MAX_CHARS,
        description="The secret. Write-only: no response ever contains it.",
    )
    allowed_workflows: list[WorkflowRef] | None = Field(
        default=None, max_length=MAX_POLICY_ENTRIES, description=_ALLOWED_WORKFLOWS
    )
    allowed_connectors: list[ConnectorRef] | None = Field(
        default=None, max_length=MAX_POLICY_ENTRIES, description=_ALLOWED_CONNECTORS
    )
    template_use: TemplateUseField = Field(default="exact", description=_TEMPLATE_USE)


class CredentialUpdate(_Body):
    """``PUT /v1/credentials/{id}``: any of a new value, type, description or policy field.

    A policy field left out is kept; ``null`` for a list means "any".
    """

    value: str | None = Field(default=None, min_length=1, max_length=SECRET_VALUE_MAX_CHARS)
    type: str | None = Field(default=None, pattern=TYPE_PATTERN)
    description: str | None = Field(default=None, max_length=500)
    allowed_workflows: list[WorkflowRef] | None = Field(
        default=None, max_length=MAX_POLICY_ENTRIES, description=_ALLOWED_WORKFLOWS
    )
    allowed_connectors: list[ConnectorRef] | None = Field(
        default=None, max_length=MAX_POLICY_ENTRIES, description=_ALLOWED_CONNECTORS
    )
    template_use: TemplateUseField | None = Field(default=None, description=_TEMPLATE_USE)


class CredentialOut(WireModel):
    """A credential, without its value."""

    id: str
    namespace: str
    name: str
    type: str
    description: str | None = None
    version: int = Field(description="1 at creation, +1 on every change; the ETag.")
    key_id: str = Field(description="The id of the master key sealing the value.")
    created_at_ms: int
    updated_at_ms: int
    created_at: str | None = None
    updated_at: str | None = None
    created_by: str | None = None
    updated_by: str | None = None
    allowed_workflows: list[str] | None = Field(default=None, description=_ALLOWED_WORKFLOWS)
    allowed_connectors: list[str] | None = Field(default=None, description=_ALLOWED_CONNECTORS)
    template_use: TemplateUseField = Field(default="exact", description=_TEMPLATE_USE)


class CredentialList(WireModel):
    """A page of credentials."""

    items: list[CredentialOut]
    next_cursor: str | None = None


def credential_model(c: Credential) -> CredentialOut:
    """The wire form of a credential."""
    return CredentialOut(
        id=c.id,
        namespace=c.namespace,
        name=c.name,
        type=c.type,
        description=c.description,
        version=c.version,
        key_id=c.key_id,
        created_at_ms=c.created_at_ms,
        updated_at_ms=c.updated_at_ms,
        created_at=iso(c.created_at_ms),
        updated_at=iso(c.updated_at_ms),
        created_by=c.created_by,
        updated_by=c.updated_by,
        allowed_workflows=(
            list(c.policy.allowed_workflows) if c.policy.allowed_workflows is not None else None
        ),
        allowed_connectors=(
            list(c.policy.allowed_connectors) if c.policy.allowed_connectors is not None else None
        ),
        template_use=c.policy.template_use,
    )
