"""Sandboxed template rendering: native values, data-not-template, budgets and SSTI payloads."""

from __future__ import annotations

import time
from typing import Any

import pytest

from flowplane.errors import TemplateError
from flowplane.model import templates
from flowplane.model.document import Node
from flowplane.model.templates import (
    MAX_RENDER_BYTES,
    check_template,
    evaluate,
    node_references,
    node_secret_names,
    output_fields,
    references,
    render_value,
    secret_names,
    truthy,
)


@pytest.fixture
def ctx() -> dict[str, Any]:
    return {
        "input": {"order_id": 42, "payload": "{{ 7*7 }}", "xs": [1, 2, 3], "name": "ada"},
        "nodes": {
            "fetch": {"output": {"status_code": 200, "body": {"total": 150}}, "status": "finished"}
        },
        "secrets": {"SHOP_TOKEN": "tok-SECRET-123"},
        "run": {"id": "run_1", "attempt": 1},
        "workflow": {"name": "wf"},
    }


# --- native values and text --------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ input.order_id }}", 42),
        ("  {{ input.order_id }}\n", 42),
        ("{{ input.xs }}", [1, 2, 3]),
        ("{{ nodes.fetch.output.body }}", {"total": 150}),
        ("{{ nodes.fetch.output.body.total > 100 }}", True),
        ("{{ none }}", None),
        ("{{ input.xs | map('string') | list }}", ["1", "2", "3"]),
        ("{{ input.xs | map('string') }}", ["1", "2", "3"]),  # generators become lists
        ("{{ {'a': {'b': 1}} }}", {"a": {"b": 1}}),
        ("{{- input.order_id -}}", 42),
        ("{{ range(3) }}", [0, 1, 2]),
    ],
)
def test_single_expression_keeps_native_type(
    ctx: dict[str, Any], source: str, expected: Any
) -> None:
    assert render_value(source, ctx) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("order {{ input.order_id }}", "order 42"),
        ("{{ input.order_id }}{{ input.order_id }}", "4242"),
        ("{{ input.order_id }} and {{ input.name }}", "42 and ada"),
        ("{% for x in input.xs %}{{ x }},{% endfor %}", "1,2,3,"),
        ("{{ 'a' ~ input.order_id }}!", "a42!"),
        ("line\n", "line\n"),
        ("{{ input.name | upper }}\n", "ADA"),  # one expression: native, surrounding space dropped
        ("{{ input.xs | tojson }} ", "[1, 2, 3]"),
    ],
)
def test_mixed_text_renders_a_string(ctx: dict[str, Any], source: str, expected: Any) -> None:
    assert render_value(source, ctx) == expected


def test_input_data_is_never_rendered(ctx: dict[str, Any]) -> None:
    assert render_value("{{ input.payload }}", ctx) == "{{ 7*7 }}"
    assert render_value("got {{ input.payload }}", ctx) == "got {{ 7*7 }}"
    assert render_value({"a": ["{{ input.payload }}"]}, ctx) == {"a": ["{{ 7*7 }}"]}


def test_render_value_walks_structures_and_leaves_keys(ctx: dict[str, Any]) -> None:
    value = {
        "url": "https://x/{{ input.order_id }}",
        "{{ key }}": 1,
        "n": 3.5,
        "flag": True,
        "list": ["{{ input.order_id }}", None, ("{{ input.name }}",)],
    }
    assert render_value(value, ctx) == {
        "url": "https://x/42",
        "{{ key }}": 1,
        "n": 3.5,
        "flag": True,
        "list": [42, None, ("ada",)],
    }
    original = {"a": "{{ input.order_id }}"}
    render_value(original, ctx)
    assert original == {"a": "{{ input.order_id }}"}


def test_strings_without_templates_are_returned_as_is(ctx: dict[str, Any]) -> None:
    assert render_value("plain {not a template}", ctx) == "plain {not a template}"
    assert render_value("{# only a comment #}", ctx) == "{# only a comment #}"


# --- ${NAME} shorthand -------------------------------------------------------------------


def test_secret_shorthand(ctx: dict[str, Any]) -> None:
    assert render_value("${SHOP_TOKEN}", ctx) == "tok-SECRET-123"
    assert render_value("Bearer ${SHOP_TOKEN}", ctx) == "Bearer tok-SECRET-123"
    assert render_value("$${SHOP_TOKEN} costs $5", ctx) == "${SHOP_TOKEN} costs $5"
    assert render_value("{{ '${SHOP_TOKEN}' }}", ctx) == "${SHOP_TOKEN}"  # not inside {{ }}
    assert render_value("${ not_a_name }", ctx) == "${ not_a_name }"


