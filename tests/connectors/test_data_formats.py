"""The format connectors: JSON, YAML, CSV, XML, Markdown and HTML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from connector_kit import assert_manifests, make_ctx

from flowplane.connectors.builtin import data_csv, data_json, data_markup, data_xml, data_yaml
from flowplane.errors import ConnectorError


@pytest.fixture
def ctx(tmp_path: Path) -> Any:
    return make_ctx(tmp_path)


def test_manifests() -> None:
    for module in (data_json, data_yaml, data_csv, data_xml, data_markup):
        assert_manifests(module, minimum=2)


async def test_json_roundtrip(ctx: Any) -> None:
    assert (await data_json.json_parse({"text": '{"a": [1, 2]}'}, ctx)) == {"value": {"a": [1, 2]}}
    out = await data_json.json_format({"value": {"b": 1, "a": "é"}, "sort_keys": True}, ctx)
    assert out == {"text": '{"a":"é","b":1}'}
    pretty = await data_json.json_format({"value": [1], "indent": 2}, ctx)
    assert pretty["text"] == "[\n  1\n]"
    with pytest.raises(ConnectorError) as err:
        await data_json.json_parse({"text": "{bad"}, ctx)
    assert not err.value.retryable


async def test_yaml(ctx: Any) -> None:
    out = await data_yaml.yaml_parse({"text": "a: 1\nb: [x, y]\n"}, ctx)
    assert out == {"value": {"a": 1, "b": ["x", "y"]}}
    docs = await data_yaml.yaml_parse({"text": "a: 1\n---\nb: 2\n", "all_documents": True}, ctx)
    assert docs == {"value": [{"a": 1}, {"b": 2}]}
    text = (await data_yaml.yaml_format({"value": {"k": [1, 2]}}, ctx))["text"]
    assert (await data_yaml.yaml_parse({"text": text}, ctx))["value"] == {"k": [1, 2]}
    # Aliases (billion laughs) and Python object tags are refused.
    with pytest.raises(ConnectorError, match="aliases"):
        await data_yaml.yaml_parse({"text": "a: &x [1]\nb: *x\n"}, ctx)
    with pytest.raises(ConnectorError):
        await data_yaml.yaml_parse({"text": "!!python/object/apply:os.system ['id']"}, ctx)


async def test_csv(ctx: Any) -> None:
    out = await data_csv.csv_parse({"text": 'id,name\n1,Ada\n\n2,"Lin, us"\n'}, ctx)
    assert out == {
        "rows": [{"id": "1", "name": "Ada"}, {"id": "2", "name": "Lin, us"}],
        "columns": ["id", "name"],
        "count": 2,
    }
    raw = await data_csv.csv_parse({"text": "1;2\n3;4", "delimiter": ";", "header": False}, ctx)
    assert raw["rows"] == [["1", "2"], ["3", "4"]]
    short = await data_csv.csv_parse({"text": "a,b\n1\n"}, ctx)
    assert short["rows"] == [{"a": "1", "b": None}]
    text = await data_csv.csv_format(
        {"rows": [{"id": 1, "ok": True}, {"id": 2, "extra": {"x": 1}}]}, ctx
    )
    assert text == {"text": 'id,ok,extra\n1,true,\n2,,"{""x"": 1}"\n', "count": 2}
    lists = await data_csv.csv_format({"rows": [[1, None, "a,b"]], "delimiter": ";"}, ctx)
    assert lists["text"] == "1;;a,b\n"
    empty = await data_csv.csv_parse({"text": ""}, ctx)
    assert empty == {"rows": [], "columns": [], "count": 0}


async def test_xml(ctx: Any) -> None:
    out = await data_xml.xml_parse(
        {"text": '<order id="7"><item>a</item><item>b</item><note>hi</note></order>'}, ctx
    )
    assert out == {"value": {"order": {"@id": "7", "item": ["a", "b"], "note": "hi"}}}
    text = (await data_xml.xml_format({"value": out["value"], "declaration": True}, ctx))["text"]
    assert text.startswith("<?xml") and '<order id="7"><item>a</item><item>b</item>' in text
    assert (await data_xml.xml_parse({"text": text.split("\n", 1)[1]}, ctx)) == out
    escaped = await data_xml.xml_format({"value": {"a": {"#text": "<b>&"}}}, ctx)
    assert escaped["text"] == "<a>&lt;b&gt;&amp;</a>"


@pytest.mark.parametrize(
    "attack",
    [
        '<!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><x>&b;</x>',
        '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
        "<unclosed>",
    ],
)
async def test_xml_attacks_refused(ctx: Any, attack: str) -> None:
    with pytest.raises(ConnectorError) as err:
        await data_xml.xml_parse({"text": attack}, ctx)
    assert not err.value.retryable


async def test_markdown_escapes_html(ctx: Any) -> None:
    out = await data_markup.markdown_to_html(
        {"markdown": "# T\n\n**b** <script>alert(1)</script>\n\n|a|b|\n|-|-|\n|1|2|"}, ctx
    )
    html = out["html"]
    assert "<h1>T</h1>" in html and "<strong>b</strong>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<table>" in html


async def test_html_to_text(ctx: Any) -> None:
    out = await data_markup.html_to_text(
        {
            "html": "<html><head><style>x{}</style></head><body><h1>Hi</h1>"
            "<p>See  <a href='https://e.com'>this</a> &amp; that</p>"
            "<script>evil()</script></body></html>"
        },
        ctx,
    )
    assert out == {"text": "Hi\nSee this & that", "links": ["https://e.com"]}
