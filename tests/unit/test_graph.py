"""Graph topology and static workflow validation against a small fake catalog."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest

from flowplane.errors import WorkflowInvalid
from flowplane.model.document import Node, Workflow
from flowplane.model.graph import (
    Catalog,
    Graph,
    ManifestLike,
    ValidationIssue,
    check_workflow,
    validate_workflow,
)


@dataclass(frozen=True)
class FakeManifest:
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] = field(default_factory=dict)


class FakeCatalog:
    def __init__(self) -> None:
        self._manifests: dict[str, ManifestLike] = {
            "http.request": FakeManifest(
                {
                    "type": "object",
                    "required": ["url"],
                    "properties": {
                        "url": {"type": "string"},
                        "method": {"type": "string", "enum": ["GET", "POST"]},
                        "timeout": {"type": "number"},
                        "headers": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        },
                    },
                    "additionalProperties": False,
                },
                {
                    "type": "object",
                    "properties": {"status_code": {}, "body": {}, "headers": {}},
                },
            ),
            "util.log": FakeManifest(
                {
                    "type": "object",
                    "properties": {"message": {"type": "string"}},
                    "additionalProperties": False,
                },
                {"type": "object", "properties": {"logged": {}}, "additionalProperties": True},
            ),
            "data.template": FakeManifest(
                {
                    "type": "object",
                    "required": ["template"],
                    "properties": {"template": {"type": "string", "x-raw": True}},
                },
                {"type": "object", "properties": {"text": {}}},
            ),
        }

    def lookup(self, type: str) -> ManifestLike | None:
        return self._manifests.get(type)

    def types(self) -> Iterable[str]:
        return list(self._manifests)


CATALOG: Catalog = FakeCatalog()


def wf(*nodes: dict[str, Any], **extra: Any) -> Workflow:
    return Workflow.model_validate({"name": "wf", "nodes": list(nodes), **extra})


def codes(issues: list[ValidationIssue]) -> list[str]:
    return [issue.code for issue in issues]


# --- Graph -------------------------------------------------------------------------------


def test_implicit_chain_without_needs() -> None:
    g = Graph.from_workflow(
        wf({"id": "a", "type": "t"}, {"id": "b", "type": "t"}, {"id": "c", "type": "t"})
    )
    assert g.roots() == ("a",)
    assert g.leaves() == ("c",)
    assert g.upstream("c") == ("b",)
    assert g.ancestors("c") == frozenset({"a", "b"})
    assert g.topological_order() == ["a", "b", "c"]


def test_diamond() -> None:
    g = Graph.from_workflow(
        wf(
            {"id": "d", "type": "t", "needs": ["b", "c"]},
            {"id": "a", "type": "t", "needs": []},
            {"id": "c", "type": "t", "needs": ["a"]},
            {"id": "b", "type": "t", "needs": "a"},
            {"id": "e", "type": "t", "needs": []},
        )
    )
    assert g.node_ids == ("d", "a", "c", "b", "e")
    assert g.roots() == ("a", "e")
    assert g.leaves() == ("d", "e")
    assert g.upstream("d") == ("b", "c")
    assert g.downstream("a") == ("c", "b")  # document order
    assert g.ancestors("d") == frozenset({"a", "b", "c"})
    assert g.ancestors("a") == frozenset()
    assert g.topological_order() == ["a", "c", "b", "d", "e"]
    assert g.node("b").type == "t"
    assert "b" in g and "zz" not in g and len(g) == 5


def test_graph_tolerates_unknown_needs_and_cycles() -> None:
    g = Graph.from_workflow(
        wf(
            {"id": "a", "type": "t", "needs": ["c", "ghost", "a"]},
            {"id": "b", "type": "t", "needs": ["a"]},
            {"id": "c", "type": "t", "needs": ["b"]},
        )
    )
    assert g.upstream("a") == ("c",)
    assert g.roots() == ()
    assert g.ancestors("a") == frozenset({"b", "c"})
    assert g.cycles() == [["a", "b", "c", "a"]]
    with pytest.raises(WorkflowInvalid, match=r"cycle: a -> b -> c -> a"):
        g.topological_order()


# --- structure ---------------------------------------------------------------------------


def test_valid_workflow_has_no_issues() -> None:
    doc = wf(
        {"id": "fetch", "type": "http.request", "params": {"url": "https://x/{{ input.id }}"}},
        {
            "id": "log",
            "type": "util.log",
            "needs": ["fetch"],
            "when": "nodes.fetch.output.status_code == 200",
            "params": {"message": "{{ nodes.fetch.output.body.total }} ${TOKEN}"},
        },
        inputs={"type": "object", "properties": {"id": {"type": "integer"}}},
    )
    assert validate_workflow(doc, CATALOG) == []
    graph = check_workflow(doc, CATALOG)
    assert graph.topological_order() == ["fetch", "log"]


def test_duplicate_id() -> None:
    doc = Workflow.model_construct(
        name="wf", nodes=[Node(id="a", type="util.log"), Node(id="a", type="util.log")]
    )
    issues = validate_workflow(doc, None)
    assert issues == [
        ValidationIssue("a", "util.log", "id", "a", "duplicate node id 'a'", "duplicate_id")
    ]


def test_unknown_and_self_needs() -> None:
    doc = wf(
        {"id": "fetch", "type": "t", "needs": []},
        {"id": "b", "type": "t", "needs": ["fetc", "b"]},
    )
    issues = validate_workflow(doc, None)
    assert [i.to_dict() for i in issues] == [
        {
            "node_id": "b",
            "node_type": "t",
            "field": "needs",
            "value": "fetc",
            "error": "node 'b' needs unknown node 'fetc'; did you mean 'fetch'?",
            "code": "unknown_need",
        },
        {
            "node_id": "b",
            "node_type": "t",
            "field": "needs",
            "value": "b",
            "error": "node 'b' needs itself",
            "code": "self_need",
        },
    ]


def test_cycle_shows_the_path() -> None:
    doc = wf(
        {"id": "start", "type": "t", "needs": []},
        {"id": "a", "type": "t", "needs": ["start", "b"]},
        {"id": "b", "type": "t", "needs": ["a"]},
        {"id": "after", "type": "t", "needs": ["b"]},
        {"id": "x", "type": "t", "needs": ["y"]},
        {"id": "y", "type": "t", "needs": ["x"]},
    )
    issues = validate_workflow(doc, None)
    assert [(i.code, i.node_id, i.error) for i in issues] == [
        ("cycle", "a", "the needs form a cycle: a -> b -> a"),
        ("cycle", "x", "the needs form a cycle: x -> y -> x"),
    ]
    assert issues[0].value == ["a", "b", "a"]


# --- connector types and params ----------------------------------------------------------


def test_unknown_type_suggests_close_matches() -> None:
    issues = validate_workflow(wf({"id": "a", "type": "http.reqest"}), CATALOG)
    assert [(i.code, i.field, i.error) for i in issues] == [
        (
            "unknown_type",
            "type",
            "unknown connector type 'http.reqest'; did you mean 'http.request'?",
        ),
    ]
    assert validate_workflow(wf({"id": "a", "type": "http.reqest"}), None) == []


def test_params_checks() -> None:
    doc = wf(
        {
            "id": "a",
            "type": "http.request",
            "params": {"method": "PUT", "timeout": "soon", "headerz": {}, "headers": {"X": 1}},
        }
    )
    issues = validate_workflow(doc, CATALOG)
    assert [(i.code, i.field, i.value, i.error) for i in issues] == [
        ("missing_param", "params.url", None, "node 'a': missing required param 'url'"),
        (
            "invalid_param",
            "params.method",
            "PUT",
            "node 'a': params.method: 'PUT' is not one of ['GET', 'POST']",
        ),
        (
            "invalid_param",
            "params.timeout",
            "soon",
            "node 'a': params.timeout: 'soon' is not of type 'number'",
        ),
        (
            "unknown_param",
            "params.headerz",
            {},
            "node 'a': unknown param 'headerz' for http.request; did you mean 'headers'?",
        ),
        (
            "invalid_param",
            "params.headers.X",
            1,
            "node 'a': params.headers.X: 1 is not of type 'string'",
        ),
    ]


def test_templated_params_are_not_type_checked_but_required_still_applies() -> None:
    doc = wf(
        {
            "id": "a",
            "type": "http.request",
            "params": {"timeout": "{{ input.t }}", "headers": {"X": "${TOKEN}"}, "bad": "{{ 1 }}"},
        }
    )
    issues = validate_workflow(doc, CATALOG)
    assert [(i.code, i.field) for i in issues] == [
        ("missing_param", "params.url"),
        ("unknown_param", "params.bad"),
    ]


# --- templates ---------------------------------------------------------------------------


def test_not_upstream_lists_ancestors() -> None:
    doc = wf(
        {"id": "a", "type": "util.log", "needs": []},
        {"id": "b", "type": "util.log", "needs": ["a"]},
        {"id": "side", "type": "util.log", "needs": []},
        {
            "id": "c",
            "type": "util.log",
            "needs": ["b"],
            "params": {"message": "{{ nodes.side.output }} {{ nodes['c'].status }}"},
        },
    )
    issues = validate_workflow(doc, CATALOG)
    assert [(i.code, i.node_id, i.field, i.value, i.error) for i in issues] == [
        (
            "not_upstream",
            "c",
            "params",
            "c",
            "node 'c' references nodes.c, which is not upstream of it (add it to needs); "
            "its upstream nodes are: a, b",
        ),
        (
            "not_upstream",
            "c",
            "params",
            "side",
            "node 'c' references nodes.side, which is not upstream of it (add it to needs); "
            "its upstream nodes are: a, b",
        ),
    ]


def test_not_upstream_without_ancestors_and_unknown_reference() -> None:
    doc = wf(
        {"id": "a", "type": "t", "needs": [], "when": "{{ nodes.b.output }}"},
        {"id": "b", "type": "t", "needs": [], "foreach": "{{ nodes.fetc.output }}"},
        {"id": "fetch", "type": "t", "needs": []},
    )
    issues = validate_workflow(doc, None)
    assert [(i.code, i.field, i.error) for i in issues] == [
        (
            "not_upstream",
            "when",
            "node 'a' references nodes.b, which is not upstream of it "
            "(add it to needs); its upstream nodes are: none",
        ),
        (
            "unknown_node_reference",
            "foreach",
            "node 'b' references nodes.fetc, which does not exist; did you mean 'fetch'?",
        ),
    ]


def test_undeclared_output() -> None:
    doc = wf(
        {"id": "fetch", "type": "http.request", "params": {"url": "u"}},
        {"id": "log", "type": "util.log", "params": {"message": "x"}},
        {"id": "each", "type": "http.request", "foreach": [1], "params": {"url": "u"}},
        {
            "id": "use",
            "type": "util.log",
            "needs": ["fetch", "log", "each"],
            "params": {
                "message": "{{ nodes.fetch.output.status }} {{ nodes.fetch.output.body }}"
                " {{ nodes.log.output.anything }} {{ nodes.each.output.x }}"
            },
        },
    )
    issues = validate_workflow(doc, CATALOG)
    assert [(i.code, i.field, i.value, i.error) for i in issues] == [
        (
            "undeclared_output",
            "params",
            "nodes.fetch.output.status",
            "node 'use' reads nodes.fetch.output.status, but http.request outputs only: body, "
            "headers, status_code; did you mean 'status_code'?",
        ),
    ]


def test_invalid_template_when_foreach() -> None:
    doc = wf(
        {
            "id": "a",
            "type": "util.log",
            "params": {"message": "{{ oops }"},
            "when": "x >",
            "foreach": "a,b",
        },
        {"id": "b", "type": "util.log", "foreach": "{{ [1, }}", "when": "{{ self }}"},
        {"id": "c", "type": "util.log", "foreach": ["{{ ok }}", "{{ bad }"]},
    )
    issues = validate_workflow(doc, CATALOG)
    assert [(i.code, i.node_id, i.field) for i in issues] == [
        ("invalid_template", "a", "params.message"),
        ("invalid_when", "a", "when"),
        ("invalid_foreach", "a", "foreach"),
        ("invalid_when", "b", "when"),
        ("invalid_foreach", "b", "foreach"),
        ("invalid_template", "c", "foreach[1]"),
    ]
    assert (
        issues[0].error == "node 'a': params.message: invalid template '{{ oops }': unexpected '}'"
    )
    assert issues[2].error == "node 'a': foreach must be a list or one {{ expression }}"
    assert "'self' is not available in templates" in issues[3].error


def test_raw_params_are_not_treated_as_templates() -> None:
    doc = wf(
        {"id": "a", "type": "util.log", "needs": []},
        {
            "id": "t",
            "type": "data.template",
            "needs": [],
            "params": {"template": "{{ nodes.a.output }} {% broken"},
        },
    )
    assert validate_workflow(doc, CATALOG) == []
    # Without the catalog the param is not known to be raw.
    assert codes(validate_workflow(doc, None)) == ["invalid_template"]


def test_invalid_inputs_schema() -> None:
    doc = wf({"id": "a", "type": "util.log"}, inputs={"type": "object", "required": "x"})
    issues = validate_workflow(doc, CATALOG)
    assert [(i.code, i.node_id, i.field) for i in issues] == [
        ("invalid_inputs_schema", None, "inputs")
    ]
    assert issues[0].error.startswith("inputs is not a valid JSON Schema: ")


def test_check_workflow_raises_with_all_errors() -> None:
    doc = wf(
        {"id": "a", "type": "nope", "needs": ["zz"]},
        {"id": "b", "type": "util.log", "needs": ["a"], "params": {"message": 3}},
    )
    with pytest.raises(WorkflowInvalid) as info:
        check_workflow(doc, CATALOG)
    assert info.value.detail == (
        "workflow 'wf' is invalid (3 problem(s)):\n"
        "  - [unknown_need] node 'a' needs unknown node 'zz'\n"
        "  - [unknown_type] unknown connector type 'nope'\n"
        "  - [invalid_param] node 'b': params.message: 3 is not of type 'string'"
    )
    assert [e["code"] for e in info.value.extra["errors"]] == [
        "unknown_need",
        "unknown_type",
        "invalid_param",
    ]
    assert info.value.extra["errors"][2] == {
        "node_id": "b",
        "node_type": "util.log",
        "field": "params.message",
        "value": 3,
        "error": "node 'b': params.message: 3 is not of type 'string'",
        "code": "invalid_param",
    }
