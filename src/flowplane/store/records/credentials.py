"""Records of credentials: the sealed value and its use policy (never a plaintext)."""

from __future__ import annotations

from dataclasses import dataclass

from flowplane.store.records.base import Record

__all__ = ["CredentialPolicyRecord", "CredentialRecord"]


@dataclass(frozen=True)
class CredentialPolicyRecord(Record):
    """Where a credential may be used (``template_use``: ``none``, ``exact`` or ``any``)."""

    name: str
    allowed_workflows: list[str] | None = None
    allowed_connectors: list[str] | None = None
    template_use: str = "exact"


@dataclass(frozen=True)
class CredentialRecord(CredentialPolicyRecord):
    """A stored credential: metadata and the encrypted ``envelope``."""

    id: str = ""
    namespace: str = ""
    type: str = "generic"
    description: str | None = None
    envelope: str = ""
    key_id: str = ""
    version: int = 0
    created_at_ms: int = 0
    updated_at_ms: int = 0
    created_by: str | None = None
    updated_by: str | None = None
