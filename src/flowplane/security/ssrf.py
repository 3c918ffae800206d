"""The outbound URL policy every network connector goes through.

A workflow author controls the URLs that connectors fetch, so without a policy a workflow
could reach the machine's loopback services, the private network or a cloud metadata
endpoint (server-side request forgery). :class:`NetworkPolicy` refuses, unless the operator
allows them with ``FLOWPLANE_ALLOW_HOSTS``:

- schemes other than ``http`` and ``https``;
- loopback, private (RFC 1918), link-local, shared/CGNAT (100.64.0.0/10), unique-local
  (fc00::/7), site-local, multicast, unspecified and reserved addresses, including the IPv6
  forms that embed an IPv4 address (``::ffff:127.0.0.1``, ``::127.0.0.1``, 6to4, NAT64);
- cloud metadata addresses (``169.254.169.254``, ``fd00:ec2::254``, ``100.100.100.200``),
  even under an allowed network, unless the exact address is listed.

Host names are checked *after* DNS resolution (every resolved address must be allowed) and
the connection is made to the checked address, so a second, hostile DNS answer (DNS
rebinding) cannot switch it. Numeric IPv4 spellings such as ``2130706433``, ``0x7f.1`` or
``017700000001`` are decoded the way ``inet_aton`` does before classification.

:func:`policy_client` returns an ``httpx.AsyncClient`` whose transport applies the policy to
every request, redirects included, and connects to the pinned address while TLS still
verifies (and SNI still names) the original host.
"""

from __future__ import annotations

import asyncio
import contextvars
import ipaddress
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from flowplane.errors import ConnectorError, NetworkPolicyViolation

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

ALLOWED_SCHEMES = frozenset({"http", "https"})
DEFAULT_PORTS = {"http": 80, "https": 443}
RESOLVE_TIMEOUT_SECONDS = 10.0

METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    {
        ipaddress.IPv4Address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack, ...
        ipaddress.IPv4Address("169.254.170.2"),  # AWS ECS task metadata
        ipaddress.IPv6Address("fd00:ec2::254"),  # AWS IMDS over IPv6
        ipaddress.IPv4Address("100.100.100.200"),  # Alibaba Cloud
    }
)

# Ranges Python's ``ipaddress`` does not (in every supported version) flag as non-global.
_EXTRA_BLOCKED: tuple[tuple[IPNetwork, str], ...] = (
    (ipaddress.IPv4Network("0.0.0.0/8"), "a 'this network' address"),
    (ipaddress.IPv4Network("100.64.0.0/10"), "a shared (CGNAT) address"),
    (ipaddress.IPv4Network("192.0.0.0/24"), "an IETF protocol assignment address"),
    (ipaddress.IPv4Network("198.18.0.0/15"), "a benchmarking address"),
    (ipaddress.IPv6Network("fc00::/7"), "a unique-local address"),
    (ipaddress.IPv6Network("fec0::/10"), "a site-local address"),
    (ipaddress.IPv6Network("100::/64"), "a discard-only address"),
)
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_IPV4_COMPAT = ipaddress.IPv6Network("::/96")
_IPV4_PART = re.compile(r"0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*")


# --- address classification -----------------------------------------------------------------


def parse_ipv4_numeric(host: str) -> ipaddress.IPv4Address | None:
    """Decode an IPv4 host the way ``inet_aton`` (and so most resolvers) would.

    Accepts one to four dot-separated parts, each decimal, octal (leading ``0``) or hex
    (``0x``); the last part fills the remaining bytes. ``2130706433``, ``0x7f.1`` and
    ``017700000001`` all mean ``127.0.0.1``.

    Args:
        host: a host name without brackets or port.

    Returns:
        The address, or ``None`` when ``host`` is not a numeric IPv4 form.
    """
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values: list[int] = []
    for part in parts:
        if _IPV4_PART.fullmatch(part) is None:
            return None
        if part[:2].lower() == "0x":
            values.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part.startswith("0"):
            values.append(int(part[1:], 8))
        else:
            values.append(int(part, 10))
    *head, last = values
    if any(value > 255 for value in head) or last >= 256 ** (4 - len(head)):
        return None
    number = last
    for index, value in enumerate(head):
        number |= value << (8 * (3 - index))
    return ipaddress.IPv4Address(number)


