"""The web UI in a real browser (Chromium via Playwright) against a real ``flowplane serve``,
one server per backend (SQLite, PostgreSQL) for the module.

What a person does: sign in (API key, password), watch a run's graph change colour live as
the run moves on, approve from the inbox and see the run finish, see a validation error
appear at its line while editing, save with If-Match, fork a run from a node, and, as a
viewer, find no button that would change anything. ``/docs`` opens without a header and
its Authorize button takes an API key.

With ``FLOWPLANE_UI_SCREENSHOTS=docs/ui`` the SQLite run also writes the screenshots that
docs/ui.md shows.
"""

from __future__ import annotations

import base64
import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser_support import launched, require_browser, screenshot
from serve_support import Serve, serving

from conftest import POSTGRES_URL, drop_schema, require_postgres

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
STEPS = """name: ui-steps
description: Three steps, for the browser tests.
inputs:
  type: object
  properties:
    who: {type: string, default: world}
nodes:
  - id: first
    type: util.set
    params:
      value: "hello {{ input.who }}"
  - id: second
    type: util.set
    needs: [first]
    params:
      value: "{{ nodes.first.output }}!"
  - id: third
    type: util.log
    needs: [second]
    params:
      message: "{{ nodes.second.output }}"
"""
SIGNAL = """name: ui-signal
nodes:
  - id: wait
    type: wait.signal
    params:
      name: go
  - id: after
    type: util.set
    needs: [wait]
    params:
      value: "{{ nodes.wait.output.payload.colour }}"
"""
TIMEOUT_MS = 20_000


@dataclass
class Site:
    """A served Flowplane with the keys and workflows the tests use."""

    server: Serve
    backend: str
    viewer_key: str
    user: tuple[str, str]
    approval_workflow: str
    steps_workflow: str
    signal_workflow: str

    @property
    def url(self) -> str:
        return self.server.url

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.server.headers, timeout=30)

    def start(self, workflow_id: str, payload: dict[str, Any]) -> str:
        with self.api() as c:
            r = c.post(f"/v1/workflows/{workflow_id}/runs", json={"input": payload})
            assert r.status_code == 201, r.text
            run_id: str = r.json()["runId"]
            return run_id

    def wait_status(self, run_id: str, *statuses: str) -> dict[str, Any]:
        with self.api() as c:
            for _ in range(300):
                run: dict[str, Any] = c.get(f"/v1/runs/{run_id}").json()
                if run["status"] in statuses:
                    return run
                time.sleep(0.1)
        raise AssertionError(f"run {run_id} never reached {statuses}: {run['status']}")


def _setup(server: Serve, backend: str) -> Site:
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=30) as c:
        viewer = c.post("/v1/auth/tokens", json={"name": "ui-viewer", "role": "viewer"})
        assert viewer.status_code == 201, viewer.text
        password = f"pw-{uuid.uuid4().hex}"
        user = c.post(
            "/v1/auth/users", json={"username": "ed", "password": password, "role": "editor"}
        )
        assert user.status_code == 201, user.text
        ids = []
        for text in ((EXAMPLES / "approval_gate.yaml").read_text(), STEPS, SIGNAL):
            r = c.post("/v1/workflows", content=text, headers={"Content-Type": "application/yaml"})
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])
    return Site(server, backend, viewer.json()["secret"], ("ed", password), *ids)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    require_browser()
    base = tmp_path_factory.mktemp(f"ui-{request.param}")
    schema = None
    if request.param == "postgres":
        require_postgres()
        schema = f"ui_{uuid.uuid4().hex[:12]}"
        database_url, args = POSTGRES_URL, ("--database-schema", schema)
    else:
        database_url, args = f"sqlite:///{base / 'fp.db'}", ()
    try:
        # A master key, so that credentials can be stored (a fresh one per server).
        secret = {"FLOWPLANE_SECRET_KEY": base64.b64encode(os.urandom(32)).decode()}
        with serving(base, database_url, *args, "--workers", "1", env=secret) as server:
            yield _setup(server, request.param)
    finally:
        if schema:
            drop_schema(schema)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    yield from launched()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def console(message: Any) -> None:
        # Refused requests (a wrong key's 401, a 400 the page shows) are expected; script
        # errors and Content-Security-Policy refusals are not.
        if message.type == "error" and "Failed to load resource" not in message.text:
            errors.append(message.text)

    page.on("console", console)
    yield page
    context.close()
    assert not errors, errors


