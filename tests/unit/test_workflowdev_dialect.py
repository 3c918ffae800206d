"""workflowdev's flow dialect, both ways (flowplane.model.dialects.workflowdev)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flowplane.connectors.registry import default_registry
from flowplane.errors import DocumentError, WorkflowInvalid
from flowplane.model.dialects.workflowdev import (
    TYPE_ALIASES,
    from_document,
    to_document,
    to_yaml,
)
from flowplane.model.document import Workflow
from flowplane.model.graph import check_workflow
from flowplane.model.yaml import parse_workflow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# Flows: "Create a flow" (the seed's yamlContent, verbatim)
SEED_YAML = (
    "name: my-workflow\ntasks:\n  - name: hello\n    type: util.log\n    properties:\n"
    "      message: Hello world\n"
)


def normal(document: dict[str, Any]) -> dict[str, Any]:
    data = Workflow.model_validate(document).to_document()
    data.pop("source", None)
    return data


def test_the_seed_flow_translates_to_one_node_and_keeps_its_text() -> None:
    doc = to_document(SEED_YAML, namespace="production")
    assert doc["name"] == "my-workflow" and doc["namespace"] == "production"
    assert doc["nodes"] == [
        {"id": "hello", "type": "util.log", "params": {"message": "Hello world"}}
    ]
    assert doc["source"] == {"dialect": "workflowdev", "text": SEED_YAML}
    check_workflow(Workflow.model_validate(doc), default_registry())
    assert from_document(doc) == SEED_YAML


def test_the_request_name_and_namespace_win_over_the_texts() -> None:
    doc = to_document("name: a\nnamespace: x\ntasks: [{name: t, type: util.noop}]\n", name="b")
    assert doc["name"] == "b" and doc["namespace"] == "x"
    assert to_document(SEED_YAML, namespace="y")["namespace"] == "y"


def test_every_task_field_maps_to_a_node_field_and_back() -> None:
    yaml = """\
name: full
description: every field
timeout: 1h
inputs: {type: object}
tasks:
  - name: fetch
    type: http.request
    description: get it
    properties: {url: "https://example.com/${TOKEN}"}
    timeout: 30s
    retry: {max_attempts: 3, backoff: fixed}
  - name: each
    type: util.log
    depends_on: [fetch]
    condition: "{{ nodes.fetch.output.status_code == 200 }}"
    foreach: [1, 2]
    max_parallel: 2
    trigger_rule: all_done
    on_error: continue
    display_name: Each item
    properties: {message: "{{ item }}"}
triggers:
  - {type: schedule, cron: "0 3 * * *"}
"""
    doc = to_document(yaml)
    each = doc["nodes"][1]
    assert each["needs"] == ["fetch"] and each["when"].startswith("{{")
    assert each["name"] == "Each item" and each["foreach"] == [1, 2]
    check_workflow(Workflow.model_validate(doc), default_registry())
    assert from_document(doc) == yaml
    # Without its source, the document is written out in the dialect, and reads back equal.
    regenerated = to_yaml({k: v for k, v in doc.items() if k != "source"})
    assert normal(to_document(regenerated)) == normal(doc)


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_workflow_round_trips(example: Path) -> None:
    native = parse_workflow(example.read_text()).to_document()
    yaml = to_yaml(native)
    again = to_document(yaml)
    assert normal(again) == normal(native)
    assert from_document(again) == yaml


def test_type_aliases_become_flowplane_connectors() -> None:
    registry = default_registry()
    for alias in TYPE_ALIASES.values():
        registry.get(alias.type)  # every target exists
    doc = to_document(
        "name: g\ntasks:\n  - {name: gate, type: control.gate, properties: {message: Ship it?}}\n"
    )
    assert doc["nodes"][0]["type"] == "control.approval"
    assert doc["nodes"][0]["params"] == {"title": "Ship it?"}
    check_workflow(Workflow.model_validate(doc), registry)
    # Written back out, the node keeps Flowplane's type (which the dialect also accepts).
    assert "type: control.approval" in to_yaml(doc)


def test_a_stale_source_is_not_given_back() -> None:
    doc = to_document(SEED_YAML)
    doc["nodes"][0]["params"]["message"] = "changed through /v1"
    text = from_document(doc)
    assert text != SEED_YAML and "changed through /v1" in text
    # A new name or description does not make the text stale: the flow carries those.
    renamed = {**to_document(SEED_YAML), "name": "other", "description": "d"}
    assert from_document(renamed) == SEED_YAML


@pytest.mark.parametrize(
    ("yaml", "words"),
    [
        ("name: x\n", ["tasks"]),
        ("name: x\ntasks: []\n", ["tasks"]),
        ("tasks: [{name: a, type: util.noop}]\n", ["name"]),
        ("name: x\nsteps: []\ntasks: [{name: a, type: util.noop}]\n", ["steps"]),
        ("name: x\ntasks: [{type: util.noop}]\n", ["name"]),
        ("name: x\ntasks: [{name: 'has space', type: util.noop}]\n", ["has space"]),
        ("name: x\ntasks: [{name: a}]\n", ["'a'", "type"]),
        ("name: x\ntasks: [{name: a, type: util.noop, retries: 3}]\n", ["retries", "'a'"]),
        ("name: x\ntasks: [{name: a, type: util.noop, properties: [1]}]\n", ["properties"]),
        ("name: x\ntasks: [oops]\n", ["mapping"]),
    ],
)
def test_bad_flows_name_the_problem(yaml: str, words: list[str]) -> None:
    with pytest.raises(WorkflowInvalid) as caught:
        to_document(yaml)
    text = caught.value.detail + repr(caught.value.extra["errors"])
    for word in words:
        assert word in text


def test_unknown_types_are_refused_by_validation_naming_the_task_and_type() -> None:
    doc = to_document("name: x\ntasks: [{name: sync, type: crm.sync}]\n")
    with pytest.raises(WorkflowInvalid) as caught:
        check_workflow(Workflow.model_validate(doc), default_registry())
    [error] = caught.value.extra["errors"]
    assert error["node_id"] == "sync" and "crm.sync" in error["error"]


def test_text_that_is_not_yaml_is_a_document_error() -> None:
    with pytest.raises(DocumentError):
        to_document("name: [unclosed\n")