def _looks_numeric(host: str) -> bool:
    """Whether the last label is numeric: such a host must be an IPv4 address (WHATWG URL)."""
    last = host.rsplit(".", 1)[-1]
    return bool(last) and (last.isdigit() or (last[:2].lower() == "0x"))


def parse_ip(value: str) -> IPAddress | None:
    """Return ``value`` as an address (standard or numeric IPv4 forms), else ``None``."""
    text = value.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return parse_ipv4_numeric(text)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """Return the IPv4 address carried by a mapped, compatible, 6to4 or NAT64 IPv6 address."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in net for net in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _IPV4_COMPAT and int(ip) > 1:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _normalise(ip: IPAddress) -> IPAddress:
    """Map ``::ffff:a.b.c.d`` and ``::a.b.c.d`` to ``a.b.c.d`` (the address actually reached)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _IPV4_COMPAT and int(ip) > 1:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def blocked_reason(ip: IPAddress) -> str | None:
    """Say why ``ip`` is not a public unicast address, or return ``None`` when it is.

    Args:
        ip: the address to classify.

    Returns:
        A short phrase such as ``"a loopback address"``, or ``None`` for a public address.
    """
    ip = _normalise(ip)
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    checks = (
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_loopback, "a loopback address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
    )
    for flagged, reason in checks:
        if flagged:
            return reason
    for net, reason in _EXTRA_BLOCKED:
        if ip.version == net.version and ip in net:
            return reason
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.is_site_local:
            return "a site-local address"
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            inner = blocked_reason(embedded)
            if inner is not None:
                return f"an IPv6 address embedding {inner}"
    if not ip.is_global:
        return "a non-global address"
    return None


# --- the allow-list ---------------------------------------------------------------------------


@dataclass(frozen=True)
class AllowEntry:
    """One ``allow_hosts`` entry: a host name, a ``*.suffix`` wildcard, an IP or a CIDR.

    ``port`` restricts the entry to one port when the entry was written ``host:port``.
    """

    raw: str
    host: str | None = None
    wildcard_suffix: str | None = None
    network: IPNetwork | None = None
    port: int | None = None

    @classmethod
    def parse(cls, raw: str) -> AllowEntry:
        """Parse an entry such as ``example.com``, ``*.corp``, ``10.0.0.0/8`` or ``[::1]:8080``.

        Raises:
            ValueError: the entry is empty or malformed.
        """
        text = raw.strip().lower()
        if not text:
            raise ValueError("empty allow_hosts entry")
        port: int | None = None
        if text.startswith("["):
            addr, _, rest = text[1:].partition("]")
            if rest:
                if not rest.startswith(":") or not rest[1:].isdigit():
                    raise ValueError(f"invalid allow_hosts entry {raw!r}")
                port = int(rest[1:])
            text = addr
        elif text.count(":") == 1:
            text, _, port_text = text.partition(":")
            if not port_text.isdigit():
                raise ValueError(f"invalid allow_hosts entry {raw!r}")
            port = int(port_text)
        if port is not None and not 0 < port < 65536:
            raise ValueError(f"invalid port in allow_hosts entry {raw!r}")
        try:
            return cls(raw=raw, network=ipaddress.ip_network(text, strict=False), port=port)
        except ValueError:
            pass
        if text.startswith("*."):
            return cls(raw=raw, wildcard_suffix=_normalise_host(text[2:]), port=port)
        if "/" in text or "*" in text or not text:
            raise ValueError(f"invalid allow_hosts entry {raw!r}")
        return cls(raw=raw, host=_normalise_host(text), port=port)

    def matches_host(self, host: str, port: int) -> bool:
        """Whether this entry allows the (normalised) host name ``host`` on ``port``."""
        if self.port is not None and self.port != port:
            return False
        if self.host is not None:
            return host == self.host
        if self.wildcard_suffix is not None:
            return host.endswith("." + self.wildcard_suffix)
        return False

    def matches_ip(self, ip: IPAddress, port: int) -> bool:
        """Whether this entry allows the address ``ip`` on ``port``."""
        if self.network is None or (self.port is not None and self.port != port):
            return False
        return any(
            candidate.version == self.network.version and candidate in self.network
            for candidate in {ip, _normalise(ip)}
        )

    def is_exact(self, ip: IPAddress) -> bool:
        """Whether this entry names exactly ``ip`` (a single-address network)."""
        net = self.network
        return (
            net is not None
            and net.num_addresses == 1
            and _normalise(net.network_address) == _normalise(ip)
        )


