"""How templates use secrets, and what a credential's use policy lets a node do with one."""

from __future__ import annotations

import pytest

from flowplane.engine.plan import Plan
from flowplane.engine.secrets import SecretUse, UsePolicy, UseSite, check_use
from flowplane.errors import CredentialUseDenied
from flowplane.model.templates import secret_uses


@pytest.mark.parametrize(
    "source",
    [
        "Bearer ${X}",
        "{{ secrets.X }}",
        "{{ secrets['X'] }}",
        "a {{ secrets.X }} b {{ secrets.X }}",
        "{% if input.on %}{{ secrets.X }}{% endif %}",
        "{% for i in range(2) %}{{ secrets.X }}{% endfor %}",
    ],
)
def test_exact_substitutions(source: str) -> None:
    assert secret_uses(source) == (("X", True),)


@pytest.mark.parametrize(
    "source",
    [
        "{{ secrets.X | upper }}",
        "{{ secrets.X | reverse }}",
        "{{ secrets.X | list }}",
        "{{ secrets.X[1:] }}",
        "{{ secrets.X[0] }}",
        "{{ secrets.X.upper() }}",
        "{{ secrets.X ~ 'a' }}",
        "{% if secrets.X == 'a' %}yes{% endif %}",
        "{% for c in secrets.X %}{{ c }}{% endfor %}",
        "{% filter upper %}{{ secrets.X }}{% endfilter %}",
        "{% set v %}{{ secrets.X }}{% endset %}{{ v | upper }}",
        "{{ secrets.X }}{{ secrets.X | upper }}",
    ],
)
def test_transformations(source: str) -> None:
    assert secret_uses(source) == (("X", False),)


@pytest.mark.parametrize(
    "source", ["{{ secrets | list }}", "{{ secrets.values() | first }}", "{{ secrets[input.k] }}"]
)
def test_the_whole_mapping(source: str) -> None:
    assert ("", False) in secret_uses(source)


def test_plan_records_each_use() -> None:
    plan = Plan.build(
        {
            "name": "w",
            "nodes": [
                {
                    "id": "a",
                    "type": "http.request",
                    "when": "input.on and secrets.FLAG",
                    "params": {
                        "url": "https://x.test/?k=${KEY}",
                        "headers": {"A": "${TOKEN}", "B": "{{ secrets.OTHER | upper }}"},
                        "credential": "GIVEN",
                    },
                },
                {"id": "b", "type": "util.log", "params": {"message": "{{ secrets | list }}"}},
            ],
        }
    )
    uses = plan.secret_uses["a"]
    assert uses["KEY"] == SecretUse(exact_params=frozenset({"url"}))
    assert uses["TOKEN"] == SecretUse(exact_params=frozenset({"headers"}))
    assert uses["OTHER"] == SecretUse(other=frozenset({"headers"}))
    assert uses["FLAG"] == SecretUse(other=frozenset({"when"}))
    assert uses["GIVEN"] == SecretUse(credential_param=True)
    assert "b" not in plan.secret_uses  # a bare ``secrets`` alone resolves nothing


SITE = UseSite(
    node_id="n",
    node_type="http.request",
    workflow_name="billing",
    workflow_id="wf_1",
    secret_params=frozenset({"headers", "url"}),
)


def _denied(use: SecretUse, policy: UsePolicy, site: UseSite = SITE) -> str:
    with pytest.raises(CredentialUseDenied) as caught:
        check_use("X", use, policy, site)
    assert caught.value.retryable is False
    assert caught.value.extra["credential"] == "X"
    rule: str = caught.value.extra["rule"]
    return rule


def test_policy_rules() -> None:
    header = SecretUse(exact_params=frozenset({"headers"}))
    check_use("X", header, UsePolicy(), SITE)
    check_use("X", header, UsePolicy(allowed_connectors=("http.*",)), SITE)
    check_use("X", header, UsePolicy(allowed_workflows=("billing",)), SITE)
    check_use("X", header, UsePolicy(allowed_workflows=("wf_1",)), SITE)
    assert _denied(header, UsePolicy(allowed_connectors=("slack.send",))) == "allowedConnectors"
    assert _denied(header, UsePolicy(allowed_connectors=())) == "allowedConnectors"
    assert _denied(header, UsePolicy(allowed_workflows=("other",))) == "allowedWorkflows"
    inline = UseSite("n", "http.request", "billing", None, frozenset({"headers"}))
    assert _denied(header, UsePolicy(allowed_workflows=("billing",)), inline) == "allowedWorkflows"
    assert _denied(header, UsePolicy(template_use="none")) == "templateUse"
    check_use("X", SecretUse(credential_param=True), UsePolicy(template_use="none"), SITE)
    body = SecretUse(exact_params=frozenset({"body"}))
    assert _denied(body, UsePolicy()) == "templateUse"
    check_use("X", body, UsePolicy(template_use="any"), SITE)
    transformed = SecretUse(other=frozenset({"headers"}))
    assert _denied(transformed, UsePolicy()) == "templateUse"
    check_use("X", transformed, UsePolicy(template_use="any"), SITE)


def test_uses_in_a_child_document_are_the_childs() -> None:
    site = UseSite("n", "flow.run", "w", "wf_1", frozenset(), frozenset({"document"}))
    in_child = SecretUse(other=frozenset({"document"}))
    check_use("X", in_child, UsePolicy(allowed_connectors=("http.*",)), site)
    both = SecretUse(other=frozenset({"document", "when"}))
    assert _denied(both, UsePolicy(), site) == "templateUse"
