"""The one SSRF address policy for every outbound fetch (URL imports, webhooks): which addresses are internal,
how a host is resolved and judged, and a resolver that enforces it when a connection is made.

- ``is_forbidden(ip)``: the address rule;
- ``ip_literal``, ``is_local_name``, ``split_http_url``: what a URL names, before any DNS;
- ``resolve(host, port)``: every address of a host (an IP literal is its own answer);
- ``AddressPolicy``: refuse a host when any of its addresses is internal, unless private targets are allowed or
  the exact ``host:port`` is (ingest's imports; its proxy connects to the very address it checked);
- ``PublicOnlyResolver``: an aiohttp resolver that drops internal answers at connect time (webhooks), which also
  defeats DNS rebinding between a check and the connection.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnresolvableHost(Exception):
    """The host has no address (or its name is not a valid one)."""


class ForbiddenAddress(Exception):
    """The host is, or resolves to, an internal address the policy refuses."""


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


def norm_host(host: str) -> str:
    """A host as compared: no brackets, lower case, no trailing dot."""
    return host.strip("[]").lower().rstrip(".")


def ip_literal(host: str) -> IPAddress | None:
    """The address when ``host`` is an IP literal (``[::1]`` included), else None."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def is_local_name(host: str) -> bool:
    """``localhost`` and names under ``.localhost`` / ``.local``: never public, whatever DNS says."""
    h = norm_host(host)
    return h == "localhost" or h.endswith((".localhost", ".local"))


def split_http_url(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of an http(s) URL; ``ValueError`` with a user-facing reason for anything else."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError("not a valid URL") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError("only http and https URLs are allowed")
    if not parts.hostname:
        raise ValueError("the URL has no host")
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80)


def check_http_urls(*urls: str | None) -> None:
    """``ValueError`` naming the first of ``urls`` that is not an http(s) URL with a host (``None`` is skipped).

    Request bodies call it from ``__post_init__``, so msgspec answers 422 ``validation.invalid`` with the field's
    path; the SSRF policy is applied later, when the URL is fetched.
    """
    for url in urls:
        if url is None:
            continue
        try:
            split_http_url(url)
        except ValueError as exc:
            raise ValueError(f"{exc}: {url[:80]!r}") from None


def hostport(host: str, port: int) -> str:
    """``host:port`` (``[v6]:port``), normalized."""
    h = norm_host(host)
    return f"[{h}]:{port}" if ":" in h else f"{h}:{port}"


async def resolve(host: str, port: int = 0) -> list[IPAddress]:
    """Every address of ``host`` (de-duplicated, in answer order); ``UnresolvableHost`` when there is none."""
    h = norm_host(host)
    literal = ip_literal(h)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(h, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableHost(f"{h} does not resolve") from exc
    out: list[IPAddress] = []
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if ip not in out:
            out.append(ip)
    if not out:
        raise UnresolvableHost(f"{h} does not resolve")
    return out


@dataclass(frozen=True)
class AddressPolicy:
    """Which hosts an outbound fetch may reach."""

    allow_private: bool = False
    allowed_hosts: frozenset[str] = frozenset()  # exact ``host:port`` (``[v6]:port``)

    @classmethod
    def of(cls, *, allow_private: bool, allowed_hosts: Iterable[str] = ()) -> AddressPolicy:
        """A policy from settings (``allowed_hosts`` entries are ``host:port``)."""
        return cls(allow_private, frozenset(_normalize_allowed(h) for h in allowed_hosts if h.strip()))

    def admits_hostport(self, host: str, port: int) -> bool:
        """Whether ``host:port`` is explicitly allowed whatever it resolves to."""
        return self.allow_private or hostport(host, port) in self.allowed_hosts

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """The addresses to connect to for ``host:port``.

        ``ForbiddenAddress`` when any of them is internal (a name that also answers with an internal address is
        refused), ``UnresolvableHost`` when there are none.
        """
        addrs = await resolve(host, port)
        if self.admits_hostport(host, port):
            return addrs
        bad = [a for a in addrs if is_forbidden(a)]
        if bad:
            raise ForbiddenAddress(f"{norm_host(host)} resolves to an internal address ({bad[0]})")
        return addrs


def _normalize_allowed(entry: str) -> str:
    host, _, port = entry.strip().rpartition(":")
    return hostport(host, int(port))


class PublicOnlyResolver(AbstractResolver):
    """Resolves names but drops internal addresses, so a DNS answer cannot point a request inside the network.

    Checked at connect time (not only when a URL is accepted), which also defeats DNS rebinding.
    """

    def __init__(self) -> None:
        self._inner = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Public addresses of ``host``; ``OSError`` when it has none."""
        results = await self._inner.resolve(host, port, family)
        public = [r for r in results if not is_forbidden(ipaddress.ip_address(r["host"]))]
        if not public:
            raise OSError(f"{host} resolves only to non-public addresses")
        return public

    async def close(self) -> None:
        """Release the inner resolver."""
        await self._inner.close()