def _normalise_host(host: str) -> str:
    """Lower-case, IDNA-encode and strip the trailing dot of a host name."""
    host = host.strip().lower().rstrip(".")
    try:
        return httpx.URL(f"http://{host}/").raw_host.decode("ascii").rstrip(".")
    except (httpx.InvalidURL, UnicodeError):
        return host


# --- the policy -------------------------------------------------------------------------------


async def resolve_host(host: str, port: int) -> list[str]:
    """Resolve ``host`` to its IP addresses (the function the policy uses; tests patch it).

    Args:
        host: a host name.
        port: the port (some resolvers filter on it).

    Returns:
        The distinct addresses, in resolver order.
    """
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: dict[str, None] = {}
    for _family, _type, _proto, _canon, sockaddr in infos:
        seen.setdefault(str(sockaddr[0]), None)
    return list(seen)


def _origin(scheme: str, host: str, port: int | None) -> str:
    """The printable part of a URL: never userinfo, path or query (they may hold secrets)."""
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}" + (f":{port}" if port is not None else "")


class NetworkPolicy:
    """Decides which URLs outbound connectors may reach.

    Args:
        allow_hosts: host names (``api.internal``), wildcards (``*.corp.example``), IPs
            (``127.0.0.1``) or CIDRs (``10.0.0.0/8``), each optionally ``:port``. A request
            whose host name or resolved address matches an entry is allowed.
        resolver: ``async (host, port) -> [ip, ...]``; defaults to :func:`resolve_host`.

    Raises:
        ValueError: an ``allow_hosts`` entry is malformed.
    """

    def __init__(
        self, allow_hosts: Sequence[str] = (), *, resolver: Resolver | None = None
    ) -> None:
        self.allow_hosts: tuple[AllowEntry, ...] = tuple(
            AllowEntry.parse(entry) for entry in allow_hosts if entry.strip()
        )
        self._resolver = resolver

    def __repr__(self) -> str:
        return f"NetworkPolicy(allow_hosts={[e.raw for e in self.allow_hosts]!r})"

    async def check_url(self, url: str | httpx.URL, *, timeout: float | None = None) -> list[str]:
        """Check ``url`` and return the addresses a connection may use.

        Args:
            url: the absolute URL about to be requested.
            timeout: the longest time DNS resolution may take, in seconds.

        Returns:
            The resolved, permitted IP addresses (connect to one of these, nothing else).

        Raises:
            NetworkPolicyViolation: the scheme, host or any resolved address is refused
                (``retryable=False``).
            ConnectorError: the host name could not be resolved (``retryable=True``).
        """
        try:
            parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        except (httpx.InvalidURL, TypeError) as exc:
            raise NetworkPolicyViolation("invalid URL", retryable=False) from exc
        scheme = parsed.scheme
        if scheme not in ALLOWED_SCHEMES:
            raise NetworkPolicyViolation(
                f"URL scheme {scheme!r} is not allowed (only http and https)",
                retryable=False,
                scheme=scheme,
            )
        try:
            host = parsed.raw_host.decode("ascii").lower().rstrip(".")
        except UnicodeDecodeError as exc:  # pragma: no cover - httpx IDNA-encodes hosts
            raise NetworkPolicyViolation("invalid URL host", retryable=False) from exc
        if not host:
            raise NetworkPolicyViolation("URL has no host", retryable=False)
        port = parsed.port or DEFAULT_PORTS[scheme]
        return await self._check(host, port, _origin(scheme, host, parsed.port), timeout)

    async def resolve_and_check(
        self, host: str, port: int, *, timeout: float | None = None
    ) -> list[str]:
        """Check a non-HTTP destination (SMTP, a database, ...) and return its addresses.

        Args:
            host: a host name or IP address (brackets around IPv6 are accepted).
            port: the TCP port.
            timeout: the longest time DNS resolution may take, in seconds.

        Returns:
            The resolved, permitted IP addresses; connect to one of these, not to ``host``.

        Raises:
            NetworkPolicyViolation: the host or any resolved address is refused.
            ConnectorError: the host name could not be resolved (``retryable=True``).
        """
        text = host.strip().strip("[]")
        ip = parse_ip(text)
        name = str(ip) if ip is not None and ":" in text else _normalise_host(text)
        if not name:
            raise NetworkPolicyViolation("empty host", retryable=False)
        return await self._check(name, port, _origin("tcp", name, port), timeout)

    async def _check(self, host: str, port: int, origin: str, timeout: float | None) -> list[str]:
        literal = parse_ip(host)
        if literal is None and _looks_numeric(host):
            raise NetworkPolicyViolation(
                f"refused {origin}: {host!r} is not a valid IPv4 address", retryable=False
            )
        host_allowed = literal is None and any(
            entry.matches_host(host, port) for entry in self.allow_hosts
        )
        if literal is not None:
            addresses: list[IPAddress] = [literal]
        else:
            addresses = await self._resolve(host, port, origin, timeout)
        for ip in addresses:
            self._check_ip(ip, port, origin, host_allowed=host_allowed)
        # Connect to the address actually reached (``::ffff:a.b.c.d`` -> ``a.b.c.d``).
        return list(dict.fromkeys(str(_normalise(ip)) for ip in addresses))

    async def _resolve(
        self, host: str, port: int, origin: str, timeout: float | None
    ) -> list[IPAddress]:
        resolver = self._resolver or resolve_host
        try:
            async with asyncio.timeout(timeout or RESOLVE_TIMEOUT_SECONDS):
                raw = await resolver(host, port)
        except (OSError, TimeoutError) as exc:
            raise ConnectorError(
                f"cannot resolve host of {origin}", retryable=True, host=host
            ) from exc
        addresses: list[IPAddress] = []
        for value in raw:
            ip = parse_ip(value)
            if ip is None:
                raise NetworkPolicyViolation(
                    f"refused {origin}: resolver returned an invalid address", retryable=False
                )
            addresses.append(ip)
        if not addresses:
            raise ConnectorError(f"host of {origin} has no address", retryable=True, host=host)
        return addresses

    def _check_ip(self, ip: IPAddress, port: int, origin: str, *, host_allowed: bool) -> None:
        reason = blocked_reason(ip)
        if reason is None:
            return
        if _normalise(ip) in METADATA_ADDRESSES:
            # Metadata endpoints hand out cloud credentials: only an exact entry unlocks them.
            if any(entry.is_exact(ip) for entry in self.allow_hosts):
                return
        elif host_allowed or any(entry.matches_ip(ip, port) for entry in self.allow_hosts):
            return
        hint = (
            "list this exact address in FLOWPLANE_ALLOW_HOSTS to allow it"
            if _normalise(ip) in METADATA_ADDRESSES
            else "add the host, address or network to FLOWPLANE_ALLOW_HOSTS to allow it"
        )
        raise NetworkPolicyViolation(
            f"refused {origin}: {ip} is {reason}; {hint}",
            retryable=False,
            address=str(ip),
        )


