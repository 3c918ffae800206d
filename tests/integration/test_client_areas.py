"""Every API area through both clients, on SQLite and PostgreSQL, against a real server.

One scenario runs through :class:`Client` and through :class:`AsyncClient` (driven from a
private event loop by :class:`Blocking`, which awaits each call and drains each async
iterator): workflows (validate, import, apply, revisions, paging), runs (``wait`` on the event
stream, frames, fork with ``input=``, diff), a missing credential, credentials, schedules,
triggers, KV and connectors.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from runs_support import ADMIN, LOG_WORKFLOW, served

from flowplane.client import AsyncClient, Client, NotFound, Page, RunList
from flowplane.errors import FlowplaneError
from flowplane.security.crypto import generate_key

BAD_DOCUMENT = """
name: broken
nodes:
  - id: a
    type: util.log
    timeout: banana
    params: {message: hi}
  - id: b
    needs: [a, zz]
    type: util.log
    params: {messag: hi}
"""

SECRET_DOCUMENT = """
name: needs-a-secret
nodes:
  - id: fetch
    type: http.request
    params:
      url: "https://shop.example/api/orders/1"
      headers: {Authorization: "Bearer ${SHOP_TOKEN}"}
"""


async def _drain(items: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in items]


class Blocking:
    """:class:`AsyncClient` called from synchronous code: each call awaited on ``loop``,
    each async iterator drained into a list."""

    def __init__(self, client: AsyncClient, loop: asyncio.AbstractEventLoop) -> None:
        self.client, self.loop = client, loop

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.client, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            if name == "paginate":  # the listing method is the async client's own
                args = (getattr(self.client, args[0].__name__), *args[1:])
            result = attr(*args, **kwargs)
            if inspect.isasyncgen(result):
                return self.loop.run_until_complete(_drain(result))
            if inspect.isawaitable(result):
                return self.loop.run_until_complete(result)
            return result

        call.__name__ = name
        return call


@pytest.fixture
def server(db: tuple[str, str], tmp_path: Path) -> Iterator[tuple[str, str]]:
    root = tmp_path / "root"
    root.mkdir()
    settings = {"secret_key": generate_key(), "data_dir": tmp_path / "data"}
    with served(db, root, **settings) as (url, keys):
        yield url, keys[ADMIN]


@pytest.fixture(params=["sync", "async"])
def fp(request: pytest.FixtureRequest, server: tuple[str, str]) -> Iterator[Any]:
    url, key = server
    if request.param == "sync":
        with Client(url, token=key) as client:
            yield client
        return
    loop = asyncio.new_event_loop()
    client = AsyncClient(url, token=key)
    try:
        yield Blocking(client, loop)
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()


def test_workflow_area(fp: Any) -> None:
    bad = fp.validate_workflow(BAD_DOCUMENT)
    assert not bad.valid
    found = {(e.node_id, e.code, e.field) for e in bad.errors}
    # The model's error, the graph's and the params' come in one answer.
    assert ("a", "invalid_document", "timeout") in found
    assert ("b", "unknown_need", "needs") in found
    assert ("b", "unknown_param", "params.messag") in found
    assert ("b", "missing_param", "params.message") in found

    imported = fp.import_workflow(LOG_WORKFLOW)
    assert [i.action for i in imported.items] == ["created"] and imported.created == 1
    same = fp.apply_workflow(LOG_WORKFLOW)
    assert same.version == 1 and same.id == imported.items[0].id
    changed = fp.apply_workflow(LOG_WORKFLOW.replace('"second"', '"2nd"'))
    assert changed.version == 2
    revisions = fp.list_revisions(changed.id)
    assert isinstance(revisions, Page) and [r.version for r in revisions.items] == [2, 1]
    assert fp.get_revision(changed.id, 1).document["name"] == "three-logs"

    for i in range(3):
        fp.create_workflow(
            f"name: paged-{i}\nnodes: [{{id: a, type: util.log, params: {{message: x}}}}]"
        )
    first = fp.list_workflows(limit=2)
    assert len(first.items) == 2 and first.next_cursor
    names = [w.name for w in fp.paginate(fp.list_workflows, limit=2)]
    assert names == ["three-logs", "paged-0", "paged-1", "paged-2"]


def test_run_area(fp: Any) -> None:
    wf = fp.apply_workflow(LOG_WORKFLOW)
    run = fp.run_workflow(wf.id, input={"who": "ann"})
    done = fp.wait(run.run_id, timeout=60)
    assert done.status == "finished"
    assert done.node("c").status == "finished" and done.node("c").state == "finished"
    assert done.node("c").output == {"greeted": "ann"}

    frames = fp.get_frames(run.run_id)
    assert frames[0].frame_no == 1 and frames[-1].frame_no == len(frames)
    fork = fp.fork(run.run_id, from_node="c", input={"who": "bob"})
    forked = fp.wait(fork.run_id, timeout=60)
    assert forked.status == "finished" and forked.forked_from == run.run_id
    assert forked.node("c").output == {"greeted": "bob"}
    diff = fp.diff(run.run_id, fork.run_id)
    assert diff.input_changed and "c" in diff.changed_nodes

    page = fp.list_runs(limit=1)
    assert isinstance(page, RunList) and isinstance(page, Page)
    assert len(page.items) == 1 and page.runs == page.items and page.next_cursor
    every = [r.run_id for r in fp.paginate(fp.list_runs, limit=1)]
    assert sorted(every) == sorted([run.run_id, fork.run_id])
    events = list(fp.stream_events(run.run_id))
    assert [e.seq for e in events] == sorted({e.seq for e in events})
    assert "RunFinished" in [e.type for e in events]


def test_credential_area(fp: Any) -> None:
    wf = fp.create_workflow(SECRET_DOCUMENT)
    checked = fp.validate_workflow(SECRET_DOCUMENT)
    assert checked.valid
    assert [(w.code, w.value, w.node_id) for w in checked.warnings] == [
        ("credential_missing", "SHOP_TOKEN", "fetch")
    ]
    failed = fp.wait(fp.run_workflow(wf.id).run_id, timeout=60)
    assert failed.status == "failed"
    error = failed.node("fetch").error
    assert error["code"] == "credential_missing" and "SHOP_TOKEN" in error["message"]

    created = fp.create_credential("SHOP_TOKEN", "s3cr3t-value", description="the shop")
    assert created.name == "SHOP_TOKEN" and created.version == 1
    assert fp.get_credential(created.id).description == "the shop"
    assert [c.name for c in fp.list_credentials().items] == ["SHOP_TOKEN"]
    updated = fp.update_credential(created.id, value="v2", if_match=created.version)
    assert updated.version == 2
    assert fp.validate_workflow(SECRET_DOCUMENT).warnings == []
    fp.delete_credential(created.id, if_match=2)
    with pytest.raises(NotFound):
        fp.get_credential(created.id)


def test_schedule_and_trigger_area(fp: Any) -> None:
    wf = fp.apply_workflow(LOG_WORKFLOW)
    schedule = fp.create_schedule("0 3 * * *", workflow=wf.name, input={"who": "cron"})
    assert schedule.workflow_id == wf.id and schedule.enabled
    assert [s.id for s in fp.list_schedules().items] == [schedule.id]
    assert fp.get_schedule(schedule.id).cron == "0 3 * * *"
    assert fp.update_schedule(schedule.id, enabled=False).enabled is False
    run_id = fp.trigger_schedule(schedule.id)
    assert fp.wait(run_id, timeout=60).node("c").output == {"greeted": "cron"}
    fp.delete_schedule(schedule.id)
    with pytest.raises(NotFound):
        fp.get_schedule(schedule.id)

    trigger = fp.create_trigger(workflow=wf.name, key="orders-hook")
    assert trigger.url.endswith("/v1/webhooks/orders-hook") and trigger.enabled
    assert [t.id for t in fp.paginate(fp.list_triggers)] == [trigger.id]
    assert fp.get_trigger(trigger.id).key == "orders-hook"
    replaced = fp.update_trigger(trigger.id, workflow_id=wf.id, key="orders-hook", enabled=False)
    assert replaced.enabled is False
    fp.delete_trigger(trigger.id)
    with pytest.raises(NotFound):
        fp.get_trigger(trigger.id)


def test_kv_and_connector_area(fp: Any) -> None:
    first = fp.put_kv("default", "orders/last", {"n": 1})
    assert first.version == 1
    assert fp.put_kv("default", "orders/last", {"n": 2}, if_match=1).version == 2
    with pytest.raises(FlowplaneError) as stale:
        fp.put_kv("default", "orders/last", {"n": 3}, if_match=1)
    assert stale.value.status == 412
    fp.put_kv("default", "other", "x", ttl_seconds=600)
    assert fp.get_kv("default", "orders/last").value == {"n": 2}
    assert [e.key for e in fp.list_kv("default", prefix="orders/").items] == ["orders/last"]
    fp.delete_kv("default", "orders/last")
    with pytest.raises(NotFound):
        fp.get_kv("default", "orders/last")

    found = fp.list_connectors(q="log")
    assert "util.log" in [c.type for c in found.items]
    detail = fp.get_connector("util.log")
    assert detail.type == "util.log" and detail.kind
    assert any(c.name == detail.category for c in fp.list_connector_categories())
