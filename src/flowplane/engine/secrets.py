"""Secrets for node runs: where their values come from, and which uses their policy allows.

How values are kept out of records is :mod:`flowplane.security.redaction`. Redaction masks
exact values (and a few encodings of them); a value transformed by a template (``| upper``,
``| reverse``, a slice) or by a connector that computes on its params escapes it. So each
credential carries a :class:`UsePolicy`, and the engine checks every use a node makes of a
secret (:func:`check_use`) before the value is even decrypted.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Literal, Protocol

from flowplane.errors import CredentialUseDenied

ENV_PREFIX = "FLOWPLANE_SECRET_"

TemplateUse = Literal["none", "exact", "any"]
TEMPLATE_USES: tuple[TemplateUse, ...] = ("none", "exact", "any")
DEFAULT_TEMPLATE_USE: TemplateUse = "exact"
# A connector input-schema property whose exact secret substitutions are allowed under
# ``templateUse: exact``: the connector sends it out as a credential (a request header,
# the URL) and neither computes on it nor returns it.
SECRET_PARAM = "x-secret"
# A property holding templates another run evaluates (``flow.run``'s inline document):
# the secrets named there are that run's, checked when its nodes run.
DEFERRED_PARAM = "x-deferred"


@dataclass(frozen=True)
class UsePolicy:
    """What an admin allows a credential to be used for.

    Attributes:
        allowed_workflows: names or ids of the stored workflows whose runs may use it
            (``None``: any). A name matches only runs of a stored workflow, never an
            inline document that happens to carry that name.
        allowed_connectors: node types that may use it, exact (``slack.send``) or
            patterns (``http.*``) (``None``: any).
        template_use: ``none``: only through a connector's credential parameters
            (``credential: NAME``); ``exact`` (the default): also substituted as is
            (``${NAME}``, ``{{ secrets.NAME }}``) in the params a connector declares
            secret-bearing (``x-secret``: HTTP headers, URLs); ``any``: in any template,
            transformed or not (what every credential allowed before use policies).
    """

    allowed_workflows: tuple[str, ...] | None = None
    allowed_connectors: tuple[str, ...] | None = None
    template_use: TemplateUse = DEFAULT_TEMPLATE_USE


DEFAULT_POLICY = UsePolicy()


@dataclass(frozen=True)
class SecretUse:
    """How one node uses one secret (computed from the pinned document by the plan).

    Attributes:
        credential_param: named by a credential parameter (``credential: NAME``).
        exact_params: top-level params holding it substituted as is.
        other: where it is used otherwise: top-level params whose templates transform it
            (filters, slices, tests, ``{% filter %}`` blocks, a bare ``secrets``), and
            ``when`` / ``foreach``.
    """

    credential_param: bool = False
    exact_params: frozenset[str] = frozenset()
    other: frozenset[str] = frozenset()


@dataclass(frozen=True)
class UseSite:
    """Where a node run uses its secrets: its node, connector type and workflow."""

    node_id: str
    node_type: str
    workflow_name: str
    workflow_id: str | None
    secret_params: frozenset[str]
    deferred_params: frozenset[str] = frozenset()


def secret_params(input_schema: Mapping[str, Any], marker: str = SECRET_PARAM) -> frozenset[str]:
    """The top-level params of a connector's input schema marked ``marker``."""
    properties = input_schema.get("properties") or {}
    return frozenset(
        key for key, prop in properties.items() if isinstance(prop, dict) and prop.get(marker)
    )


def _listed(values: Iterable[str]) -> str:
    return ", ".join(sorted(values))


def used_here(use: SecretUse, deferred_params: frozenset[str]) -> bool:
    """Whether a node uses a secret itself (not only in a child run's document)."""
    return bool(
        use.credential_param
        or (use.exact_params - deferred_params)
        or (use.other - deferred_params)
    )


def check_use(name: str, use: SecretUse, policy: UsePolicy, site: UseSite) -> None:
    """Refuse a use of credential ``name`` that ``policy`` does not allow.

    Raises:
        CredentialUseDenied: naming the credential, the rule and the node (never the value).
    """
    exact = use.exact_params - site.deferred_params
    other = use.other - site.deferred_params
    if not (use.credential_param or exact or other):
        return  # named only in a child run's document: that run checks it
    allowed = policy.allowed_workflows
    if allowed is not None and not (
        site.workflow_id is not None
        and (site.workflow_id in allowed or site.workflow_name in allowed)
    ):
        raise CredentialUseDenied(
            f"credential {name!r} may not be used by workflow {site.workflow_name!r} "
            f"(node {site.node_id!r}): its allowedWorkflows are [{_listed(allowed)}]",
            credential=name,
            rule="allowedWorkflows",
        )
    patterns = policy.allowed_connectors
    if patterns is not None and not any(fnmatchcase(site.node_type, p) for p in patterns):
        raise CredentialUseDenied(
            f"credential {name!r} may not be used by connector {site.node_type!r} "
            f"(node {site.node_id!r}): its allowedConnectors are [{_listed(patterns)}]",
            credential=name,
            rule="allowedConnectors",
        )
    if policy.template_use == "any":
        return
    templated = exact | other
    if policy.template_use == "none" and templated:
        raise CredentialUseDenied(
            f"credential {name!r} may only be passed to a connector's credential parameter "
            f"(its templateUse is 'none'); node {site.node_id!r} names it in a template "
            f"({_listed(templated)})",
            credential=name,
            rule="templateUse",
        )
    if other:
        raise CredentialUseDenied(
            f"credential {name!r} may only be substituted as is (${{{name}}} or "
            f"{{{{ secrets.{name} }}}}) in a secret-bearing param (its templateUse is "
            f"'exact'); node {site.node_id!r} transforms it or tests it in "
            f"{_listed(other)}",
            credential=name,
            rule="templateUse",
        )
    outside = exact - site.secret_params
    if outside:
        bearing = _listed(site.secret_params) or "none"
        raise CredentialUseDenied(
            f"credential {name!r} may only be substituted in the secret-bearing params of "
            f"{site.node_type!r} ({bearing}) (its templateUse is 'exact'); node "
            f"{site.node_id!r} puts it in {_listed(outside)}",
            credential=name,
            rule="templateUse",
        )


class SecretsProvider(Protocol):
    """Resolves secret names to values, only inside the worker, when a node runs."""

    async def resolve(self, namespace: str, names: Iterable[str]) -> dict[str, str]:
        """Return the values of ``names`` that exist (missing names are left out)."""
        ...  # pragma: no cover - protocol

    async def policies(self, namespace: str, names: Iterable[str]) -> dict[str, UsePolicy]:
        """Return the use policies of ``names`` that have one of their own (the others
        follow :data:`DEFAULT_POLICY`)."""
        ...  # pragma: no cover - protocol


class EnvSecrets:
    """Secrets from ``FLOWPLANE_SECRET_<NAME>`` environment variables (local runs).

    They follow :data:`DEFAULT_POLICY`: an operator's environment is no more open to a
    workflow's templates than an admin's stored credential.
    """

    async def resolve(self, namespace: str, names: Iterable[str]) -> dict[str, str]:
        """Return the values of ``names`` found in the environment."""
        out: dict[str, str] = {}
        for name in names:
            value = os.environ.get(ENV_PREFIX + name)
            if value is not None:
                out[name] = value
        return out

    async def policies(self, namespace: str, names: Iterable[str]) -> dict[str, UsePolicy]:
        """None of their own: environment secrets follow the default policy."""
        return {}
