"""Big runs on both backends: the foreach limit, the capped run detail and its node pages.

``FLOWPLANE_MAX_FOREACH_ITEMS`` fails a node whose ``foreach`` is longer (not retried);
``GET /v1/runs/{id}`` of a run with more node runs than ``FLOWPLANE_MAX_RUN_DETAIL_NODES``
lists the first ones with a count and a cursor, and ``GET /v1/runs/{id}/nodes`` (and the
client's ``iter_run_nodes``) pages through all of them.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from runs_support import OTHER_NS, VIEWER, Api, create_keys, fast_settings

from flowplane.api.app import create_app
from flowplane.client import AsyncClient
from flowplane.engine import settlement
from flowplane.store.tx.base import TxBase

MAX_ITEMS = 5
MAX_DETAIL_NODES = 4


def fanout(items: int) -> str:
    return f"""
name: fanout-{items}
nodes:
  - {{id: start, type: util.set, params: {{value: 1}}}}
  - id: each
    type: util.set
    needs: [start]
    foreach: "{{{{ range({items})|list }}}}"
    params: {{value: "{{{{ item * 10 }}}}"}}
"""


@contextlib.asynccontextmanager
async def small_limits_api(db: tuple[str, str], root: Path) -> AsyncIterator[Api]:
    settings = fast_settings(
        db, root, max_foreach_items=MAX_ITEMS, max_run_detail_nodes=MAX_DETAIL_NODES
    )
    app = create_app(settings, workers=1)
    async with app.router.lifespan_context(app):
        keys = await create_keys(app)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://flowplane") as http:
            yield Api(app, http, root, keys)


@pytest.fixture
async def api(db: tuple[str, str], tmp_path: Path) -> AsyncIterator[Api]:
    root = tmp_path / "root"
    root.mkdir()
    async with small_limits_api(db, root) as started:
        yield started


async def test_foreach_over_the_limit_fails_clearly(api: Api) -> None:
    run_id = await api.dispatch_file("big.yaml", fanout(MAX_ITEMS + 1))
    body = await api.wait_status(run_id, "failed", "finished")
    assert body["status"] == "failed"
    node = next(n for n in body["nodes"] if n["nodeId"] == "each")
    assert node["state"] == "failed"
    assert node["error"]["code"] == "foreach_too_large"
    assert node["error"]["items"] == MAX_ITEMS + 1 and node["error"]["limit"] == MAX_ITEMS
    message = node["error"]["message"]
    assert "6 items" in message and "limit of 5" in message
    assert "FLOWPLANE_MAX_FOREACH_ITEMS" in message
    assert node["attempt"] == 1 and len(node["attempts"]) == 1  # not retried
    assert not [n for n in body["nodes"] if n["nodeId"] == "each" and n["iteration"] >= 0]


async def test_foreach_at_the_limit_runs(api: Api) -> None:
    run_id = await api.dispatch_file("ok.yaml", fanout(MAX_ITEMS))
    body = await api.wait_status(run_id, "failed", "finished")
    assert body["status"] == "finished"


async def test_small_run_detail_has_no_paging_fields(api: Api) -> None:
    # 1 + 1 + 2 items = 4 node runs: exactly the limit, listed in full, as before.
    run_id = await api.dispatch_file("two.yaml", fanout(2))
    body = await api.wait_status(run_id, "finished", "failed")
    assert body["status"] == "finished"
    assert len(body["nodes"]) == MAX_DETAIL_NODES
    assert "nodeRunsTotal" not in body and "nodesNextCursor" not in body
    pages = await _all_pages(api, run_id, limit=3)
    assert [_key(n) for n in pages] == [_key(n) for n in body["nodes"]]
    assert pages == body["nodes"]


def _key(node: dict[str, Any]) -> tuple[str, int]:
    return node["nodeId"], node["iteration"]


async def _all_pages(
    api: Api, run_id: str, *, limit: int, cursor: str | None = None
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        response = await api.http.get(
            f"/v1/runs/{run_id}/nodes", params=params, headers=api.headers(VIEWER)
        )
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= limit
        items += page["items"]
        pages += 1
        assert pages < 100
        cursor = page["nextCursor"]
        if cursor is None:
            return items


async def test_big_run_detail_is_capped_and_paged(api: Api) -> None:
    run_id = await api.dispatch_file("five.yaml", fanout(MAX_ITEMS))
    body = await api.wait_status(run_id, "finished", "failed")
    assert body["status"] == "finished"
    # start, the foreach node's level row and its 5 items.
    assert body["nodeRunsTotal"] == 7
    assert len(body["nodes"]) == MAX_DETAIL_NODES
    assert body["summary"] == {"finished": 2} and body["nodesTotal"] == 2
    assert body["nodesExecuted"] == 2
    every = await _all_pages(api, run_id, limit=2)
    assert len(every) == 7 and len(set(map(_key, every))) == 7
    assert every[:MAX_DETAIL_NODES] == body["nodes"]
    outputs = sorted(n["output"] for n in every if n["nodeId"] == "each" and n["iteration"] >= 0)
    assert outputs == [0, 10, 20, 30, 40]
    assert all(len(n["attempts"]) == 1 for n in every if n["iteration"] >= 0)
    rest = await _all_pages(api, run_id, limit=100, cursor=body["nodesNextCursor"])
    assert rest == every[MAX_DETAIL_NODES:]

    # The client pages through them the same way.
    transport = httpx.ASGITransport(app=api.app)
    async with AsyncClient("http://flowplane", token=api.keys[VIEWER], transport=transport) as fp:
        detail = await fp.get_run(run_id)
        assert detail.node_runs_total == 7 and len(detail.nodes) == MAX_DETAIL_NODES
        listed = [n async for n in fp.iter_run_nodes(run_id, page_size=3)]
        assert [(n.node_id, n.iteration) for n in listed] == list(map(_key, every))
        page = await fp.get_run_nodes(run_id, cursor=detail.nodes_next_cursor, limit=2)
        assert [(n.node_id, n.iteration) for n in page.items] == list(map(_key, every[4:6]))


async def test_node_pages_refuse_bad_cursors_and_hidden_runs(api: Api) -> None:
    run_id = await api.dispatch_file("three.yaml", fanout(1))
    await api.wait_status(run_id, "finished", "failed")
    for cursor in ("x", "-1", "1.5", "9" * 30):
        response = await api.http.get(
            f"/v1/runs/{run_id}/nodes", params={"cursor": cursor}, headers=api.headers(VIEWER)
        )
        assert response.status_code == 400, (cursor, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    hidden = await api.http.get(f"/v1/runs/{run_id}/nodes", headers=api.headers(OTHER_NS))
    assert hidden.status_code == 404
    missing = await api.http.get("/v1/runs/nope/nodes", headers=api.headers(VIEWER))
    assert missing.status_code == 404
    too_big = await api.http.get(
        f"/v1/runs/{run_id}/nodes", params={"limit": 100_000}, headers=api.headers(VIEWER)
    )
    assert too_big.status_code in (400, 422)


async def test_the_last_item_of_a_big_foreach_settles_off_the_loop(
    api: Api, db: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Settling a big foreach reads every item's output: on SQLite's inline path the
    # transaction is rolled back and run again on the writer thread. "Big" is lowered here.
    monkeypatch.setattr(settlement, "OFF_LOOP_ITEMS", 2)
    calls: list[bool] = []
    off_loop = TxBase.off_loop

    def spy(self: TxBase) -> None:
        calls.append(self.inline)
        off_loop(self)

    monkeypatch.setattr(TxBase, "off_loop", spy)
    run_id = await api.dispatch_file("offloop.yaml", fanout(MAX_ITEMS))
    body = await api.wait_status(run_id, "finished", "failed")
    assert body["status"] == "finished"
    each = next(n for n in body["nodes"] if n["nodeId"] == "each" and n["iteration"] == -1)
    assert each["output"] == [0, 10, 20, 30, 40]
    events = await api.http.get(f"/v1/runs/{run_id}/events", headers=api.headers(VIEWER))
    data = [json.loads(line[6:]) for line in events.text.splitlines() if line.startswith("data: ")]
    finished = [event for event in data if event["type"] == "NodeFinished"]
    assert len(finished) == 1 + MAX_ITEMS + 1  # start, the items, the foreach node: once each
    if db[0].startswith("sqlite"):
        assert calls[:2] == [True, False]  # inline, then again on the writer thread
    else:
        assert calls and not any(calls)