def policy_from_settings(settings: Any) -> NetworkPolicy:
    """Build the policy from :class:`flowplane.settings.Settings` (or ``None``: no allow-list).

    Args:
        settings: an object with an ``allow_hosts`` list of strings, or ``None``.
    """
    allow: Iterable[str] = getattr(settings, "allow_hosts", None) or ()
    return NetworkPolicy(list(allow))


# --- the HTTP transport -----------------------------------------------------------------------


@dataclass(frozen=True)
class _Pin:
    host: str
    port: int
    addresses: tuple[str, ...]


# Set by the transport for the duration of one request; read by the network backend, which
# runs in the same task when httpcore opens a connection for that request.
_PIN: contextvars.ContextVar[_Pin | None] = contextvars.ContextVar(
    "flowplane_ssrf_pin", default=None
)


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to the address the policy checked for the current request.

    httpcore keys its pool and TLS (SNI and certificate verification) on the host name, so
    pinning at the socket level keeps both intact while the IP cannot change underneath.
    """

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        pin = _PIN.get()
        if pin is None or pin.host != host.lower().rstrip(".") or pin.port != port:
            raise NetworkPolicyViolation(
                "refused a connection the network policy did not check", retryable=False
            )
        last_error: Exception | None = None
        for address in pin.addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        assert last_error is not None
        raise last_error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise NetworkPolicyViolation("unix sockets are not allowed", retryable=False)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PolicyTransport(httpx.AsyncHTTPTransport):
    """An ``httpx`` transport that checks every request (redirects included) against a policy.

    Args:
        policy: the network policy.
        verify: TLS verification (``True``, a CA bundle path or an ``ssl.SSLContext``).
        cert: a client certificate.
        trust_env: read ``SSL_CERT_FILE``/``SSL_CERT_DIR`` from the environment.
        http1: enable HTTP/1.1.
        http2: enable HTTP/2 (needs the ``h2`` package).
        limits: connection pool limits.
        retries: connection retries.
        local_address: the local address to bind.
        socket_options: extra socket options.
    """

    def __init__(
        self,
        policy: NetworkPolicy,
        *,
        verify: ssl.SSLContext | str | bool = True,
        cert: Any = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: httpx.Limits | None = None,
        retries: int = 0,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> None:
        # Deliberately not calling super().__init__: it only builds ``self._pool``, and ours
        # needs the pinning network backend (and never a proxy or a unix socket).
        limits = limits or httpx.Limits()
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, cert=cert, trust_env=trust_env),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=http1,
            http2=http2,
            local_address=local_address,
            retries=retries,
            socket_options=socket_options,
            network_backend=_PinnedBackend(),
        )
        self.policy = policy

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Check ``request.url``, pin its addresses, then send it."""
        timeouts = request.extensions.get("timeout") or {}
        addresses = await self.policy.check_url(request.url, timeout=timeouts.get("connect"))
        pin = _Pin(
            host=request.url.raw_host.decode("ascii").lower().rstrip("."),
            port=request.url.port or DEFAULT_PORTS[request.url.scheme],
            addresses=tuple(addresses),
        )
        token = _PIN.set(pin)
        try:
            return await super().handle_async_request(request)
        finally:
            _PIN.reset(token)


