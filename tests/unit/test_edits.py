"""EditOps: every op, every skip code, reference rewriting, implicit edges, the summary."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from flowplane.connectors.registry import Registry, default_registry
from flowplane.model.edits import SKIP_CODES, apply_ops, rewrite_references


@pytest.fixture(scope="module")
def catalog() -> Registry:
    return default_registry()


def log(node_id: str, message: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "util.log", "params": {"message": message}, **extra}


def listed() -> dict[str, Any]:
    """a -> b -> c by listed order (no needs anywhere)."""
    return {
        "name": "w",
        "nodes": [log("a"), log("b", "{{ nodes.a.output.message }}"), log("c")],
    }


def explicit() -> dict[str, Any]:
    """a -> b, a -> c (explicit needs)."""
    return {
        "name": "w",
        "nodes": [
            log("a"),
            log("b", "{{ nodes.a.output.message }}", needs=["a"]),
            log("c", needs=["a"]),
        ],
    }


def ids(doc: dict[str, Any]) -> list[str]:
    return [n["id"] for n in doc["nodes"]]


def node(doc: dict[str, Any], node_id: str) -> dict[str, Any]:
    return next(n for n in doc["nodes"] if n["id"] == node_id)


def codes(result: Any) -> list[str]:
    return [s.reason_code for s in result.skipped_items]


# --- ops ---------------------------------------------------------------------------------


def test_add_appends_and_keeps_listed_order(catalog: Registry) -> None:
    doc = listed()
    result = apply_ops(
        doc,
        [{"op": "add", "node_id": "d", "type": "util.log", "params": {"message": "x"}}],
        catalog,
    )
    assert result.ok and result.changed and result.parsed
    assert ids(result.workflow) == ["a", "b", "c", "d"]
    assert all("needs" not in n for n in result.workflow["nodes"])
    assert doc == listed()  # the input is not modified


def test_add_with_needs_materialises_implicit_edges(catalog: Registry) -> None:
    result = apply_ops(
        listed(),
        [
            {
                "op": "add",
                "node_id": "d",
                "type": "util.log",
                "params": {"message": "x"},
                "needs": ["a"],
            }
        ],
        catalog,
    )
    assert result.ok
    assert node(result.workflow, "b")["needs"] == ["a"]
    assert node(result.workflow, "c")["needs"] == ["b"]
    assert node(result.workflow, "d")["needs"] == ["a"]
    assert "execution order is unchanged" in result.summary


def test_add_skips(catalog: Registry) -> None:
    result = apply_ops(
        explicit(),
        [
            {"op": "add", "node_id": "a", "type": "util.log"},
            {"op": "add", "node_id": "z", "type": "util.lgo"},
            {"op": "add", "node_id": "z", "type": "util.log", "needs": ["nope"]},
            {"op": "add", "node_id": "z", "type": "util.log", "needs": ["z"]},
            {"op": "add", "node_id": "bad id!", "type": "util.log"},
            {"op": "add", "node_id": "z", "type": "util.log", "timeout": "soon"},
        ],
        catalog,
    )
    assert codes(result) == [
        "node_already_exists",
        "node_type_not_registered",
        "invalid_edge_source",
        "cycle_introduced",
        "invalid_op",
        "invalid_op",
    ]
    not_registered = result.skipped_items[1]
    assert "util.log" in not_registered.reason
    assert "util.log" in not_registered.details["close_matches"]
    assert not result.changed and not result.ok


def test_edit_merges_params_and_removes_with_null(catalog: Registry) -> None:
    doc = {
        "name": "w",
        "nodes": [{"id": "a", "type": "util.log", "params": {"message": "m", "level": "info"}}],
    }
    result = apply_ops(
        doc,
        [
            {
                "op": "edit",
                "node_id": "a",
                "params": {"level": None, "message": "new"},
                "when": "{{ true }}",
            }
        ],
        catalog,
    )
    assert result.ok
    assert node(result.workflow, "a")["params"] == {"message": "new"}
    assert node(result.workflow, "a")["when"] == "{{ true }}"
    result = apply_ops(result.workflow, [{"op": "edit", "node_id": "a", "when": None}], catalog)
    assert "when" not in node(result.workflow, "a")


def test_edit_skips(catalog: Registry) -> None:
    result = apply_ops(
        explicit(),
        [
            {"op": "edit", "node_id": "x", "params": {}},
            {"op": "edit", "node_id": "a"},
            {"op": "edit", "node_id": "a", "type": "nope.nope"},
            {"op": "edit", "node_id": "a", "needs": ["b"]},
            {"op": "edit", "node_id": "a", "params": "x"},
            {"op": "edit", "node_id": "a", "retry": {"max_attempts": 0}},
        ],
        catalog,
    )
    assert codes(result) == [
        "node_not_found",
        "invalid_op",
        "node_type_not_registered",
        "cycle_introduced",
        "invalid_op",
        "invalid_op",
    ]
    assert result.skipped_items[3].details["path"] == ["a", "b", "a"]


def test_delete_removes_edges(catalog: Registry) -> None:
    result = apply_ops(explicit(), [{"op": "delete", "node_id": "a"}], catalog)
    assert ids(result.workflow) == ["b", "c"]
    assert node(result.workflow, "b")["needs"] == [] and node(result.workflow, "c")["needs"] == []
    # b still reads nodes.a: reported, with what to do.
    assert [e["code"] for e in result.validation_errors] == ["unknown_node_reference"]
    assert "references nodes.a, which does not exist" in result.summary


def test_delete_in_listed_order_closes_the_chain(catalog: Registry) -> None:
    result = apply_ops(listed(), [{"op": "delete", "node_id": "b"}], catalog)
    assert ids(result.workflow) == ["a", "c"] and result.ok
    assert "'c' now follows 'a'" in result.summary


def test_delete_everything_leaves_an_empty_draft(catalog: Registry) -> None:
    ops = [{"op": "delete", "node_id": n} for n in ("a", "b", "c")]
    result = apply_ops(listed(), ops, catalog)
    assert result.parsed and not result.ok and result.workflow["nodes"] == []
    assert [e["code"] for e in result.validation_errors] == ["workflow_empty"]
    assert '{"op": "add"' in result.summary


def test_connect_materialises_listed_order(catalog: Registry) -> None:
    result = apply_ops(
        listed(), [{"op": "connect", "node_id": "a", "target_node_id": "c"}], catalog
    )
    assert result.ok
    assert node(result.workflow, "b")["needs"] == ["a"]
    assert node(result.workflow, "c")["needs"] == ["b", "a"]
    assert "needs" not in node(result.workflow, "a")


def test_connect_skips(catalog: Registry) -> None:
    result = apply_ops(
        explicit(),
        [
            {"op": "connect", "node_id": "x", "target_node_id": "b"},
            {"op": "connect", "node_id": "a", "target_node_id": "x"},
            {"op": "connect", "node_id": "a", "target_node_id": "b"},
            {"op": "connect", "node_id": "b", "target_node_id": "a"},
            {"op": "connect", "node_id": "a", "target_node_id": "a"},
        ],
        catalog,
    )
    assert codes(result) == [
        "invalid_edge_source",
        "invalid_edge_target",
        "duplicate_connection",
        "cycle_introduced",
        "cycle_introduced",
    ]
    cycle = result.skipped_items[3]
    assert cycle.details["path"] == ["a", "b", "a"]
    assert "a -> b -> a" in cycle.reason


def test_implicit_edge_counts_as_a_connection(catalog: Registry) -> None:
    result = apply_ops(
        listed(), [{"op": "connect", "node_id": "a", "target_node_id": "b"}], catalog
    )
    assert codes(result) == ["duplicate_connection"]
    assert not result.changed


def test_disconnect(catalog: Registry) -> None:
    result = apply_ops(
        listed(), [{"op": "disconnect", "node_id": "b", "target_node_id": "c"}], catalog
    )
    assert not result.skipped_items
    assert node(result.workflow, "b")["needs"] == ["a"]
    assert node(result.workflow, "c")["needs"] == []
    result = apply_ops(
        explicit(),
        [
            {"op": "disconnect", "node_id": "b", "target_node_id": "c"},
            {"op": "disconnect", "node_id": "q", "target_node_id": "c"},
            {"op": "disconnect", "node_id": "a", "target_node_id": "q"},
        ],
        catalog,
    )
    assert codes(result) == ["edge_not_found", "invalid_edge_source", "invalid_edge_target"]
    assert result.skipped_items[0].details["needs"] == ["a"]


def test_disconnect_reports_reference_no_longer_upstream(catalog: Registry) -> None:
    result = apply_ops(
        explicit(), [{"op": "disconnect", "node_id": "a", "target_node_id": "b"}], catalog
    )
    [error] = result.validation_errors
    assert error["code"] == "not_upstream" and error["node_id"] == "b"
    assert error["node_type"] == "util.log" and error["field"] == "params" and error["value"] == "a"
    assert "its upstream nodes are: none" in error["error"]
    assert '{"op": "connect", "node_id": "a", "target_node_id": "b"}' in result.summary


def test_rename_rewrites_needs_and_references(catalog: Registry) -> None:
    doc = {
        "name": "w",
        "nodes": [
            log("a"),
            {
                "id": "b",
                "type": "util.log",
                "needs": ["a"],
                "params": {
                    "message": "{{ nodes.a.output.message }} and {{ nodes['a'].status }}",
                    "level": "{% if nodes.a.output %}info{% endif %}",
                },
                "when": "nodes.a.output.message != 'x'",
                "foreach": "{{ [nodes.a.output.message] }}",
            },
            log("c", "nodes.a is plain text, {{ nodes.ab.output }}", needs=["b"]),
        ],
    }
    result = apply_ops(doc, [{"op": "rename", "node_id": "a", "new_id": "start"}], catalog)
    b = node(result.workflow, "b")
    assert b["needs"] == ["start"]
    assert (
        b["params"]["message"] == "{{ nodes.start.output.message }} and {{ nodes['start'].status }}"
    )
    assert b["params"]["level"] == "{% if nodes.start.output %}info{% endif %}"
    assert b["when"] == "nodes.start.output.message != 'x'"
    assert b["foreach"] == "{{ [nodes.start.output.message] }}"
    # Plain text and other ids that merely start with "a" are left alone.
    assert (
        node(result.workflow, "c")["params"]["message"]
        == "nodes.a is plain text, {{ nodes.ab.output }}"
    )
    assert "rewrote 5 template reference(s)" in result.summary


def test_rename_to_non_identifier_uses_subscript() -> None:
    value, count = rewrite_references({"m": "{{ nodes.a.output }}"}, "a", "my-node")
    assert value == {"m": "{{ nodes['my-node'].output }}"} and count == 1
    value, count = rewrite_references("{{ nodes['my-node'].x }}", "my-node", "b")
    assert value == "{{ nodes['b'].x }}" and count == 1


def test_rename_skips(catalog: Registry) -> None:
    result = apply_ops(
        explicit(),
        [
            {"op": "rename", "node_id": "x", "new_id": "y"},
            {"op": "rename", "node_id": "a", "new_id": "b"},
            {"op": "rename", "node_id": "a", "new_id": "a"},
            {"op": "rename", "node_id": "a", "new_id": "1bad"},
        ],
        catalog,
    )
    assert codes(result) == ["node_not_found", "node_already_exists", "invalid_op", "invalid_op"]


def test_set_workflow_fields(catalog: Registry) -> None:
    result = apply_ops(
        listed(),
        [
            {"op": "set", "field": "description", "value": "does things"},
            {"op": "set", "field": "timeout", "value": "5m"},
            {"op": "set", "field": "timeout", "value": "whenever"},
            {"op": "set", "field": "nodes", "value": []},
            {"op": "set", "field": "namespace", "value": "other"},
            {"op": "set", "field": "name", "value": None},
            {"op": "set", "field": "timeout", "value": None},
        ],
        catalog,
    )
    assert codes(result) == ["invalid_op"] * 4
    assert result.workflow["description"] == "does things"
    assert "timeout" not in result.workflow
    assert "add, edit, delete" in result.skipped_items[1].reason


def test_invalid_op_shapes(catalog: Registry) -> None:
    result = apply_ops(
        listed(),
        [
            "add",
            {"op": "explode"},
            {"node_id": "a"},
            {"op": "delete"},
            {"op": "delete", "node_id": "a", "extra": 1},
            {"op": "delete", "node_id": 3},
        ],
        catalog,
    )
    assert codes(result) == ["invalid_op"] * 6
    assert result.skipped_items[3].details["missing"] == ["node_id"]
    assert result.skipped_items[4].details["unknown"] == ["extra"]
    assert ids(result.workflow) == ["a", "b", "c"]


def test_every_skip_code_is_exercised() -> None:
    # Keep this list in step with SKIP_CODES: each one has a test above.
    assert set(SKIP_CODES) == {
        "node_already_exists",
        "node_type_not_registered",
        "node_not_found",
        "invalid_edge_source",
        "invalid_edge_target",
        "duplicate_connection",
        "cycle_introduced",
        "edge_not_found",
        "invalid_op",
    }


# --- a mixed batch and its summary --------------------------------------------------------


def test_mixed_batch_applies_good_ops_in_order(catalog: Registry) -> None:
    ops: list[Any] = [
        {
            "op": "add",
            "node_id": "fetch",
            "type": "http.request",
            "params": {"url": "https://x.test"},
        },
        {"op": "add", "node_id": "notify", "type": "util.logg", "params": {"message": "x"}},
        {"op": "connect", "node_id": "a", "target_node_id": "fetch"},
        {
            "op": "add",
            "node_id": "report",
            "type": "util.log",
            "needs": ["a"],
            "params": {"message": "{{ nodes.fetch.output.status_code }}", "colour": "red"},
        },
        {"op": "add", "node_id": "empty", "type": "util.log", "needs": ["fetch"]},
        {"op": "rename", "node_id": "fetch", "new_id": "get_order"},
    ]
    result = apply_ops(listed(), ops, catalog)
    assert [a.index for a in result.applied] == [0, 2, 3, 4, 5]
    assert codes(result) == ["node_type_not_registered"]
    assert node(result.workflow, "get_order")["needs"] == ["c", "a"]
    assert (
        node(result.workflow, "report")["params"]["message"]
        == "{{ nodes.get_order.output.status_code }}"
    )
    by_code = {e["code"]: e for e in result.validation_errors}
    assert set(by_code) == {"not_upstream", "unknown_param", "missing_param"}
    assert by_code["not_upstream"]["node_id"] == "report"
    assert by_code["unknown_param"]["field"] == "params.colour"
    assert by_code["missing_param"]["node_id"] == "empty"
    summary = result.summary
    assert summary.startswith("Applied 5 of 6 operation(s): #0 added node 'fetch' (http.request)")
    assert "Skipped 1: #1 add 'notify' [node_type_not_registered]" in summary
    assert "close matches: util.log" in summary
    assert "3 validation error(s)" in summary
    assert "node 'report' references nodes.get_order, which is not upstream" in summary
    assert "its upstream nodes are: a" in summary
    assert '{"op": "connect", "node_id": "get_order", "target_node_id": "report"}' in summary
    assert '"params": {"colour": null}' in summary
    assert '"params": {"message": "..."}' in summary
    assert "\n" not in summary
    assert not result.ok


def test_downstream_reference_hint_does_not_suggest_a_cycle(catalog: Registry) -> None:
    doc = explicit()
    result = apply_ops(
        doc,
        [{"op": "edit", "node_id": "a", "params": {"message": "{{ nodes.b.output }}"}}],
        catalog,
    )
    assert result.validation_errors[0]["code"] == "not_upstream"
    assert "'b' depends on 'a' and runs after it" in result.summary


def test_empty_and_noop_batches(catalog: Registry) -> None:
    result = apply_ops(listed(), [], catalog)
    assert result.ok and not result.changed
    assert result.summary == "No operations were given. The resulting workflow is valid."
    same = copy.deepcopy(listed())
    result = apply_ops(same, [{"op": "edit", "node_id": "a", "params": {"message": "hi"}}], catalog)
    assert result.ok and not result.changed
