"""Hostile input at the open doors: webhook timestamps, webhook floods, login lock-outs,
and settings or templates that used to be taken silently. Through the HTTP API (and the CLI
for settings), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import base64
import http.server
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_support import BASE_URL, ApiHarness, started
from http_peer import http_server

from flowplane.security.webhooks import sign
from flowplane.services.auth import LOCAL
from flowplane.services.caller import Caller

STANDARD_SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
PASSWORD = "correct horse battery"
DOC = {"name": "hooked", "nodes": [{"id": "log", "type": "util.log", "params": {"message": "x"}}]}


@asynccontextmanager
async def client_at(
    api: ApiHarness, address: str, key: str | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose requests come from ``address`` (the ASGI peer), anonymous by default."""
    transport = httpx.ASGITransport(app=api.app, client=(address, 40000))
    headers = api.auth(key) if key else {}
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers=headers) as c:
        yield c


def assert_problem(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == code and r.json()["status"] == status


def assert_429(r: httpx.Response) -> None:
    assert_problem(r, 429, "rate_limited")
    assert int(r.headers["retry-after"]) >= 1 and r.json()["retryAfterMs"] > 0


async def webhook_trigger(api: ApiHarness, key: str, **fields: Any) -> None:
    wf = await api.client.post("/v1/workflows", json={**DOC, "name": key})
    assert wf.status_code == 201, wf.text
    r = await api.client.post(
        "/v1/triggers", json={"workflowId": wf.json()["id"], "key": key, **fields}
    )
    assert r.status_code == 201, r.text


async def run_count(api: ApiHarness) -> int:
    return len((await api.services.runs.list_runs(Caller.system(), limit=500)).items)


# --- item 7: a signed timestamp of 400 nines -------------------------------------------------


async def test_absurd_signed_timestamps_are_401(db: tuple[str, str], tmp_path: Path) -> None:
    async with started(db, tmp_path / "root") as api:
        await webhook_trigger(api, "std", scheme="standard", secret=STANDARD_SECRET)
        await webhook_trigger(api, "stripe", scheme="stripe", secret="whsec_stripe")
        body = b'{"x": 1}'
        now = int(time.time())
        standard = sign("standard", STANDARD_SECRET, body, timestamp=now, delivery_id="d1")
        # 400 nines overflowed a float comparison; int() also reads Arabic-Indic digits.
        stamps = [b"9" * 400, b"-" + b"9" * 400, b"1" * 5000, "\u0661\u0662\u0663".encode(), b"1e9"]
        async with client_at(api, "192.0.2.1") as anonymous:
            for stamp in stamps:
                r = await anonymous.post(
                    "/v1/webhooks/std",
                    content=body,
                    headers={**standard, "webhook-timestamp": stamp},
                )
                assert_problem(r, 401, "signature_invalid")
                r = await anonymous.post(
                    "/v1/webhooks/stripe",
                    content=body,
                    headers={"Stripe-Signature": b"t=" + stamp + b",v1=" + b"0" * 64},
                )
                assert_problem(r, 401, "signature_invalid")
            # The same headers with a sane timestamp still work.
            assert (
                await anonymous.post("/v1/webhooks/std", content=body, headers=standard)
            ).status_code == 202
        assert await run_count(api) == 1


# --- item 9: webhook floods ------------------------------------------------------------------


async def test_unsigned_trigger_deliveries_are_rate_limited(
    db: tuple[str, str], tmp_path: Path
) -> None:
    async with started(
        db, tmp_path / "root", webhook_rate_per_minute=5, webhook_client_rate_per_minute=1000
    ) as api:
        await webhook_trigger(api, "open")
        await webhook_trigger(api, "other")
        statuses: list[int] = []
        for i in range(40):  # from many addresses: the trigger's own bucket stops them
            async with client_at(api, f"198.51.100.{i + 1}") as anonymous:
                r = await anonymous.post("/v1/webhooks/open", json={"i": i})
            statuses.append(r.status_code)
            if r.status_code == 429:
                assert_429(r)
        assert statuses.count(202) == 5 and statuses.count(429) == 35
        assert await run_count(api) == 5
        # Another trigger has its own bucket.
        async with client_at(api, "198.51.100.1") as anonymous:
            assert (await anonymous.post("/v1/webhooks/other", json={})).status_code == 202


async def test_forged_signatures_do_not_use_up_a_signed_trigger(
    db: tuple[str, str], tmp_path: Path
) -> None:
    async with started(
        db, tmp_path / "root", webhook_rate_per_minute=3, webhook_client_rate_per_minute=1000
    ) as api:
        await webhook_trigger(api, "signed", scheme="standard", secret=STANDARD_SECRET)
        body = b'{"x": 1}'
        async with client_at(api, "203.0.113.9") as attacker:
            for i in range(20):
                forged = sign("standard", "whsec_wrong", body, delivery_id=f"f{i}")
                r = await attacker.post("/v1/webhooks/signed", content=body, headers=forged)
                assert_problem(r, 401, "signature_invalid")
        async with client_at(api, "192.0.2.50") as sender:
            for i in range(3):
                good = sign("standard", STANDARD_SECRET, body, delivery_id=f"g{i}")
                r = await sender.post("/v1/webhooks/signed", content=body, headers=good)
                assert r.status_code == 202, r.text
            good = sign("standard", STANDARD_SECRET, body, delivery_id="g-over")
            assert_429(await sender.post("/v1/webhooks/signed", content=body, headers=good))


async def test_webhook_deliveries_are_limited_per_client_address(
    db: tuple[str, str], tmp_path: Path
) -> None:
    async with started(
        db, tmp_path / "root", webhook_rate_per_minute=1000, webhook_client_rate_per_minute=4
    ) as api:
        await webhook_trigger(api, "open")
        async with client_at(api, "203.0.113.7") as flooder:
            codes = []
            for i in range(10):
                # A forged X-Forwarded-For from an untrusted peer changes nothing.
                headers = {"X-Forwarded-For": f"10.9.8.{i}", "Forwarded": f"for=10.9.7.{i}"}
                codes.append(
                    (await flooder.post("/v1/webhooks/open", json={}, headers=headers)).status_code
                )
            # Unknown keys cost the same: scanning for keys is throttled too.
            r = await flooder.post("/v1/webhooks/no-such-key", json={})
            assert_429(r)
        assert codes == [202] * 4 + [429] * 6
        async with client_at(api, "192.0.2.8") as someone_else:
            assert (await someone_else.post("/v1/webhooks/open", json={})).status_code == 202


async def test_forwarded_addresses_are_believed_only_from_trusted_proxies(
    db: tuple[str, str], tmp_path: Path
) -> None:
    async with started(
        db,
        tmp_path / "root",
        webhook_rate_per_minute=1000,
        webhook_client_rate_per_minute=2,
        trusted_proxies='["10.0.0.0/8"]',
    ) as api:
        await webhook_trigger(api, "open")
        async with client_at(api, "10.1.1.1") as proxy:

            async def via_proxy(header: str, value: str) -> int:
                r = await proxy.post("/v1/webhooks/open", json={}, headers={header: value})
                return r.status_code

            # Each client behind the proxy has its own bucket; the client cannot choose its
            # address by prepending one (the proxy's appended entry, rightmost, counts).
            assert [await via_proxy("X-Forwarded-For", "198.51.100.1") for _ in range(3)] == [
                202,
                202,
                429,
            ]
            assert await via_proxy("X-Forwarded-For", "198.51.100.2") == 202
            assert await via_proxy("X-Forwarded-For", "1.2.3.4, 198.51.100.1") == 429
            assert await via_proxy("X-Forwarded-For", "198.51.100.1, 10.2.2.2") == 429
            assert await via_proxy("Forwarded", 'for="[2001:db8::1]:4711";proto=https') == 202
            assert await via_proxy("Forwarded", "for=198.51.100.1") == 429


# --- item 10: no lock-out of password login --------------------------------------------------


async def test_an_attacker_cannot_lock_a_user_out(db: tuple[str, str], tmp_path: Path) -> None:
    async with started(db, tmp_path / "root") as api:
        await api.services.auth.create_user(
            caller=LOCAL, username="ada", password=PASSWORD, role="viewer"
        )
        wrong = {"username": "ada", "password": "not the password"}
        right = {"username": "ada", "password": PASSWORD}
        async with client_at(api, "203.0.113.66") as attacker:
            codes = []
            for i in range(30):
                # Rotating X-Forwarded-For from an untrusted peer does not reset its bucket.
                r = await attacker.post(
                    "/v1/auth/login", json=wrong, headers={"X-Forwarded-For": f"10.0.0.{i}"}
                )
                codes.append(r.status_code)
            assert set(codes) == {401, 429} and codes.index(429) <= 10
            assert_429(r)
            # The attacker itself stays throttled, even with the right password.
            assert_429(await attacker.post("/v1/auth/login", json=right))
            # Spraying other accounts from the same address is throttled too.
            other = await attacker.post("/v1/auth/login", json={**wrong, "username": "bob"})
            assert other.status_code in (401, 429)
        # The user, from their own address, logs in at once.
        async with client_at(api, "192.0.2.10") as user:
            r = await user.post("/v1/auth/login", json=right)
            assert r.status_code == 200, r.text
            # A few typos of their own do not lock them out either.
            for _ in range(3):
                assert (await user.post("/v1/auth/login", json=wrong)).status_code == 401
            assert (await user.post("/v1/auth/login", json=right)).status_code == 200
            # Successes are never counted: many logins in a row all work.
            for _ in range(25):
                assert (await user.post("/v1/auth/login", json=right)).status_code == 200


async def test_concurrent_guesses_cannot_slip_past_the_limit(
    db: tuple[str, str], tmp_path: Path
) -> None:
    async with started(db, tmp_path / "root") as api:
        await api.services.auth.create_user(
            caller=LOCAL, username="ada", password=PASSWORD, role="viewer"
        )
        async with client_at(api, "203.0.113.67") as attacker:
            answers = await asyncio.gather(
                *(
                    attacker.post(
                        "/v1/auth/login", json={"username": "ada", "password": f"guess-{i}"}
                    )
                    for i in range(40)
                )
            )
        codes = [a.status_code for a in answers]
        assert codes.count(401) <= 10 and codes.count(429) >= 30


# --- item 14: list settings and non-finite template results ----------------------------------


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"hello": "world"}')

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def local_server() -> Iterator[int]:
    with http_server(_Hello) as port:
        yield port


