"""``POST /v1/workflows/validate`` names the line of every problem it finds in a YAML or
JSON text, graph problems (an unknown type, an unknown need, a missing param) included, so
that an editor can show each one at its line."""

from __future__ import annotations

from api_support import ApiHarness, api_fixture  # noqa: F401  (the api fixture)

DOCUMENT = """name: lines
nodes:
  - id: a
    type: util.set
    params:
      value: 1
  - id: b
    type: no.such.type
    needs: [a]
  - id: c
    type: util.log
    needs:
      - zz
    params:
      message: hi
  - id: d
    type: util.set
"""


def _line(text: str, needle: str, after: str = "") -> int:
    start = text.index(after) if after else 0
    return text[: text.index(needle, start)].count("\n") + 1


async def test_graph_problems_carry_their_lines(api: ApiHarness) -> None:
    r = await api.client.post(
        "/v1/workflows/validate", content=DOCUMENT, headers={"Content-Type": "application/yaml"}
    )
    assert r.status_code == 200
    report = r.json()
    assert report["valid"] is False
    by_code = {e["code"]: e for e in report["errors"]}
    assert by_code["unknown_type"]["line"] == _line(DOCUMENT, "type: no.such.type")
    assert by_code["unknown_type"]["path"] == "nodes[1].type"
    assert by_code["unknown_need"]["line"] == _line(DOCUMENT, "- zz")
    # A missing param: the line of the node that lacks it (the deepest part that exists).
    assert by_code["missing_param"]["node_id"] == "d"
    assert by_code["missing_param"]["line"] == _line(DOCUMENT, "id: d")


async def test_json_text_has_lines_and_a_parsed_body_has_none(api: ApiHarness) -> None:
    text = '{\n  "name": "j",\n  "nodes": [\n    {"id": "a",\n     "type": "nope.x"}\n  ]\n}\n'
    r = await api.client.post(
        "/v1/workflows/validate", content=text, headers={"Content-Type": "application/json"}
    )
    (error,) = r.json()["errors"]
    assert error["code"] == "unknown_type" and error["line"] == 5