def test_secret_shorthand_keeps_native_value() -> None:
    assert render_value("${N}", {"secrets": {"N": 5}}) == 5


def test_unknown_secret_is_an_error(ctx: dict[str, Any]) -> None:
    with pytest.raises(TemplateError, match=r"has no attribute 'MISSING'"):
        render_value("${MISSING}", ctx)


# --- when --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("{{ nodes.fetch.output.body.total > 100 }}", True),
        ("nodes.fetch.output.body.total > 1000", False),
        ("input.order_id == 42", True),
        (True, True),
        (False, False),
        ("{{ input.name }} is here", "ada is here"),
    ],
)
def test_evaluate(ctx: dict[str, Any], expr: Any, expected: Any) -> None:
    assert evaluate(expr, ctx) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        (None, False),
        (0, False),
        (2, True),
        ([], False),
        ([0], True),
        ("", False),
        (" False ", False),
        ("0", False),
        ("no", False),
        ("off", False),
        ("null", False),
        ("None", False),
        ("yes", True),
        ("true", True),
    ],
)
def test_truthy(value: Any, expected: bool) -> None:
    assert truthy(value) is expected


# --- errors ------------------------------------------------------------------------------


def test_undefined_variable_names_the_expression(ctx: dict[str, Any]) -> None:
    with pytest.raises(TemplateError) as info:
        render_value("{{ input.missing }}", ctx)
    assert info.value.detail == (
        "template '{{ input.missing }}' failed: 'dict object' has no attribute 'missing'"
    )


def test_undefined_in_text(ctx: dict[str, Any]) -> None:
    with pytest.raises(TemplateError, match="'nope' is undefined"):
        render_value("x {{ nope }}", ctx)


def test_syntax_error(ctx: dict[str, Any]) -> None:
    with pytest.raises(TemplateError) as info:
        render_value("{{ x }", ctx)
    assert info.value.detail == "invalid template '{{ x }': unexpected '}'"
    assert info.value.extra["template"] == "{{ x }"
    with pytest.raises(TemplateError, match="invalid template"):
        check_template("{% for %}")
    check_template("{{ a.b }}")
    check_template("a > 1", expression=True)
    with pytest.raises(TemplateError):
        check_template("a >", expression=True)


def test_secret_values_never_appear_in_errors(ctx: dict[str, Any]) -> None:
    with pytest.raises(TemplateError) as info:
        render_value("{{ nodes[secrets.SHOP_TOKEN] }}", ctx)
    assert "tok-SECRET-123" not in info.value.detail
    assert "***" in info.value.detail


def test_render_size_limit(ctx: dict[str, Any]) -> None:
    assert len(render_value("{{ 'a' * 1000000 }}", ctx)) == MAX_RENDER_BYTES
    with pytest.raises(TemplateError, match="larger than 1000000 bytes"):
        render_value("{{ 'a' * 1000001 }}", ctx)
    with pytest.raises(TemplateError, match="larger than 1000000 bytes"):
        render_value("{% for i in range(20) %}{{ 'a' * 100000 }}{% endfor %}", ctx)
    big = {"input": {"blob": "x" * (MAX_RENDER_BYTES + 1)}}
    with pytest.raises(TemplateError, match="larger than 1000000 bytes"):
        render_value("{{ input.blob }}", big)


# --- SSTI and denial of service ----------------------------------------------------------