def shots(site: Site) -> bool:
    """Screenshots come from the SQLite run only (one set)."""
    return site.backend == "sqlite"


def sign_in_with_key(page: Any, site: Site, key: str) -> None:
    page.goto(f"{site.url}/")
    page.get_by_label("API key", exact=True).fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Runs").wait_for()


def expect() -> Any:
    from playwright.sync_api import expect as playwright_expect

    playwright_expect.set_options(timeout=TIMEOUT_MS)
    return playwright_expect


def test_sign_in_with_a_password_or_a_key(page: Any, site: Site) -> None:
    check = expect()
    page.goto(f"{site.url}/")
    check(page.get_by_role("heading", name="Sign in to Flowplane")).to_be_visible()
    if shots(site):
        screenshot(page, "sign-in")
    page.get_by_label("API key", exact=True).fill("fp_wrong_key")
    page.get_by_role("button", name="Sign in").click()
    check(page.get_by_role("alert")).to_contain_text("invalid")

    page.get_by_label("a username and password").check()
    page.get_by_label("Username", exact=True).fill(site.user[0])
    page.get_by_label("Password", exact=True).fill(site.user[1])
    page.get_by_role("button", name="Sign in").click()
    check(page.get_by_test_id("role")).to_have_text("editor")
    nav = page.get_by_role("navigation", name="Main")
    check(nav.get_by_role("link", name="Schedules")).to_be_visible()
    check(nav.get_by_role("link", name="Credentials")).to_have_count(0)

    page.get_by_role("button", name="Sign out").click()
    sign_in_with_key(page, site, site.server.key)
    check(page.get_by_test_id("role")).to_have_text("admin")
    check(nav.get_by_role("link", name="Audit")).to_be_visible()


def test_run_graph_changes_colour_live(page: Any, site: Site) -> None:
    check = expect()
    service = f"svc-{uuid.uuid4().hex[:6]}"
    run_id = site.start(site.approval_workflow, {"service": service, "version": "1.0"})
    sign_in_with_key(page, site, site.server.key)
    if shots(site):
        site.start(site.steps_workflow, {"who": "docs"})
        check(page.locator("table a").first).to_be_visible()
        screenshot(page, "runs")
    page.goto(f"{site.url}/#/runs/{run_id}")
    approve = page.locator('[data-node="approve"]')
    check(approve).to_have_attribute("data-state", "waiting-approval")
    check(approve).to_contain_text("waiting-approval")
    check(page.get_by_test_id("stream-state")).to_have_text("live")
    before = approve.locator("rect").evaluate("r => getComputedStyle(r).fill")
    page.evaluate("window.__sameDocument = true")
    if shots(site):
        approve.click()
        check(page.get_by_role("heading", name="Node approve")).to_be_visible()
        screenshot(page, "run")
        page.get_by_role("button", name="Close node detail").click()

    # Decided elsewhere (the API, as another client would): the open page follows.
    with site.api() as c:
        r = c.post(f"/v1/runs/{run_id}/nodes/approve/approve", json={"note": "from the test"})
        assert r.status_code == 200, r.text
    check(approve).to_have_attribute("data-state", "finished")
    check(approve).to_contain_text("finished")
    check(page.locator('[data-node="deploy"]')).to_have_attribute("data-state", "finished")
    check(page.locator('[data-node="record_denial"]')).to_have_attribute("data-state", "skipped")
    check(page.get_by_test_id("run-status")).to_have_text("finished")
    after = approve.locator("rect").evaluate("r => getComputedStyle(r).fill")
    assert before != after, "the node's colour did not change with its state"
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    if shots(site):
        page.get_by_role("tab", name="Timeline").click()
        check(page.locator("svg.timeline")).to_be_visible()
        screenshot(page, "timeline")


