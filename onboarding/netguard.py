"""Keep the server from being turned against our own network (SSRF): a partner-supplied host must resolve only
to public addresses. Odd spellings (decimal, octal, hex, IPv4-mapped IPv6) are caught because the check runs on
the addresses the resolver returns, not on the text.
"""

from __future__ import annotations

import ipaddress
import socket


def is_public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


def resolve(host: str, port: int = 443) -> list[str]:
    hostname = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    hostname = hostname.strip("[]")
    infos = socket.getaddrinfo(hostname, port, type=socket.SOCK_STREAM)
    return sorted({info[4][0] for info in infos})


def refuse_reason(host: str) -> str | None:
    """None when every address of host is public; else why we refuse it."""
    try:
        addresses = resolve(host)
    except (socket.gaierror, UnicodeError, ValueError):
        return f"{host} could not be found (DNS lookup failed). Check the spelling of your ConnectWise site."
    private = [a for a in addresses if not is_public_address(a)]
    if private:
        return (
            f"{host} resolves to a private or reserved address ({', '.join(private)}); "
            "only hosts on the public internet can be used."
        )
    return None
