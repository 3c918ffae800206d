"""The outbound network policy: classification, allow-list, DNS pinning, redirects, TLS."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from flowplane.errors import ConnectorError, NetworkPolicyViolation
from flowplane.security import ssrf
from flowplane.security.ssrf import (
    AllowEntry,
    NetworkPolicy,
    blocked_reason,
    parse_ipv4_numeric,
    policy_client,
    policy_from_settings,
)
from flowplane.settings import Settings

HOSTILE_URLS = [
    "http://169.254.169.254/latest/meta-data/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::127.0.0.1]/",
    "http://2130706433/",
    "http://0x7f.1/",
    "http://017700000001/",
    "http://127.1/",
    "http://0/",
    "http://0.0.0.0/",
    "http://[::]/",
    "http://[::1]/",
    "http://localhost/",
    "http://LOCALHOST./",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://100.100.100.200/",
    "http://[fd00:ec2::254]/",
    "http://[fc00::1]/",
    "http://[fe80::1]/",
    "http://224.0.0.1/",
    "http://[ff02::1]/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://[2002:a9fe:a9fe::]/",  # 6to4 wrapping 169.254.169.254
    "http://[64:ff9b::a00:1]/",  # NAT64 wrapping 10.0.0.1
    "http://08.0.0.1/",  # not a valid IPv4 form: refused, not resolved
    "file:///etc/passwd",
    "gopher://x",
    "ftp://example.com/",
    "dict://127.0.0.1:11211/",
]


async def _no_dns(host: str, port: int) -> list[str]:
    raise AssertionError(f"DNS should not be used for {host}")


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Replace the resolver the policy uses with a table (no internet in tests)."""
    table: dict[str, list[str]] = {"localhost": ["127.0.0.1", "::1"]}

    async def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"unknown host {host}")
        return table[host]

    monkeypatch.setattr(ssrf, "resolve_host", resolve)
    return table


# --- classification -------------------------------------------------------------------------


@pytest.mark.parametrize("url", HOSTILE_URLS)
async def test_hostile_urls_are_refused(url: str, fake_dns: dict[str, list[str]]) -> None:
    with pytest.raises(NetworkPolicyViolation) as info:
        await NetworkPolicy().check_url(url)
    assert info.value.retryable is False
    assert info.value.code == "network_policy_violation"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("192.168.257", "192.168.1.1"),
        ("0", "0.0.0.0"),
        ("8.8.8.8", "8.8.8.8"),
        ("08.0.0.1", None),
        ("1.2.3.4.5", None),
        ("4294967296", None),
        ("256.1.1.1", None),
        ("1..2", None),
        ("example.com", None),
        (" 1", None),
        ("1_0", None),
    ],
)
def test_parse_ipv4_numeric_follows_inet_aton(host: str, expected: str | None) -> None:
    result = parse_ipv4_numeric(host)
    assert (str(result) if result is not None else None) == expected


def test_blocked_reason() -> None:
    def reason(text: str) -> str | None:
        return blocked_reason(ipaddress.ip_address(text))

    assert reason("8.8.8.8") is None
    assert reason("2606:4700::1111") is None
    assert reason("::ffff:8.8.8.8") is None
    assert reason("169.254.169.254") == "a cloud metadata address"
    assert reason("::ffff:169.254.169.254") == "a cloud metadata address"
    assert reason("127.0.0.1") == "a loopback address"
    assert reason("100.64.1.1") == "a shared (CGNAT) address"
    assert reason("fec0::1") is not None
    assert reason("2002:7f00:1::") is not None


async def test_public_addresses_pass(fake_dns: dict[str, list[str]]) -> None:
    fake_dns["api.example.com"] = ["93.184.216.34", "2606:2800:220:1::"]
    policy = NetworkPolicy()
    assert await policy.check_url("https://api.example.com/x?y=1") == [
        "93.184.216.34",
        "2606:2800:220:1::",
    ]
    assert await policy.check_url("http://8.8.8.8:8080/") == ["8.8.8.8"]
    # An IPv4-mapped answer is pinned as the IPv4 address it reaches.
    assert await policy.check_url("http://[::ffff:8.8.8.8]/") == ["8.8.8.8"]


async def test_name_resolving_to_loopback_is_refused(fake_dns: dict[str, list[str]]) -> None:
    fake_dns["innocent.example.com"] = ["127.0.0.1"]
    with pytest.raises(NetworkPolicyViolation, match="loopback"):
        await NetworkPolicy().check_url("http://innocent.example.com/")


async def test_every_resolved_address_must_be_allowed(fake_dns: dict[str, list[str]]) -> None:
    fake_dns["mixed.example.com"] = ["93.184.216.34", "10.0.0.7"]
    with pytest.raises(NetworkPolicyViolation, match=r"10\.0\.0\.7"):
        await NetworkPolicy().check_url("http://mixed.example.com/")


