"""data_text and data_urls: bounded regular expressions, string operations, URLs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from connector_kit import assert_manifests, make_ctx

from flowplane.connectors.builtin import _regex as safe_regex
from flowplane.connectors.builtin import data_text as m
from flowplane.connectors.builtin import data_urls
from flowplane.errors import ConnectorError


@pytest.fixture
def ctx(tmp_path: Path) -> Any:
    return make_ctx(tmp_path)


def test_manifests() -> None:
    assert_manifests(m, minimum=12)
    assert_manifests(data_urls, minimum=2)


async def test_regex_match_and_extract(ctx: Any) -> None:
    out = await m.regex_match({"text": "order #1234", "pattern": r"#(?P<id>\d+)"}, ctx)
    assert out == {
        "matched": True,
        "match": "#1234",
        "start": 6,
        "end": 11,
        "groups": ["1234"],
        "named": {"id": "1234"},
    }
    miss = await m.regex_match({"text": "abc", "pattern": "x", "full": True}, ctx)
    assert miss["matched"] is False and miss["match"] is None
    full = await m.regex_match(
        {"text": "ABC", "pattern": "abc", "full": True, "flags": ["ignorecase"]}, ctx
    )
    assert full["matched"]
    many = await m.regex_extract(
        {"text": "a@x.org, b@y.org, c@z.org", "pattern": r"[\w.]+@([\w.]+)", "limit": 2}, ctx
    )
    assert many["values"] == ["x.org", "y.org"] and many["truncated"] and many["count"] == 2


async def test_regex_replace(ctx: Any) -> None:
    out = await m.regex_replace(
        {"text": "2024-01-31", "pattern": r"(\d+)-(\d+)-(\d+)", "replacement": r"\3/\2/\1"}, ctx
    )
    assert out == {"text": "31/01/2024", "replacements": 1}
    with pytest.raises(ConnectorError, match="replacement"):
        await m.regex_replace({"text": "a", "pattern": "a", "replacement": r"\9"}, ctx)


async def test_regex_safety(ctx: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(m, "REGEX_TIMEOUT_SECONDS", 0.2)
    with pytest.raises(ConnectorError, match="longer than") as err:
        await m.regex_match({"text": "a" * 60 + "b", "pattern": "^(a|aa)+$"}, ctx)
    assert not err.value.retryable
    with pytest.raises(ConnectorError, match="invalid regular expression"):
        await m.regex_match({"text": "a", "pattern": "("}, ctx)
    with pytest.raises(ConnectorError, match="longer than"):
        await m.regex_match({"text": "a", "pattern": "a" * (safe_regex.MAX_PATTERN_CHARS + 1)}, ctx)
    with pytest.raises(ConnectorError, match="text is longer"):
        await m.regex_extract(
            {"text": "a" * (safe_regex.MAX_REGEX_INPUT_CHARS + 1), "pattern": "a"}, ctx
        )


async def test_split_join(ctx: Any) -> None:
    out = await m.split(
        {"text": "a, b,,c", "separator": ",", "trim": True, "skip_empty": True}, ctx
    )
    assert out == {"parts": ["a", "b", "c"], "count": 3}
    assert (await m.split({"text": " a  b "}, ctx))["parts"] == ["a", "b"]
    assert (await m.split({"text": "l1\nl2\r\nl3", "lines": True}, ctx))["parts"] == [
        "l1",
        "l2",
        "l3",
    ]
    assert (await m.split({"text": "a1b22c", "pattern": r"\d+"}, ctx))["parts"] == ["a", "b", "c"]
    assert (await m.split({"text": "a,b,c", "separator": ",", "max_split": 1}, ctx))["parts"] == [
        "a",
        "b,c",
    ]
    joined = await m.join({"items": ["a", None, 1, ""], "separator": "-", "skip_empty": True}, ctx)
    assert joined == {"text": "a-1"}


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("snake", "order_total_amount_html"),
        ("kebab", "order-total-amount-html"),
        ("camel", "orderTotalAmountHtml"),
        ("pascal", "OrderTotalAmountHtml"),
        ("constant", "ORDER_TOTAL_AMOUNT_HTML"),
        ("upper", "ORDERTOTAL AMOUNT-HTML"),
        ("sentence", "Ordertotal amount-html"),
    ],
)
async def test_change_case(ctx: Any, case: str, expected: str) -> None:
    out = await m.change_case({"text": "orderTotal Amount-HTML", "case": case}, ctx)
    assert out == {"text": expected}


async def test_string_ops(ctx: Any) -> None:
    assert (await m.trim({"text": "  a   b  ", "collapse": True}, ctx)) == {"text": "a b"}
    assert (await m.trim({"text": "xxaxx", "characters": "x", "side": "start"}, ctx)) == {
        "text": "axx"
    }
    assert (await m.pad({"text": 42, "width": 5, "fill": "0"}, ctx)) == {"text": "00042"}
    assert (await m.pad({"text": "a", "width": 3, "side": "both"}, ctx)) == {"text": " a "}
    assert (await m.slugify_text({"text": "Héllo, World! 2024"}, ctx)) == {
        "slug": "hello-world-2024"
    }
    assert (await m.slugify_text({"text": "one two three", "max_length": 9}, ctx)) == {
        "slug": "one-two"
    }
    assert (await m.truncate({"text": "The quick brown fox", "length": 12}, ctx)) == {
        "text": "The quick…",
        "truncated": True,
    }
    assert (await m.truncate({"text": "short", "length": 12}, ctx))["truncated"] is False
    out = await m.replace(
        {"text": "Hi NAME, name", "replacements": {"name": "A\\1"}, "ignore_case": True}, ctx
    )
    assert out == {"text": "Hi A\\1, A\\1"}
    assert (await m.text_stats({"text": "one two\nthré"}, ctx)) == {
        "characters": 12,
        "words": 3,
        "lines": 2,
        "bytes": 13,
    }


async def test_urls(ctx: Any) -> None:
    out = await data_urls.url_parse({"url": "https://u:secret@ex.com:8443/a?x=1&y=2&y=3#top"}, ctx)
    assert out == {
        "scheme": "https",
        "host": "ex.com",
        "port": 8443,
        "path": "/a",
        "query": {"x": "1", "y": ["2", "3"]},
        "fragment": "top",
        "username": "u",
    }
    assert "secret" not in str(out)
    with pytest.raises(ConnectorError):
        await data_urls.url_parse({"url": "http://ex.com:99999/"}, ctx)
    built = await data_urls.url_build(
        {
            "base": "https://api.ex.com/v1?k=1",
            "path": ["users", "a b/c"],
            "query": {"q": "x&y", "t": ["a", "b"], "f": True, "n": None},
        },
        ctx,
    )
    assert built == {"url": "https://api.ex.com/v1/users/a%20b%2Fc?k=1&q=x%26y&t=a&t=b&f=true"}
