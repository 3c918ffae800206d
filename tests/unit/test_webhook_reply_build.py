"""Building a webhook caller's answer from an ``http.webhook_response`` node's output."""

from __future__ import annotations

from flowplane.services.webhook_reply import FORCED_HEADERS, build_reply, reply_nodes


def test_json_text_and_empty_bodies() -> None:
    json_reply = build_reply({"status_code": 201, "body": {"a": [1, "é"]}, "headers": {}})
    assert json_reply is not None
    assert (json_reply.status, json_reply.body) == (201, '{"a":[1,"é"]}'.encode())
    text = build_reply({"body": "hi", "headers": {"Content-Type": "text/plain"}})
    assert text is not None and (text.status, text.body) == (200, b"hi")
    quoted = build_reply({"body": "hi", "headers": {"Content-Type": "application/json"}})
    assert quoted is not None and quoted.body == b'"hi"'
    empty = build_reply({"status_code": 204, "body": {"ignored": True}})
    assert empty is not None and empty.body == b""


def test_headers_that_are_not_the_nodes_to_set_are_dropped() -> None:
    reply = build_reply(
        {
            "headers": {
                "X-Ok": "yes",
                "Content-Length": "999",
                "Transfer-Encoding": "chunked",
                "X-Request-Id": "forged",
                "Bad Name": "x",
                "X-Control": "a\x00b",
                "X-Wide": "snowman ☃",
            }
        }
    )
    assert reply is not None
    assert reply.headers == {"X-Ok": "yes", **FORCED_HEADERS}


def test_served_from_our_origin_safely() -> None:
    reply = build_reply(
        {
            "headers": {
                "Content-Type": "text/html",
                "Set-Cookie": "sid=x",
                "content-security-policy": "script-src *",
                "X-Padded": "  v  ",
            },
            "body": "<script>alert(1)</script>",
        }
    )
    assert reply is not None
    assert "Set-Cookie" not in reply.headers
    assert reply.headers["Content-Security-Policy"].startswith("sandbox")
    assert "content-security-policy" not in reply.headers
    assert reply.headers["X-Padded"] == "v"


def test_not_a_reply() -> None:
    assert build_reply(None) is None
    assert build_reply({"status_code": 101}) is None
    assert build_reply({"status_code": "200"}) is None


def test_reply_nodes() -> None:
    doc = {
        "nodes": [
            {"id": "a", "type": "util.log"},
            {"id": "r", "type": "http.webhook_response"},
            "junk",
        ]
    }
    assert reply_nodes(doc) == frozenset({"r"})
    assert reply_nodes({}) == frozenset()