async def test_resolution_failure_is_retryable(fake_dns: dict[str, list[str]]) -> None:
    with pytest.raises(ConnectorError) as info:
        await NetworkPolicy().check_url("http://nowhere.invalid/")
    assert not isinstance(info.value, NetworkPolicyViolation)
    assert info.value.retryable is True


async def test_messages_do_not_leak_secrets(fake_dns: dict[str, list[str]]) -> None:
    with pytest.raises(NetworkPolicyViolation) as info:
        await NetworkPolicy().check_url("http://admin:hunter2@10.0.0.1:8080/p/s3cret?token=t0ken")
    message = str(info.value)
    for secret in ("hunter2", "admin", "s3cret", "t0ken"):
        assert secret not in message
    assert "http://10.0.0.1:8080" in message
    assert "FLOWPLANE_ALLOW_HOSTS" in message


# --- the allow-list -------------------------------------------------------------------------


async def test_allow_list_forms(fake_dns: dict[str, list[str]]) -> None:
    fake_dns.update(
        {
            "db.internal": ["10.1.2.3"],
            "svc.corp.example": ["192.168.0.9"],
            "other.example": ["192.168.0.10"],
            "corp.example.evil": ["192.168.0.11"],
        }
    )
    policy = NetworkPolicy(
        ["127.0.0.1", "10.0.0.0/8", "*.corp.example", "localhost", "[::1]:8080", "172.16.0.1:9000"]
    )
    assert await policy.check_url("http://127.0.0.1:5000/") == ["127.0.0.1"]
    assert await policy.check_url("http://2130706433/") == ["127.0.0.1"]
    assert await policy.check_url("http://db.internal/") == ["10.1.2.3"]
    assert await policy.check_url("http://10.200.0.1/") == ["10.200.0.1"]
    assert await policy.check_url("http://svc.corp.example/") == ["192.168.0.9"]
    assert await policy.check_url("http://localhost/") == ["127.0.0.1", "::1"]
    assert await policy.check_url("http://[::1]:8080/") == ["::1"]
    assert await policy.check_url("http://172.16.0.1:9000/") == ["172.16.0.1"]
    for refused in (
        "http://other.example/",
        "http://corp.example.evil/",
        "http://[::1]:8081/",
        "http://172.16.0.1:9001/",
        "http://192.168.0.1/",
        "file:///etc/passwd",
    ):
        with pytest.raises(NetworkPolicyViolation):
            await policy.check_url(refused)


async def test_metadata_needs_an_exact_entry(fake_dns: dict[str, list[str]]) -> None:
    fake_dns["meta.internal"] = ["169.254.169.254"]
    broad = NetworkPolicy(["169.254.0.0/16", "meta.internal"])
    assert await broad.check_url("http://169.254.1.1/") == ["169.254.1.1"]
    for url in ("http://169.254.169.254/", "http://meta.internal/"):
        with pytest.raises(NetworkPolicyViolation, match="metadata"):
            await broad.check_url(url)
    exact = NetworkPolicy(["169.254.169.254"])
    assert await exact.check_url("http://169.254.169.254/") == ["169.254.169.254"]


@pytest.mark.parametrize("entry", ["", "   ", "a/b", "*", "10.0.0.0/33", "host:port", "[::1]x"])
def test_bad_allow_entries(entry: str) -> None:
    with pytest.raises(ValueError):
        if not entry.strip():
            AllowEntry.parse(entry)
        NetworkPolicy([entry])


def test_policy_from_settings() -> None:
    assert policy_from_settings(None).allow_hosts == ()
    policy = policy_from_settings(Settings(allow_hosts=["127.0.0.1", "*.corp"]))
    assert [e.raw for e in policy.allow_hosts] == ["127.0.0.1", "*.corp"]
    from_env = Settings.model_validate({"allow_hosts": "10.0.0.0/8, localhost"})
    assert len(policy_from_settings(from_env).allow_hosts) == 2


async def test_resolve_and_check_for_non_http(fake_dns: dict[str, list[str]]) -> None:
    fake_dns["smtp.example.com"] = ["93.184.216.34"]
    policy = NetworkPolicy(["127.0.0.1:2525"])
    assert await policy.resolve_and_check("smtp.example.com", 25) == ["93.184.216.34"]
    assert await policy.resolve_and_check("127.0.0.1", 2525) == ["127.0.0.1"]
    with pytest.raises(NetworkPolicyViolation):
        await policy.resolve_and_check("127.0.0.1", 25)
    with pytest.raises(NetworkPolicyViolation):
        await policy.resolve_and_check("[::1]", 25)


