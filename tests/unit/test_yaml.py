"""Loading, validating and dumping workflow documents."""

from __future__ import annotations

import json
import time

import pytest

from flowplane.errors import DocumentError, WorkflowInvalid
from flowplane.model.yaml import (
    MAX_DEPTH,
    MAX_DOCUMENT_BYTES,
    dump_json,
    dump_yaml,
    line_of,
    load_document,
    parse_path,
    parse_workflow,
)

WORKFLOW_YAML = """\
name: order-followup
namespace: shop
inputs:
  type: object
  required: [order_id]
  properties: {order_id: {type: integer}}
timeout: 1h
nodes:
  - id: fetch
    type: http.request
    params:
      url: "https://shop.example/api/orders/{{ input.order_id }}"
    retry: {max_attempts: 5, backoff: exponential, initial: 1s, max: 1m}
  - id: notify
    type: util.log
    needs: [fetch]
    params: {message: "done"}
"""


def test_load_yaml_and_json_agree() -> None:
    from_yaml = load_document(WORKFLOW_YAML)
    from_json = load_document(json.dumps(from_yaml))
    assert from_yaml == from_json
    assert from_yaml["nodes"][0]["retry"]["max_attempts"] == 5
    assert load_document(json.dumps(from_yaml).encode()) == from_yaml


def test_yaml_flow_mapping_is_accepted() -> None:
    assert load_document("{name: x, nodes: []}") == {"name": "x", "nodes": []}


def test_billion_laughs_fails_fast() -> None:
    bomb = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for prev, cur in zip("abcdefgh", "bcdefghi", strict=True):
        bomb += f"{cur}: &{cur} [{', '.join(['*' + prev] * 9)}]\n"
    started = time.monotonic()
    with pytest.raises(DocumentError) as info:
        load_document(bomb)
    # A hang guard, not a speed target: expanded, the document holds 9**9 strings.
    assert time.monotonic() - started < 30
    assert "YAML aliases expand beyond the document size limit" in info.value.detail
    assert info.value.extra["line"] == 7


def test_too_many_aliases() -> None:
    text = "x: &x 1\nl: [" + ", ".join(["*x"] * 65) + "]\n"
    with pytest.raises(DocumentError, match="more than 64 YAML aliases"):
        load_document(text)


def test_a_few_aliases_are_allowed_and_not_shared() -> None:
    doc = load_document("base: &r {max_attempts: 3}\na: *r\nb: {<<: *r, jitter: false}\n")
    assert doc == {
        "base": {"max_attempts": 3},
        "a": {"max_attempts": 3},
        "b": {"max_attempts": 3, "jitter": False},
    }
    doc["a"]["max_attempts"] = 9
    assert doc["base"]["max_attempts"] == 3


@pytest.mark.parametrize(
    "text",
    [
        "a: " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
        '{"a": ' + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "}",
        '{"a": ' + "[" * 200_000 + "]" * 200_000 + "}",
    ],
)
def test_depth_limit(text: str) -> None:
    with pytest.raises(DocumentError, match="nesting deeper than 64"):
        load_document(text)


def test_depth_at_the_limit_is_fine() -> None:
    doc = load_document("a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1))
    assert "a" in doc


def test_size_limit() -> None:
    text = "a: '" + "x" * MAX_DOCUMENT_BYTES + "'"
    with pytest.raises(DocumentError, match="over the limit of 1048576"):
        load_document(text)
    with pytest.raises(DocumentError, match="over the limit"):
        load_document(text.encode())


def test_syntax_error_has_line_and_column() -> None:
    with pytest.raises(DocumentError) as info:
        load_document("name: x\nnodes: [\n")
    assert info.value.extra == {"line": 3, "column": 1}
    assert info.value.detail.startswith("<document>: line 3, column 1: ")


def test_json_error_has_line_and_column() -> None:
    with pytest.raises(DocumentError) as info:
        load_document('{"name": "x",\n "nodes": [1,,]}', source="wf.json")
    assert info.value.extra == {"line": 2, "column": 14}
    assert info.value.detail == ("wf.json: line 2, column 14: invalid JSON: Expecting value")


def test_duplicate_keys_are_refused() -> None:
    with pytest.raises(DocumentError) as info:
        load_document("name: a\nname: b\n")
    assert info.value.detail == "<document>: line 2, column 1: duplicate key 'name'"
    assert info.value.extra == {"line": 2, "column": 1}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- 1\n- 2\n", "must be a mapping, not list"),
        ("just text", "must be a mapping, not str"),
        ("   \n", "document is empty"),
        ("a: !!binary aGk=", "tag:yaml.org,2002:binary is not allowed"),
        ("a: !!set {x}", "tag:yaml.org,2002:set is not allowed"),
        ("a: !!python/object:os.system x", "could not determine a constructor"),
        ("a: .nan", "nan is not a valid number"),
        ("? [1, 2]\n: x\n", "mapping keys must be strings"),
        ("a: 1\n---\nb: 2\n", "expected a single document"),
    ],
)
def test_refused_documents(text: str, message: str) -> None:
    with pytest.raises(DocumentError, match=message):
        load_document(text)