def _first_events(site: Site, run_id: str, count: int) -> str:
    """The first ``count`` messages of the run's SSE stream, as the server wrote them."""
    lines: list[str] = []
    seen = 0
    with (
        site.api() as c,
        c.stream("GET", f"/v1/runs/{run_id}/events") as stream,
    ):
        for line in stream.iter_lines():
            lines.append(line)
            if line.startswith("data: "):
                seen += 1
            if seen == count and line == "":
                break
    return "\n".join(lines) + "\n"


def test_the_live_graph_resumes_after_a_dropped_stream(page: Any, site: Site) -> None:
    check = expect()
    service = f"drop-{uuid.uuid4().hex[:6]}"
    run_id = site.start(site.approval_workflow, {"service": service, "version": "4.0"})
    site.wait_status(run_id, "waiting-approval")
    partial = _first_events(site, run_id, 3)
    third = re.findall(r"^id: (\d+)$", partial, re.MULTILINE)[-1]  # seq is global, not per run
    asked: list[str | None] = []

    def events(route: Any, request: Any) -> None:
        asked.append(request.headers.get("last-event-id"))
        if len(asked) == 1:  # three events, then the connection drops (no terminal event)
            route.fulfill(status=200, headers={"Content-Type": "text/event-stream"}, body=partial)
        else:
            route.continue_()

    page.route(re.compile(r"/v1/runs/[^/]+/events$"), events)
    sign_in_with_key(page, site, site.server.key)
    page.goto(f"{site.url}/#/runs/{run_id}")
    for _ in range(TIMEOUT_MS // 100):  # the page waits the stream's `retry:` before it asks
        if len(asked) >= 2:
            break
        page.wait_for_timeout(100)
    assert asked[:2] == [None, third], asked  # it reconnected from after the 3rd event
    check(page.get_by_test_id("stream-state")).to_have_text("live")
    approve = page.locator('[data-node="approve"]')
    check(approve).to_have_attribute("data-state", "waiting-approval")
    with site.api() as c:
        r = c.post(f"/v1/runs/{run_id}/nodes/approve/approve", json={})
        assert r.status_code == 200, r.text
    check(approve).to_have_attribute("data-state", "finished")
    check(page.get_by_test_id("run-status")).to_have_text("finished")


def test_approve_from_the_inbox(page: Any, site: Site) -> None:
    check = expect()
    service = f"inbox-{uuid.uuid4().hex[:6]}"
    run_id = site.start(site.approval_workflow, {"service": service, "version": "2.0"})
    site.wait_status(run_id, "waiting-approval")
    sign_in_with_key(page, site, site.server.key)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Approvals").click()
    decision = page.get_by_role("group", name=f"Decide: Deploy {service} 2.0 to production?")
    check(decision).to_be_visible()
    decision.get_by_label("Note").fill("ship it")
    if shots(site):
        screenshot(page, "approvals")
    decision.get_by_role("button", name="Approve").click()
    check(decision).to_have_count(0)

    page.goto(f"{site.url}/#/runs/{run_id}")
    check(page.get_by_test_id("run-status")).to_have_text("finished")
    check(page.locator('[data-node="deploy"]')).to_have_attribute("data-state", "finished")
    with site.api() as c:
        approvals = c.get("/v1/approvals", params={"status": "approved"}).json()["approvals"]
    mine = [a for a in approvals if a["runId"] == run_id]
    assert mine and mine[0]["note"] == "ship it"


def test_send_a_signal_from_the_inbox_page(page: Any, site: Site) -> None:
    check = expect()
    run_id = site.start(site.signal_workflow, {})
    site.wait_status(run_id, "waiting-event")
    sign_in_with_key(page, site, site.server.key)
    page.goto(f"{site.url}/#/approvals")
    form = page.get_by_role("form", name="Send a signal")
    form.get_by_label("Run id").fill(run_id)
    form.get_by_label("Signal name").fill("go")
    form.get_by_label("Payload (JSON)").fill('{"colour": "green"}')
    form.get_by_role("button", name="Send signal").click()
    check(form.get_by_role("status")).to_contain_text("Delivered to node wait")
    page.goto(f"{site.url}/#/runs/{run_id}")
    check(page.get_by_test_id("run-status")).to_have_text("finished")
    page.locator('[data-node="after"]').click()
    check(page.locator(".node-detail pre.json").first).to_contain_text('"green"')


def test_frames_scrubber_rewind_and_diff(page: Any, site: Site) -> None:
    check = expect()
    first = site.start(site.steps_workflow, {"who": "one"})
    second = site.start(site.steps_workflow, {"who": "two"})
    site.wait_status(first, "finished")
    site.wait_status(second, "finished")
    sign_in_with_key(page, site, site.server.key)
    page.goto(f"{site.url}/#/runs/{first}")
    third = page.locator('[data-node="third"]')
    check(third).to_have_attribute("data-state", "finished")

    # The scrubber shows the graph as it was: at frame 1 only the first node had started.
    page.get_by_role("tab", name="Frames (rewind)").click()
    slider = page.get_by_role("slider", name="Frame")
    check(page.get_by_test_id("frame-label")).to_contain_text(re.compile(r"Frame (\d+) of \1"))
    slider.focus()
    page.keyboard.press("Home")  # the scrubber works from the keyboard
    check(page.get_by_test_id("frame-label")).to_contain_text("Frame 1 of")
    check(third).to_have_attribute("data-state", "pending")
    check(page.locator('[data-node="first"]')).not_to_have_attribute("data-state", "finished")
    if shots(site):
        screenshot(page, "frames")
    page.get_by_role("button", name="Rewind the run to frame 1").click()
    check(page.get_by_role("status")).to_contain_text("Rewound to frame 1")
    site.wait_status(first, "finished")
    with site.api() as c:
        audit = c.get("/v1/audit", params={"action": "run.rewind", "targetId": first}).json()
    assert [e["details"] for e in audit["items"]] == [{"frameNo": 1}]

    # Diff against the second run: the outputs of every node changed with the input.
    page.get_by_role("tab", name="Diff").click()
    page.get_by_label("Other run id").fill(second)
    page.get_by_role("button", name="Compare").click()
    table = page.get_by_role("table", name="Node differences")
    check(table).to_contain_text("first")
    check(page.get_by_text("Input changed")).to_be_visible()
    check(table.get_by_text("changed", exact=True)).to_have_count(3)


def _line_of(text: str, needle: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(f"{needle!r} not in the document")


def test_editor_shows_a_validation_error_at_its_line_and_saves_with_if_match(
    page: Any, site: Site
) -> None:
    check = expect()
    sign_in_with_key(page, site, site.server.key)
    page.goto(f"{site.url}/#/workflows/{site.steps_workflow}")
    editor = page.get_by_label("Workflow document (YAML)")
    check(editor).to_have_value(re.compile(r"name: ui-steps"))
    check(page.locator(".problems")).to_contain_text("Valid.")
    check(page.locator('svg.graph [data-node="second"]')).to_be_visible()
    text = editor.input_value()

    # A type no connector has, on the second node: the error shows at that line.
    lines = text.splitlines()
    second = _line_of(text, "id: second")
    type_line = next(i for i in range(second, len(lines)) if "type: util.set" in lines[i]) + 1
    lines[type_line - 1] = lines[type_line - 1].replace("util.set", "no.such")
    editor.fill("\n".join(lines) + "\n")
    marker = page.locator(f'.line-no.has-error[data-line="{type_line}"]')
    check(marker).to_be_visible()
    problem = page.locator(f'li.problem[data-line="{type_line}"]')
    check(problem).to_contain_text(f"line {type_line}")
    check(problem).to_contain_text("no.such")
    check(page.get_by_role("button", name="Save")).to_be_disabled()
    if shots(site):
        screenshot(page, "editor-error")

    # Fixed, and saved over the version it was loaded at.
    editor.fill(text.replace("Three steps, for the browser tests.", "Three steps, edited."))
    check(page.locator(".problems")).to_contain_text("Valid.")
    with site.api() as c:
        version = c.get(f"/v1/workflows/{site.steps_workflow}").json()["version"]
    page.get_by_role("button", name="Save").click()
    check(page.get_by_role("status")).to_contain_text(f"Saved as version {version + 1}")
    with site.api() as c:
        saved = c.get(f"/v1/workflows/{site.steps_workflow}").json()
    assert saved["version"] == version + 1
    assert saved["description"] == "Three steps, edited."

    # Someone else saves meanwhile: the next save is refused (412) and shows both versions.
    with site.api() as c:
        other = text.replace("Three steps, for the browser tests.", "Changed elsewhere.")
        r = c.put(
            f"/v1/workflows/{site.steps_workflow}",
            content=other,
            headers={"Content-Type": "application/yaml", "If-Match": f'"{version + 1}"'},
        )
        assert r.status_code == 200, r.text
    editor.fill(text.replace("Three steps, for the browser tests.", "My second edit."))
    check(page.locator(".problems")).to_contain_text("Valid.")
    page.get_by_role("button", name="Save").click()
    conflict = page.locator(".conflict")
    check(conflict).to_contain_text(f"version {version + 2}")
    check(conflict).to_contain_text("Changed elsewhere.")
    check(conflict).to_contain_text("My second edit.")


def test_revisions_diff_and_restore(page: Any, site: Site) -> None:
    check = expect()
    name = f"ui-rev-{uuid.uuid4().hex[:6]}"
    text = STEPS.replace("name: ui-steps", f"name: {name}")
    with site.api() as c:
        created = c.post("/v1/workflows", content=text, headers={"Content-Type": "text/yaml"})
        workflow_id = created.json()["id"]
        edited = text.replace("Three steps, for the browser tests.", "Second version.")
        r = c.put(
            f"/v1/workflows/{workflow_id}",
            content=edited,
            headers={"Content-Type": "application/yaml", "If-Match": '"1"'},
        )
        assert r.status_code == 200, r.text
    sign_in_with_key(page, site, site.server.key)
    page.goto(f"{site.url}/#/workflows/{workflow_id}")
    check(page.get_by_label("Workflow document (YAML)")).to_have_value(re.compile("Second"))
    page.get_by_role("tab", name="Revisions").click()
    revisions = page.get_by_role("table", name="Revisions")
    first = revisions.get_by_role("row").filter(has=page.get_by_role("cell", name="1", exact=True))
    first.get_by_role("button", name="Diff with current").click()
    diff = page.locator("pre.diff")
    check(diff.locator(".del")).to_contain_text("Three steps, for the browser tests.")
    check(diff.locator(".add")).to_contain_text("Second version.")
    first.get_by_role("button", name="Restore").click()
    check(page.get_by_label("Workflow document (YAML)")).to_have_value(re.compile("Three steps"))
    with site.api() as c:
        restored = c.get(f"/v1/workflows/{workflow_id}").json()
    assert (
        restored["version"] == 3
        and restored["description"] == "Three steps, for the browser tests."
    )


def test_reference_pages(page: Any, site: Site) -> None:
    check = expect()
    with site.api() as c:
        assert c.put("/v1/kv/default/ui-key", json={"value": {"n": 1}}).status_code in (200, 201)
        schedule = {"name": "ui-nightly", "cron": "0 3 * * *", "workflowId": site.steps_workflow}
        assert c.post("/v1/schedules", json=schedule).status_code == 201
    sign_in_with_key(page, site, site.server.key)
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Catalogue").click()
    check(page.get_by_role("table", name="Connectors")).to_contain_text("util.set")
    page.get_by_role("button", name="wait.signal").click()
    check(page.get_by_role("region", name="Connector wait.signal")).to_contain_text("inputSchema")
    nav.get_by_role("link", name="Schedules").click()
    check(page.get_by_role("table", name="Schedules")).to_contain_text("ui-nightly")
    nav.get_by_role("link", name="Triggers").click()
    check(page.get_by_role("heading", name="Webhook triggers")).to_be_visible()
    nav.get_by_role("link", name="KV").click()
    check(page.get_by_role("table", name="Keys")).to_contain_text("ui-key")

    # Credentials are write-only: stored from the page, listed, never shown.
    nav.get_by_role("link", name="Credentials").click()
    form = page.get_by_role("form", name="New credential")
    form.get_by_label("Name", exact=True).fill("ui_token")
    form.get_by_label("Value (write-only)").fill("s3cret-value-from-the-ui")
    form.get_by_role("button", name="Store credential").click()
    check(page.get_by_role("table", name="Credentials")).to_contain_text("ui_token")
    check(form.get_by_label("Value (write-only)")).to_have_value("")
    assert "s3cret-value-from-the-ui" not in page.content()
    nav.get_by_role("link", name="Audit").click()
    check(page.get_by_role("table", name="Audit entries")).to_contain_text("credential.create")


def test_fork_from_a_node(page: Any, site: Site) -> None:
    check = expect()
    run_id = site.start(site.steps_workflow, {"who": "fork"})
    site.wait_status(run_id, "finished")
    sign_in_with_key(page, site, site.server.key)
    page.goto(f"{site.url}/#/runs/{run_id}")
    node = page.locator('[data-node="second"]')
    check(node).to_have_attribute("data-state", "finished")
    node.focus()
    page.keyboard.press("Enter")  # the graph works from the keyboard
    check(page.get_by_role("heading", name="Node second")).to_be_visible()
    page.get_by_role("button", name="Fork from this node").click()
    check(page).not_to_have_url(re.compile(f"{run_id}$"))
    forked = page.url.rsplit("/", 1)[-1]
    check(page.get_by_role("link", name=run_id)).to_be_visible()
    check(page.get_by_test_id("run-status")).to_have_text("finished")
    with site.api() as c:
        detail = c.get(f"/v1/runs/{forked}").json()
    assert detail["forkedFrom"] == run_id and detail["status"] == "finished"


def test_a_viewer_sees_no_mutating_action(page: Any, site: Site) -> None:
    check = expect()
    service = f"view-{uuid.uuid4().hex[:6]}"
    run_id = site.start(site.approval_workflow, {"service": service, "version": "3.0"})
    site.wait_status(run_id, "waiting-approval")
    sign_in_with_key(page, site, site.viewer_key)
    check(page.get_by_test_id("role")).to_have_text("viewer")
    nav = page.get_by_role("navigation", name="Main")
    for hidden in ("Schedules", "Triggers", "Credentials", "Audit"):
        check(nav.get_by_role("link", name=hidden)).to_have_count(0)

    page.goto(f"{site.url}/#/runs/{run_id}")
    approve = page.locator('[data-node="approve"]')
    check(approve).to_have_attribute("data-state", "waiting-approval")
    approve.click()
    check(page.get_by_role("heading", name="Node approve")).to_be_visible()
    for name in ("Cancel run", "Resume", "Retry as new run", "Approve", "Deny"):
        check(page.get_by_role("button", name=name, exact=True)).to_have_count(0)
    check(page.get_by_role("button", name="Fork from this node")).to_have_count(0)
    page.get_by_role("tab", name="Frames (rewind)").click()
    check(page.locator(".frames")).to_be_visible()
    check(page.get_by_role("button", name=re.compile("Rewind"))).to_have_count(0)

    page.goto(f"{site.url}/#/approvals")
    check(page.get_by_role("table", name="Waiting approvals")).to_contain_text(service)
    check(page.get_by_role("button", name="Approve", exact=True)).to_have_count(0)
    check(page.get_by_role("heading", name="Send a signal")).to_have_count(0)

    page.goto(f"{site.url}/#/workflows")
    check(page.get_by_role("table", name="Workflows")).to_contain_text("ui-steps")
    check(page.get_by_role("link", name="New workflow")).to_have_count(0)
    page.goto(f"{site.url}/#/workflows/{site.steps_workflow}")
    editor = page.get_by_label("Workflow document (YAML)")
    check(editor).to_have_value(re.compile(r"name: ui-steps"))
    check(editor).to_have_attribute("readonly", "")
    check(page.get_by_role("button", name="Save")).to_have_count(0)
    page.get_by_role("tab", name="Run").click()
    check(page.get_by_role("button", name="Start run")).to_have_count(0)


def test_run_form_follows_the_inputs_schema(page: Any, site: Site) -> None:
    check = expect()
    sign_in_with_key(page, site, site.server.key)
    page.goto(f"{site.url}/#/workflows/{site.approval_workflow}")
    page.get_by_role("tab", name="Run").click()
    form = page.get_by_role("form", name="Run input")
    check(form.get_by_label("environment")).to_have_value("production")
    form.get_by_label("service (required)").fill("formed")
    form.get_by_label("version (required)").fill("9.9")
    if shots(site):
        screenshot(page, "run-form")
    form.get_by_role("button", name="Start run").click()
    check(page.locator('[data-node="approve"]')).to_have_attribute("data-state", "waiting-approval")
    run_id = page.url.rsplit("/", 1)[-1]
    with site.api() as c:
        detail = c.get(f"/v1/runs/{run_id}").json()
    assert detail["input"] == {"service": "formed", "version": "9.9", "environment": "production"}


def test_swagger_ui_opens_and_takes_an_api_key(page: Any, site: Site) -> None:
    check = expect()
    page.goto(f"{site.url}/docs")  # no header: a browser cannot send one
    check(page.locator(".swagger-ui .info .title")).to_contain_text("Flowplane")
    page.get_by_role("button", name="Authorize").first.click()
    box = page.locator(".modal-ux .auth-container").filter(has_text="X-API-Key")
    box.locator("input").fill(site.viewer_key)
    box.locator("button.authorize").click()
    check(box).to_contain_text("Logout")
    page.locator(".modal-ux button.btn-done").first.click()
    # Tags start collapsed (docExpansion "none": 130 operations at once stall Swagger UI).
    page.locator('.opblock-tag[data-tag="auth"]').click()
    page.locator('.opblock-summary-path[data-path="/v1/auth/me"]').click()
    page.get_by_role("button", name="Try it out").click()
    page.get_by_role("button", name="Execute").click()
    status = page.locator(".live-responses-table tbody .response-col_status").first
    check(status).to_contain_text("200")
    check(page.locator(".live-responses-table")).to_contain_text('"role": "viewer"')


def test_dark_theme_follows_the_system(browser: Any, site: Site) -> None:
    check = expect()
    context = browser.new_context(viewport={"width": 1280, "height": 860}, color_scheme="dark")
    try:
        page = context.new_page()
        sign_in_with_key(page, site, site.server.key)
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(17, 20, 24)", background
        page.goto(f"{site.url}/#/workflows/{site.steps_workflow}")
        check(page.locator(".problems")).to_contain_text("Valid.")
        if shots(site):
            screenshot(page, "editor-dark")
    finally:
        context.close()