PAYLOADS = [
    ("{{ 'a'*10**9 }}", "repeated value would be larger than 1000000 bytes"),
    ("{{ range(10**9)|list }}", "Range too big"),
    ("{{ 10**(10**10) }}", "integer result over 16384 bits"),
    ("{{ [0]*10**9 }}", "a list of more than 100000 items is not allowed"),
    ("{{ '%s'*10**9 }}", "repeated value would be larger than 1000000 bytes"),
    ("{{ ('%(a)s' * 100000) % {'a': 'x' * 100} }}", "formatted string would be larger"),
    ("{{ '%999999999s' % 1 }}", "formatted string would be larger"),
    ("{{ '%*s' % (999999999, 1) }}", "'*' widths are not allowed"),
    ("{{ '{:>999999999}'.format(1) }}", "formatted string would be larger"),
    ("{{ '{:{}}'.format(1, 999999999) }}", "nested replacement fields are not allowed"),
    ("{{ '%999999999s'|format(1) }}", "formatted string would be larger"),
    ("{{ ''.__class__.__mro__ }}", "access to attribute '__class__' of 'str' object is unsafe"),
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "is unsafe"),
    ("{{ cycler.__init__.__globals__ }}", "'cycler' is undefined"),
    ("{{ ''|attr('format') }}", "attr('format') would return a method"),
    ("{{ ''|attr('__class__') }}", "is unsafe"),
    ("{{ '{0.__class__}'.format(1) }}", "is unsafe"),
    ("{{ self }}", "'self' is not available in templates"),
    ("{{ self.__init__ }}", "'self' is not available in templates"),
    ("{{ lipsum }}", "'lipsum' is undefined"),
    ("{{ lipsum.__globals__ }}", "'lipsum' is undefined"),
    ("{{ joiner() }}", "'joiner' is undefined"),
    ("{{ namespace(a=1) }}", "'namespace' is undefined"),
    ("{{ config }}", "'config' is undefined"),
    ("{{ request }}", "'request' is undefined"),
    ("{{ range }}", "a template cannot return a function or method"),
    ("{{ ''.format }}", "a template cannot return a function or method"),
    ("x{{ ''.join }}", "a function or method cannot be rendered"),
    ("{{ input.xs.append(1) }}", "is unsafe"),
    ("{{ 'a'|center(1000000000) }}", "center result would be larger"),
    ("{{ 'a'.center(1000000000) }}", "center() result would be larger"),
    ("{{ 'a'.ljust(1000000000) }}", "ljust() result would be larger"),
    ("{{ ('a'*100000)|replace('a', 'b'*100000) }}", "replace result would be larger"),
    ("{{ ('a'*100000).replace('a', 'b'*100000) }}", "replace() result would be larger"),
    ("{{ ('x'*100000).join(['a']*100000) }}", "join() result would be larger"),
    ("{{ (['a'] * 100000)|join('x' * 100000) }}", "join result would be larger"),
    ("{{ ('a'*1000)|indent(1000000000) }}", "indent result would be larger"),
    ("{{ ('a b '*100000)|wordwrap(1, wrapstring='x'*1000) }}", "wordwrap result would be larger"),
    ("{{ [1]|batch(1000000000, 0)|list }}", "batch/slice size over 100000"),
    ("{{ [1]|slice(1000000000)|list }}", "batch/slice size over 100000"),
    ("{{ {'a': 1}|tojson(indent=100000000) }}", "tojson indent must be between 0 and 16"),
    ("{% extends 'x' %}", "cannot extend, include or import"),
    ("{% include 'x' %}", "cannot extend, include or import"),
    ("{% import 'x' as y %}", "cannot extend, include or import"),
    ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "maximum recursion depth exceeded"),
    (
        "{% macro f(s, n) %}{{ f(s ~ s, n - 1) if n else s|length }}{% endmacro %}{{ f('a', 40) }}",
        "concatenation would be larger than 1000000 bytes",
    ),
    (
        "{% set x %}{% for i in range(100000) %}{{ 'a' * 100000 }}{% endfor %}{% endset %}{{ x }}",
        "memory budget",
    ),
    ("{{ (range(100000)|map('string'))|map('center', 10000)|list|length }}", "memory budget"),
    (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "exceeded the time budget of 1s",
    ),
    (
        "{% for i in range(100000) %}{% for j in range(100000) %}{{ '' }}{% endfor %}{% endfor %}",
        "exceeded the time budget of 1s",
    ),
]


@pytest.mark.parametrize(("payload", "message"), PAYLOADS, ids=[p for p, _ in PAYLOADS])
def test_ssti_and_dos_payloads_are_refused(ctx: dict[str, Any], payload: str, message: str) -> None:
    started = time.monotonic()
    with pytest.raises(TemplateError) as info:
        render_value({"p": payload}, ctx)
    elapsed = time.monotonic() - started
    assert message in info.value.detail
    assert info.value.code == "template_error"
    # A hang guard, not a speed target: unbudgeted, these loops run for hours.
    assert elapsed < 30


def test_jinja_power_is_left_associative(ctx: dict[str, Any]) -> None:
    # Jinja parses 10**10**10 as (10**10)**10 = 10**100: a harmless 333-bit integer.
    assert render_value("{{ 10**10**10 }}", ctx) == 10**100
    with pytest.raises(TemplateError, match="integer result over"):
        render_value("{{ (10**10)**(10**4) }}", ctx)