def test_not_utf8() -> None:
    with pytest.raises(DocumentError, match="not valid UTF-8"):
        load_document(b"name: \xff\xfe")


def test_timestamps_stay_strings_and_int_keys_become_strings() -> None:
    assert load_document("at: 2024-01-01\ncodes: {200: ok}\n") == {
        "at": "2024-01-01",
        "codes": {"200": "ok"},
    }


def test_parse_workflow() -> None:
    wf = parse_workflow(WORKFLOW_YAML)
    assert wf.name == "order-followup"
    assert [n.id for n in wf.nodes] == ["fetch", "notify"]
    assert wf.edges() == {"fetch": [], "notify": ["fetch"]}


def test_parse_workflow_errors_map_to_lines() -> None:
    text = """\
name: wf
nodes:
  - id: a
    type: util.log
  - id: b
    type: util.log
    retry:
      max_attempts: 0
    when: 5
    timeout: 5x
  - type: util.log
"""
    with pytest.raises(WorkflowInvalid) as info:
        parse_workflow(text, source="wf.yaml")
    errors = info.value.extra["errors"]
    assert errors == [
        {
            "path": "nodes[1].retry.max_attempts",
            "node_id": "b",
            "field": "retry.max_attempts",
            "error": "Input should be greater than or equal to 1",
            "line": 8,
        },
        {
            "path": "nodes[1].when",
            "node_id": "b",
            "field": "when",
            "error": "Input should be a valid string; or Input should be a valid boolean, "
            "unable to interpret input",
            "line": 9,
        },
        {
            "path": "nodes[1].timeout",
            "node_id": "b",
            "field": "timeout",
            "error": "invalid duration '5x': use a number with a unit, e.g. 500ms, 30s, 5m, 2h, 1d",
            "line": 10,
        },
        {
            "path": "nodes[2].id",
            "node_id": None,
            "field": "id",
            "error": "Field required",
            "line": 11,
        },
    ]
    assert info.value.detail.startswith("wf.yaml: workflow is invalid (4 problem(s)):\n")
    assert "  - nodes[1].retry.max_attempts (line 8): Input should be greater" in info.value.detail


def test_parse_workflow_from_dict_has_no_lines() -> None:
    with pytest.raises(WorkflowInvalid) as info:
        parse_workflow({"name": "wf", "nodes": [{"id": "a", "type": "x", "bogus": 1}]})
    assert info.value.extra["errors"] == [
        {
            "path": "nodes[0].bogus",
            "node_id": "a",
            "field": "bogus",
            "error": "Extra inputs are not permitted",
            "line": None,
        }
    ]


def test_parse_workflow_duplicate_ids() -> None:
    text = "name: wf\nnodes:\n  - {id: a, type: t}\n  - {id: a, type: t}\n"
    with pytest.raises(WorkflowInvalid) as info:
        parse_workflow(text)
    assert info.value.extra["errors"] == [
        {"path": "", "node_id": None, "field": None, "error": "duplicate node id 'a'", "line": 1}
    ]


def test_parse_workflow_document_error_passes_through() -> None:
    with pytest.raises(DocumentError):
        parse_workflow("name: [")


def test_line_of() -> None:
    assert line_of(WORKFLOW_YAML, "nodes[0].params.url") == 12
    assert line_of(WORKFLOW_YAML, "nodes[1].needs") == 16
    assert line_of(WORKFLOW_YAML, "nodes[1].params.missing") == 17  # deepest existing parent
    assert line_of(WORKFLOW_YAML, ["timeout"]) == 7
    assert line_of("name: [", "name") is None
    assert parse_path("nodes[1].params['a.b'].x") == ["nodes", 1, "params", "a.b", "x"]


def test_dump_yaml_round_trips_in_order() -> None:
    doc = {
        "name": "wf",
        "description": "two\nlines\n",
        "nodes": [
            {"id": "z", "type": "util.log", "params": {"at": "2024-01-01", "flag": "yes"}},
            {"id": "a", "type": "util.log", "needs": ["z"], "params": {"n": None, "f": 1.5}},
        ],
    }
    text = dump_yaml(doc)
    assert text.startswith("name: wf\ndescription: |\n  two\n  lines\nnodes:\n- id: z\n")
    assert "{" not in text
    loaded = load_document(text)
    assert loaded == doc
    assert list(loaded) == ["name", "description", "nodes"]
    assert list(loaded["nodes"][0]) == ["id", "type", "params"]


def test_dump_yaml_shared_objects_have_no_anchors() -> None:
    shared = {"max_attempts": 2}
    text = dump_yaml({"a": shared, "b": shared})
    assert "&" not in text and "*" not in text
    assert load_document(text) == {"a": shared, "b": shared}


def test_dump_json() -> None:
    assert dump_json({"a": "é", "b": [1]}) == '{\n  "a": "é",\n  "b": [\n    1\n  ]\n}\n'
    assert load_document(dump_json({"a": 1})) == {"a": 1}
