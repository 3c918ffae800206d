"""Which address a request comes from: forwarded headers count only from trusted proxies."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from flowplane.api.client_address import client_address, parse_networks

PROXIES = parse_networks(["10.0.0.0/8", "2001:db8:ffff::/48"])


def request(peer: str, *headers: tuple[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers]
    return Request({"type": "http", "client": (peer, 5000), "headers": raw})


@pytest.mark.parametrize(
    ("peer", "headers", "expected"),
    [
        # No proxies configured, or an untrusted peer: the headers are ignored.
        ("198.51.100.7", [("X-Forwarded-For", "1.2.3.4")], "198.51.100.7"),
        ("198.51.100.7", [("Forwarded", "for=1.2.3.4")], "198.51.100.7"),
        # A trusted proxy: the rightmost address that is not a proxy.
        ("10.0.0.1", [("X-Forwarded-For", "1.2.3.4")], "1.2.3.4"),
        ("10.0.0.1", [("X-Forwarded-For", "6.6.6.6, 1.2.3.4, 10.0.0.9")], "1.2.3.4"),
        ("10.0.0.1", [("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "1.2.3.4")], "1.2.3.4"),
        ("10.0.0.1", [("X-Forwarded-For", "1.2.3.4:8080")], "1.2.3.4"),
        ("10.0.0.1", [("Forwarded", 'for="[2001:db8::1]:4711";proto=https')], "2001:db8::1"),
        ("10.0.0.1", [("Forwarded", "for=6.6.6.6, for=1.2.3.4;by=10.0.0.1")], "1.2.3.4"),
        # Forwarded wins over X-Forwarded-For when both are present.
        ("10.0.0.1", [("X-Forwarded-For", "6.6.6.6"), ("Forwarded", "for=1.2.3.4")], "1.2.3.4"),
        # Junk or obfuscated hops: believe nothing past them, the proxy is the client.
        ("10.0.0.1", [("X-Forwarded-For", "unknown")], "10.0.0.1"),
        ("10.0.0.1", [("Forwarded", "for=_hidden")], "10.0.0.1"),
        ("10.0.0.1", [("X-Forwarded-For", "6.6.6.6, not-an-ip")], "10.0.0.1"),
        # Only proxies in the chain, or no header: the peer.
        ("10.0.0.1", [("X-Forwarded-For", "10.1.1.1")], "10.0.0.1"),
        ("10.0.0.1", [], "10.0.0.1"),
        ("2001:db8:ffff::5", [("X-Forwarded-For", "203.0.113.5")], "203.0.113.5"),
    ],
)
def test_client_address(peer: str, headers: list[tuple[str, str]], expected: str) -> None:
    assert client_address(request(peer, *headers), PROXIES) == expected


def test_no_proxies_means_the_peer() -> None:
    assert client_address(request("10.0.0.1", ("X-Forwarded-For", "1.2.3.4")), ()) == "10.0.0.1"
