"""The address of the client behind a request, believing forwarded headers only from proxies.

``X-Forwarded-For`` and ``Forwarded`` are written by whoever sends the request, so they name
the client only when the peer that sent them is one of ``FLOWPLANE_TRUSTED_PROXIES``. Then
the list is read from the right (the entry the nearest proxy appended) past every trusted
proxy, and the first address that is not a proxy is the client: a client cannot pose as
another by putting an address of its choice at the left of the header.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence

from starlette.requests import HTTPConnection

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
UNKNOWN = "unknown"
_FORWARDED_FOR = re.compile(r'(?i)(?:^|[;,\s])for=("?)([^;,"]*)\1')


def parse_networks(entries: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Parse ``FLOWPLANE_TRUSTED_PROXIES`` entries (addresses or CIDRs)."""
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("["):  # Forwarded: for="[2001:db8::1]:4711"
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # 192.0.2.1:4711
        text = text.partition(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address: str, proxies: Sequence[IPNetwork]) -> bool:
    ip = _address(address)
    return ip is not None and any(ip in network for network in proxies)


def _forwarded_chain(connection: HTTPConnection) -> list[str]:
    """The forwarded client chain, leftmost (farthest) first; ``Forwarded`` wins."""
    forwarded = connection.headers.getlist("forwarded")
    if forwarded:
        return [m.group(2) for line in forwarded for m in _FORWARDED_FOR.finditer(line)]
    chain: list[str] = []
    for line in connection.headers.getlist("x-forwarded-for"):
        chain.extend(part.strip() for part in line.split(","))
    return chain


def client_address(connection: HTTPConnection, proxies: Sequence[IPNetwork]) -> str:
    """The client's address: the peer, or what trusted proxies say the client was.

    Args:
        connection: the request (or WebSocket).
        proxies: the trusted proxies (:func:`parse_networks`); empty: the peer is the client.
    """
    peer = connection.client.host if connection.client is not None else UNKNOWN
    if not proxies or not _trusted(peer, proxies):
        return peer
    for hop in reversed(_forwarded_chain(connection)):
        if not _trusted(hop, proxies):
            ip = _address(hop)
            # A malformed or obfuscated hop ("unknown", "_hidden") ends what can be believed.
            return str(ip) if ip is not None else peer
    return peer