async def wait_run(api: ApiHarness, run_id: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        run = (await api.client.get(f"/v1/runs/{run_id}")).json()
        if run["status"] in ("finished", "failed", "cancelled", "timed_out"):
            return dict(run)
        assert time.monotonic() < deadline, run
        await asyncio.sleep(0.1)


async def start_run(api: ApiHarness, doc: dict[str, Any]) -> dict[str, Any]:
    wf = await api.client.post("/v1/workflows", json=doc)
    assert wf.status_code == 201, wf.text
    r = await api.client.post("/v1/runs", json={"workflowId": wf.json()["id"], "input": {}})
    assert r.status_code == 200, r.text
    return await wait_run(api, r.json()["runId"])


async def test_allow_hosts_in_json_form_is_honoured(
    db: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with local_server() as port:
        monkeypatch.setenv("FLOWPLANE_ALLOW_HOSTS", f'["127.0.0.1:{port}"]')
        async with started(db, tmp_path / "root", workers=1) as api:
            assert api.settings.allow_hosts == [f"127.0.0.1:{port}"]
            doc = {
                "name": "fetch",
                "nodes": [
                    {
                        "id": "get",
                        "type": "http.request",
                        "params": {"method": "GET", "url": f"http://127.0.0.1:{port}/"},
                    }
                ],
            }
            run = await start_run(api, doc)
            assert run["status"] == "finished", run


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FLOWPLANE_ALLOW_HOSTS", '["127.0.0.1:18150"'),
        ("FLOWPLANE_ALLOW_HOSTS", "[127.0.0.1:18150]"),
        ("FLOWPLANE_ALLOW_HOSTS", "[1, 2]"),
        ("FLOWPLANE_ALLOW_HOSTS", '"127.0.0.1"'),
        ("FLOWPLANE_ALLOW_HOSTS", "exa mple.com"),
        ("FLOWPLANE_TRUSTED_PROXIES", "proxy.internal"),
        ("FLOWPLANE_RATE_LIMIT_PER_MINUTE", '{"viewr": 10}'),
    ],
)
def test_junk_list_settings_are_refused_at_start(name: str, value: str, tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": ":".join(sys.path), name: value}
    done = subprocess.run(
        [sys.executable, "-m", "flowplane", "serve", "--port", "0"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert (
        "invalid settings" in done.stderr and name.removeprefix("FLOWPLANE_").lower() in done.stderr
    )


async def test_non_finite_template_results_fail_the_node(
    db: tuple[str, str], tmp_path: Path
) -> None:
    async with started(db, tmp_path / "root", workers=1) as api:
        for i, expression in enumerate(("{{ 1e308 * 10 }}", "{{ [1e308 * 10 - 1e308 * 10] }}")):
            doc = {
                "name": f"inf-{i}",
                "nodes": [{"id": "v", "type": "util.log", "params": {"message": expression}}],
            }
            run = await start_run(api, doc)
            assert run["status"] == "failed", run
            detail = (await api.client.get(f"/v1/runs/{run['runId']}")).json()
            error = str(detail)
            assert "not a finite number" in error, error
