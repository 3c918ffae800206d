"""Prepared statements build their driver parameters without ``construct_params``: the
generated builders must give exactly what SQLAlchemy's way gives, on both dialects."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from flowplane.store import audit, postgres, prepared, schema
from flowplane.store import statements as q
from flowplane.store.prepared import Prepared, _Compiled

DIALECTS = {"sqlite": sqlite.dialect(), "postgresql": postgresql.psycopg.dialect()}
JSON_VALUES: list[Any] = [
    None,
    {"a": [1, 2.5, None, True, "é\n\"'"], "b": {"c": {}}, "d": []},
    [1, "two", {"3": 4.0}],
    [],
    {},
    "text",
    7,
    1.5,
    False,
    sa.JSON.NULL,
    sa.null(),
]


def all_prepared() -> Iterator[tuple[str, Prepared]]:
    """Every prepared statement of the store, by name."""
    for module in (q, audit, postgres):
        for name, value in vars(module).items():
            if isinstance(value, Prepared):
                yield f"{module.__name__}.{name}", value
            elif isinstance(value, dict):
                for key, item in value.items():
                    if isinstance(item, Prepared):
                        yield f"{module.__name__}.{name}[{key}]", item
    nodes = ("status", "output", "error", "finished_at_ms")
    for keys in [("status",), nodes, ("output", "wait", "available_at_ms")]:
        yield f"postgres._lock_and_update{keys}", postgres._lock_and_update(keys)


def _value(type_: Any, variant: int) -> Any:
    if isinstance(type_, sa.JSON):
        return JSON_VALUES[variant % len(JSON_VALUES)]
    if isinstance(type_, sa.Integer):
        return [3, None, 0, 2**40][variant % 4]
    if isinstance(type_, sa.Boolean):
        return [True, False, None][variant % 3]
    return ["x", None, "ünï", ""][variant % 4]


def key_sets(stmt: Any, dialect: sa.Dialect) -> Iterator[dict[str, Any]]:
    """Parameter dicts (key sets and values) the statement may be executed with: its
    named parameters plus, for INSERT and UPDATE without values, column subsets."""
    compiled = stmt.compile(dialect=dialect)
    named = {b.key: b.type for b in compiled.bind_names if not b.key.startswith("%(")}
    table = getattr(stmt, "table", None)
    if table is not None and stmt.is_dml and not getattr(stmt, "_values", None):
        named = {k: v for k, v in named.items() if k.startswith("_")}
        columns = list(table.c)
        subsets = [columns, columns[:1], columns[1::2], list(reversed(columns))]
        subsets += [[c for c in columns if isinstance(c.type, sa.JSON)]]
    else:
        subsets = [[]]
    for subset in subsets:
        types = {**{c.key: c.type for c in subset}, **named}
        for variant in range(len(JSON_VALUES)):
            yield {key: _value(type_, variant + i) for i, (key, type_) in enumerate(types.items())}
    # Parameters named like the statement's literal binds (``status_1``) replace them.
    literals = {n: b.type for b, n in compiled.bind_names.items() if b.key.startswith("%(")}
    if literals:
        yield {
            key: _value(type_, i) for i, (key, type_) in enumerate({**named, **literals}.items())
        }


def cases() -> Iterator[Any]:
    for (name, stmt), dialect in itertools.product(all_prepared(), DIALECTS):
        yield pytest.param(stmt, dialect, id=f"{name}-{dialect}")


# Column subsets without a primary key column warn (never executed: compiled only).
@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")
@pytest.mark.parametrize(("stmt", "dialect_name"), list(cases()))
def test_args_match_construct_params(stmt: Prepared, dialect_name: str) -> None:
    dialect = DIALECTS[dialect_name]
    checked = 0
    for params in key_sets(stmt.stmt, dialect):
        compiled = _Compiled(stmt.stmt, dialect, list(params))
        fast, slow = compiled.args(dict(params)), compiled.construct_args(dict(params))
        # repr: equal types too (1 vs True, "null" vs None) and psycopg's Jsonb wrappers.
        assert repr(fast) == repr(slow), (params, compiled.sql)
        assert type(fast) is type(slow)
        assert compiled.args != compiled.construct_args  # generated, not the fallback
        checked += 1
    assert checked >= len(JSON_VALUES)


def test_statements_use_generated_builders() -> None:
    # The fast path is taken (not the construct_params fallback) for the hot statements.
    for stmt, params in [
        (q.INSERT_EVENT_BATCHES, {"last_seq": 1, "run_id": "r", "events": [["a", None, {"b": 1}]]}),
        (
            q.CLAIM_PENDING,
            {"_run": "r", "_node": "n", "_iteration": 0, "_now": 1, "_owner": "w", "_expires": 2},
        ),
        (q.UPDATE_RUN, {"status": "running", "output": None, "_run": "r"}),
    ]:
        for dialect in DIALECTS.values():
            compiled = _Compiled(stmt.stmt, dialect, list(params))
            assert compiled.args != compiled.construct_args


def test_missing_required_parameter_raises_like_sqlalchemy() -> None:
    compiled = _Compiled(q.GET_RUN.stmt, DIALECTS["sqlite"], [])
    with pytest.raises(sa.exc.InvalidRequestError, match="_run"):
        compiled.args({})


@pytest.mark.parametrize("dialect_name", list(DIALECTS))
def test_result_processors_match_sqlalchemy(dialect_name: str) -> None:
    dialect = DIALECTS[dialect_name]
    raw: list[Any] = [None, "null", '{"a": [1, null]}', "[1]", "3", 3, 2.5, '"s"', "true"]
    checked = 0
    for column in [*schema.node_runs.c, *schema.runs.c, *schema.event_batches.c]:
        ours = prepared.result_processor(column.type, dialect)
        theirs = column.type.dialect_impl(dialect).result_processor(dialect, None)
        assert (ours is None) == (theirs is None), column
        if ours is None or theirs is None:
            continue
        for value in raw:
            assert repr(ours(value)) == repr(theirs(value)), (column, value)
            checked += 1
    if dialect_name == "sqlite":
        assert checked > 0  # JSON columns are decoded here (natively by psycopg)