# --- real HTTP through policy_client ---------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/redirect-to":
            status, body = 302, b""
            extra = {"Location": parse_qs(url.query)["url"][0]}
        else:
            status, body = 200, f"host={self.headers.get('Host')}".encode()
            extra = {}
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


def _serve(httpd: ThreadingHTTPServer) -> Iterator[int]:
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


@pytest.fixture
def port() -> Iterator[int]:
    yield from _serve(ThreadingHTTPServer(("127.0.0.1", 0), _Handler))


async def test_local_server_needs_the_allow_list(port: int) -> None:
    async with policy_client(NetworkPolicy()) as client:
        with pytest.raises(NetworkPolicyViolation, match="loopback"):
            await client.get(f"http://127.0.0.1:{port}/")
    async with policy_client(NetworkPolicy(["127.0.0.1"])) as client:
        response = await client.get(f"http://127.0.0.1:{port}/")
    assert response.status_code == 200
    assert response.text == f"host=127.0.0.1:{port}"


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://[::ffff:10.0.0.1]/",
        "http://2130706433:1/",
        "file:///etc/passwd",
    ],
)
async def test_redirects_are_rechecked(port: int, target: str) -> None:
    # Port-restricted: only this server is allowed, so the redirect target is judged alone.
    policy = NetworkPolicy([f"127.0.0.1:{port}"])
    async with policy_client(policy, follow_redirects=True) as client:
        with pytest.raises(NetworkPolicyViolation):
            await client.get(f"http://127.0.0.1:{port}/redirect-to?url={target}")


async def test_allowed_redirect_is_followed(port: int) -> None:
    async with policy_client(NetworkPolicy(["127.0.0.1"]), follow_redirects=True) as client:
        response = await client.get(f"http://127.0.0.1:{port}/redirect-to?url=/final")
    assert response.status_code == 200
    assert len(response.history) == 1


async def test_connection_is_pinned_to_the_checked_address(
    port: int, fake_dns: dict[str, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    answers = iter([["127.0.0.1"], ["10.9.9.9"]])

    async def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers)

    monkeypatch.setattr(ssrf, "resolve_host", rebinding)
    policy = NetworkPolicy(["127.0.0.1"])
    async with policy_client(policy) as client:
        # pinned.test does not exist in DNS: success proves the socket went to the checked
        # address, and the Host header still names the original host.
        response = await client.get(f"http://pinned.test:{port}/")
        assert response.text == f"host=pinned.test:{port}"
        assert calls == ["pinned.test"]
        # The second answer (a rebinding to a private address) is checked and refused.
        with pytest.raises(NetworkPolicyViolation, match=r"10\.9\.9\.9"):
            await client.get(f"http://pinned.test:{port}/")


async def test_backend_refuses_unchecked_connections() -> None:
    backend = ssrf._PinnedBackend()
    with pytest.raises(NetworkPolicyViolation):
        await backend.connect_tcp("127.0.0.1", 80)
    with pytest.raises(NetworkPolicyViolation):
        await backend.connect_unix_socket("/tmp/x.sock")


def test_bypassing_options_are_refused() -> None:
    for key in ("transport", "mounts", "proxy", "uds"):
        with pytest.raises(ValueError, match="bypass"):
            policy_client(NetworkPolicy(), **{key: "x"})


# --- TLS: connect to the pinned IP, verify and send SNI for the original name ----------------


def _self_signed(tmp_path: Path, name: str) -> tuple[Path, Path]:
    crypto = pytest.importorskip("cryptography")
    assert crypto
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_tls_keeps_sni_and_verification_on_the_host_name(
    tmp_path: Path, fake_dns: dict[str, list[str]]
) -> None:
    cert_path, key_path = _self_signed(tmp_path, "secure.test")
    seen_sni: list[str | None] = []
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert_path, key_path)
    server_ctx.sni_callback = lambda sock, name, ctx: seen_sni.append(name)

    class TLSServer(ThreadingHTTPServer):
        def get_request(self) -> Any:
            sock, addr = super().get_request()
            return server_ctx.wrap_socket(sock, server_side=True), addr

    fake_dns["secure.test"] = ["127.0.0.1"]
    client_ctx = ssl.create_default_context(cafile=str(cert_path))
    for tls_port in _serve(TLSServer(("127.0.0.1", 0), _Handler)):
        async with policy_client(NetworkPolicy(["127.0.0.1"]), verify=client_ctx) as client:
            response = await client.get(f"https://secure.test:{tls_port}/")
            assert response.text == f"host=secure.test:{tls_port}"
            # Addressed by IP, the certificate (issued to secure.test) does not verify.
            with pytest.raises(httpx.ConnectError):
                await client.get(f"https://127.0.0.1:{tls_port}/")
    assert seen_sni[0] == "secure.test"
