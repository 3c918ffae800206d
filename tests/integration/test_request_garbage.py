"""A served request leaves no reference cycle behind: what it allocated is freed by
reference counting when the server drops the request, not by the garbage collector.

Under load a cycle per request was the collector's whole work: every ~0.5 s a pass freed
tens of thousands of objects at once and held the event loop 10-15 ms (p99 of a GET went
from ~3 to 15-20 ms, ``bench/api.py``). uvicorn hands the app the ``send`` method of the
request's cycle object, which holds the scope: storing ``send`` in the scope closed the loop.
"""

from __future__ import annotations

import gc
import json
import weakref
from typing import Any

from api_support import ApiHarness, api_fixture  # noqa: F401


class _Cycle:
    """What uvicorn's RequestResponseCycle is to the app: it holds the scope, and the app
    gets its bound ``send`` and ``receive``."""

    def __init__(self, scope: dict[str, Any], body: bytes) -> None:
        self.scope = scope
        self.body = body
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        return {"type": "http.request", "body": self.body, "more_body": False}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)


def _scope(path: str, query: str, key: str, body: bytes) -> dict[str, Any]:
    headers = [(b"host", b"test"), (b"authorization", f"Bearer {key}".encode())]
    if body:
        headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST" if body else "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": headers,
        "server": ("127.0.0.1", 8080),
        "client": ("127.0.0.1", 50000),
    }


async def test_a_served_request_leaves_no_reference_cycle(api: ApiHarness) -> None:
    made = await api.client.post("/v1/workflows", json=_doc())
    run = await api.client.post("/v1/runs", json={"workflowId": made.json()["id"]})
    run_id = run.json()["runId"]
    start = json.dumps({"workflowId": made.json()["id"]}).encode()
    requests = [
        ("/health", "", b""),
        ("/v1/runs", "limit=5", b""),
        (f"/v1/runs/{run_id}", "", b""),
        ("/v1/runs", "", start),  # (the start shortcut)
    ]
    for path, query, body in requests:  # (warm: first uses fill caches)
        await _serve(api, path, query, body)
    gone: list[weakref.ref[_Cycle]] = []
    gc.collect()
    gc.disable()
    try:
        for path, query, body in requests * 3:
            gone.append(await _serve(api, path, query, body))
        alive = [ref() for ref in gone if ref() is not None]
        assert alive == [], f"{len(alive)} of {len(gone)} requests kept alive by a cycle"
    finally:
        gc.enable()


async def _serve(api: ApiHarness, path: str, query: str, body: bytes) -> weakref.ref[_Cycle]:
    cycle = _Cycle(_scope(path, query, api.admin_key, body), body)
    await api.app(cycle.scope, cycle.receive, cycle.send)
    assert cycle.sent[0]["status"] == 200, (path, cycle.sent)
    return weakref.ref(cycle)


def _doc() -> dict[str, Any]:
    return {"name": "garbage", "nodes": [{"id": "a", "type": "util.noop"}]}
