"""Keep the server from being turned against our own network (SSRF).

A partner-supplied host must resolve only to public addresses, and that is checked twice:

1. when the connection is saved or a run starts (``refuse_reason``, called by ``hosts.decide``), for a clear
   message in the form and the CLI;
2. at connect time, by ``GuardedTransport``: its network backend resolves the host itself, validates every
   address and opens the TCP connection to a validated IP, so a DNS answer that changes between the check and
   the connect (DNS rebinding) cannot reach a private address. TLS still runs against the host name (SNI and
   certificate checks are httpcore's, on the origin's host), so connecting by IP loses nothing.

Odd spellings of an address (``2130706433``, ``0177.0.0.1``, ``0x7f.1``, ``127.1``, IPv4-mapped IPv6) are read the
way the C resolver reads them (``inet_aton``), and the check always runs on addresses, never on text.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
import typing

import httpcore
import httpx
from django.conf import settings

from connectwise.transport import shared_ssl_context

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Named explicitly so that the rules do not depend on the Python version's idea of "global" (3.11 calls
# 2002::/16 and 64:ff9b::/96 global, for instance).
BLOCKED_NETWORKS: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network", 0.0.0.0
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT (RFC 6598)
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata (169.254.169.254)
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
        "::/96",  # unspecified, loopback and the deprecated IPv4-compatible form
        "::ffff:0:0/96",  # IPv4-mapped: checked through the embedded address as well
        "64:ff9b::/96",  # NAT64: would reach the IPv4 address behind the gateway
        "64:ff9b:1::/48",
        "100::/64",  # discard
        "2001::/23",  # IETF protocol assignments, Teredo (2001::/32)
        "2001:db8::/32",  # documentation
        "2002::/16",  # 6to4 (deprecated, embeds any IPv4 address)
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)


class AddressRefused(httpcore.ConnectError):
    """Raised at connect time; httpx maps it to ``httpx.ConnectError`` and the client to ``ConnectionFailed``."""


def parse_address(text: str) -> IPAddress | None:
    """The address ``text`` spells, if it is an IP literal in any spelling the resolver accepts; else None."""
    text = text.strip().strip("[]").rstrip(".")
    text = text.split("%", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    try:  # decimal, octal, hex and short forms: 2130706433, 0177.0.0.1, 0x7f.1, 127.1
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except (OSError, UnicodeError, ValueError):
        return None


def is_public_address(address: str | IPAddress) -> bool:
    ip = address if isinstance(address, IPAddress) else ipaddress.ip_address(str(address).split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is not None and not is_public_address(embedded):
            return False
    if any(ip in net for net in BLOCKED_NETWORKS if net.version == ip.version):
        return False
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def is_allowed_address(address: str | IPAddress) -> bool:
    """Public, or inside a network the operator opened for on-premise servers (``CONNECTWISE_ONPREM_NETWORKS``,
    empty by default)."""
    if is_public_address(address):
        return True
    ip = address if isinstance(address, IPAddress) else ipaddress.ip_address(str(address).split("%", 1)[0])
    return any(ip in net for net in settings.CONNECTWISE_ONPREM_NETWORKS if net.version == ip.version)


def split_host(host: str, default_port: int = 443) -> tuple[str, int]:
    """``host[:port]`` or ``[v6]:port`` -> (host, port)."""
    host = host.strip()
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        return name, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else default_port
    if host.count(":") == 1:
        name, _, port = host.partition(":")
        return name, int(port) if port.isdigit() else default_port
    return host, default_port


def resolve(host: str, port: int = 443) -> list[str]:
    """Every address ``host`` resolves to (IP literals, in any spelling, resolve to themselves)."""
    name, port = split_host(host, port)
    literal = parse_address(name)
    if literal is not None:
        return [str(literal)]
    infos = socket.getaddrinfo(name.rstrip("."), port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]).split("%", 1)[0] for info in infos))


def literal_refuse_reason(host: str) -> str | None:
    """Without DNS: why an IP literal (however spelled) is refused, or None when ``host`` is not a private
    literal. Used before the approval check so that no lookup is made for an unapproved name."""
    name, _ = split_host(host)
    literal = parse_address(name)
    if literal is not None and not is_allowed_address(literal):
        return f"{host} is a private or reserved address ({literal}); only hosts on the public internet can be used."
    return None


def refuse_reason(host: str) -> str | None:
    """None when every address of host is public; else why we refuse it, in words a partner understands."""
    literal = literal_refuse_reason(host)
    if literal:
        return literal
    try:
        addresses = resolve(host)
    except (OSError, UnicodeError, ValueError):
        return f"{host} could not be found (DNS lookup failed). Check the spelling of your ConnectWise site."
    if not addresses:
        return f"{host} could not be found (DNS lookup failed). Check the spelling of your ConnectWise site."
    private = [a for a in addresses if not is_allowed_address(a)]
    if private:
        return (
            f"{host} resolves to a private or reserved address ({', '.join(private)}); "
            "only hosts on the public internet can be used."
        )
    return None


class GuardedNetworkBackend(httpcore.NetworkBackend):
    """httpcore's sync backend, but ``connect_tcp`` resolves the host itself, refuses it when any address is not
    public, and connects to a validated IP. The caller (httpcore's HTTPConnection) then starts TLS with
    ``server_hostname`` set to the origin's host name, so SNI and certificate verification are unchanged."""

    def __init__(self, backend: httpcore.NetworkBackend | None = None) -> None:
        self._backend = backend or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = resolve(host, port)
        except (OSError, UnicodeError, ValueError) as exc:
            raise httpcore.ConnectError(f"{host}: DNS lookup failed ({type(exc).__name__})") from None
        refused = [a for a in addresses if not is_allowed_address(a)]
        if refused or not addresses:
            # All or nothing: a host that also answers with a private address is not trusted at all.
            raise AddressRefused(
                f"{host} resolves to a private or reserved address ({', '.join(refused) or 'none'}); refused"
            )
        last: Exception | None = None
        for address in addresses:
            try:
                return self._backend.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except httpcore.ConnectError as exc:  # try the next address, like socket.create_connection
                last = exc
        assert last is not None
        raise last

    def connect_unix_socket(self, path, timeout=None, socket_options=None):  # noqa: ANN001
        raise AddressRefused("Unix sockets are never used for partner hosts")

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


DEFAULT_LIMITS = httpx.Limits(max_connections=8, max_keepalive_connections=8)


@functools.cache
def _ssl_context_with(cafile: str) -> ssl.SSLContext:
    context = httpx.create_ssl_context(verify=True, trust_env=False)  # the public CAs (certifi)
    context.load_verify_locations(cafile=cafile)
    return context


def partner_ssl_context() -> ssl.SSLContext:
    """The certificate-verifying context for partner hosts: the public CAs, plus the operator's own
    (``CONNECTWISE_CA_FILE``, for on-premise servers whose certificate a company CA issued). Built once per
    process and file, like ``connectwise.transport.shared_ssl_context``."""

    if settings.CONNECTWISE_CA_FILE:
        return _ssl_context_with(settings.CONNECTWISE_CA_FILE)
    return shared_ssl_context()


class GuardedTransport(httpx.HTTPTransport):
    """The httpx transport for partner hosts (cloud and on-premise; not the sandbox): no proxies from the
    environment, certificate verification on, every TCP connection through ``GuardedNetworkBackend``."""

    def __init__(
        self,
        *,
        limits: httpx.Limits = DEFAULT_LIMITS,
        backend: httpcore.NetworkBackend | None = None,
        verify: bool = True,
    ) -> None:
        context = partner_ssl_context() if verify else httpx.create_ssl_context(verify=False, trust_env=False)
        super().__init__(verify=context, trust_env=False, limits=limits)
        self._pool.close()
        self._pool = httpcore.ConnectionPool(
            ssl_context=context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=GuardedNetworkBackend(backend),
        )