def test_safe_helpers_still_work(ctx: dict[str, Any]) -> None:
    assert render_value("{{ {'a': [1, 'é']}|tojson }}", ctx) == '{"a": [1, "é"]}'
    assert render_value("{{ '{\"a\": 2}'|fromjson }}", ctx) == {"a": 2}
    assert render_value("{{ 'user:pw'|b64encode }}", ctx) == "dXNlcjpwdw=="
    assert render_value("{{ 'dXNlcjpwdw=='|b64decode }}", ctx) == "user:pw"
    assert render_value("{{ '%05d'|format(42) }}", ctx) == "00042"
    assert render_value("{{ '{}-{}'.format(1, 2) }}", ctx) == "1-2"
    assert render_value("{{ 'a,b'.split(',') }}", ctx) == ["a", "b"]
    assert render_value("{{ input.missing | default('d') }}", ctx) == "d"
    assert render_value("{{ input.xs | length }}", ctx) == 3
    assert render_value("{{ input.xs | sum }}", ctx) == 6
    assert render_value("{{ 'abc'|replace('b', 'x') }}", ctx) == "axc"
    assert render_value("{{ 2**64 }}", ctx) == 2**64
    assert render_value("{{ input.xs|join('-') }}", ctx) == "1-2-3"


def test_compiled_templates_are_cached(ctx: dict[str, Any]) -> None:
    source = "{{ input.order_id + 1 }} cached"
    render_value(source, ctx)
    before = templates._compile.cache_info().hits
    render_value(source, ctx)
    assert templates._compile.cache_info().hits == before + 1


def test_foreach_context(ctx: dict[str, Any]) -> None:
    assert render_value("{{ index }}:{{ item.id }}", {"item": {"id": "a"}, "index": 2}) == "2:a"


# --- static analysis ---------------------------------------------------------------------


def test_references() -> None:
    value = {
        "a": "{{ nodes.fetch.output.body }}",
        "b": ["x {{ nodes['with-dash'].status }}", "{{ nodes.c.output.get('k') }}"],
        "c": "{% if nodes.d %}{{ input.x }}{% endif %}",
        "d": "nodes.plain is not a template",
        "e": "{{ nodes[input.which] }}",
        "f": "{{ broken",
    }
    assert references(value) == {"fetch", "with-dash", "c", "d"}
    assert references("nodes.a.output > 1", expression=True) == {"a"}
    assert references("nodes.a.output > 1") == set()


def test_secret_names() -> None:
    value = ["${A}", "{{ secrets.B }}", "{{ secrets['C'] }}", "$${D}", "{{ input.E }}"]
    assert secret_names(value) == {"A", "B", "C"}


def test_output_fields() -> None:
    value = [
        "{{ nodes.fetch.output.body.total }}",
        "{{ nodes.fetch.output['status_code'] }}",
        "{{ nodes.other.output }}",
        "{{ nodes.other.output[0].x }}",
        "{{ nodes.m.output.get('k') }}",
        "{{ nodes.s.status }}",
    ]
    assert output_fields(value) == {("fetch", "body"), ("fetch", "status_code")}


def test_node_references_read_bare_when_as_expression() -> None:
    node = Node(
        id="n",
        type="util.log",
        when="nodes.a.output.ok and secrets.FLAG",
        foreach="{{ nodes.b.output }}",
        params={"m": "{{ nodes.c.status }} ${TOKEN}"},
    )
    assert node_references(node) == {"a", "b", "c"}
    assert node_secret_names(node) == {"FLAG", "TOKEN"}
    assert references([node.params, node.when, node.foreach]) == {"b", "c"}


@pytest.mark.parametrize(
    "source",
    [
        "{{ 1e308 * 10 }}",
        "{{ -1e308 * 10 }}",
        "{{ 1e308 * 10 - 1e308 * 10 }}",
        "{{ [1, 1e308 * 10] }}",
        "{{ {'a': {'b': 1e308 * 10}} }}",
        "total: {{ 1e308 * 10 }}",
    ],
)
def test_non_finite_results_are_errors_not_null(source: str) -> None:
    with pytest.raises(TemplateError, match="not a finite number"):
        templates.render_value(source, {})
    with pytest.raises(TemplateError, match="not a finite number"):
        templates.evaluate(source.removeprefix("total: "), {})


def test_non_finite_intermediate_values_are_fine() -> None:
    assert templates.render_value("{{ (1e308 * 10) > 1 }}", {}) is True
    assert templates.render_value("{{ 1e308 }}", {}) == 1e308
