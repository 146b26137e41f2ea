"""Which IP addresses are internal: the one SSRF address rule for every outbound fetch (imports, webhooks)."""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def is_forbidden(ip: IPAddress) -> bool:
    """Whether ``ip`` is internal: loopback, private, ULA, link-local, CGNAT, multicast, reserved, unspecified.

    IPv6 spellings of an IPv4 address (IPv4-mapped, 6to4, Teredo, NAT64) are judged as that IPv4 address.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return is_forbidden(embedded)
    if ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast or ip.is_reserved:
        return True
    if ip.is_unspecified or (isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT):
        return True
    return not ip.is_global