_TRANSPORT_OPTIONS = (
    "verify",
    "cert",
    "http1",
    "http2",
    "limits",
    "retries",
    "local_address",
    "socket_options",
)
_BYPASSING_OPTIONS = ("transport", "mounts", "proxy", "uds")


def policy_client(policy: NetworkPolicy, **httpx_kwargs: Any) -> httpx.AsyncClient:
    """Return an ``httpx.AsyncClient`` whose every request goes through ``policy``.

    Args:
        policy: the network policy.
        **httpx_kwargs: ``httpx.AsyncClient`` options (``timeout``, ``follow_redirects``,
            ``headers``, ...) and transport options (``verify``, ``http2``, ``limits``, ...).

    Raises:
        ValueError: ``transport``, ``mounts``, ``proxy`` or ``uds`` was given: each would
            bypass the policy.
    """
    for key in _BYPASSING_OPTIONS:
        if httpx_kwargs.get(key) is not None:
            raise ValueError(f"{key!r} is not supported: it would bypass the network policy")
    transport_kwargs = {
        key: httpx_kwargs.pop(key) for key in _TRANSPORT_OPTIONS if key in httpx_kwargs
    }
    if "trust_env" in httpx_kwargs:
        transport_kwargs["trust_env"] = httpx_kwargs["trust_env"]
    transport = PolicyTransport(policy, **transport_kwargs)
    return httpx.AsyncClient(transport=transport, **httpx_kwargs)
