"""The shared SSRF address policy: every spelling of an internal address is internal; names are judged by all
of their addresses; the connect-time resolver drops internal answers."""

from __future__ import annotations

import ipaddress

import pytest

from common.addresses import (
    AddressPolicy,
    ForbiddenAddress,
    PublicOnlyResolver,
    UnresolvableHost,
    ip_literal,
    is_forbidden,
    is_local_name,
    resolve,
    split_http_url,
)


@pytest.mark.parametrize(
    "ip",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "::ffff:169.254.169.254",
        "2002:7f00:1::",
        "2002:a9fe:a9fe::",
        "64:ff9b::7f00:1",
        "64:ff9b::a9fe:a9fe",
        "2001:0:4136:e378:8000:63bf:80ff:fffe",
    ],
)
def test_internal_addresses_in_every_spelling(ip: str) -> None:
    assert is_forbidden(ipaddress.ip_address(ip))


@pytest.mark.parametrize(
    "ip",
    ["93.184.216.34", "1.1.1.1", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "2002:5db8:d822::"],
)
def test_public_addresses(ip: str) -> None:
    assert not is_forbidden(ipaddress.ip_address(ip))


@pytest.mark.parametrize(
    ("host", "literal"), [("127.0.0.1", "127.0.0.1"), ("[::1]", "::1"), ("example.com", None), ("", None)]
)
def test_ip_literals(host: str, literal: str | None) -> None:
    assert ip_literal(host) == (ipaddress.ip_address(literal) if literal else None)


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("localhost", True),
        ("LOCALHOST.", True),
        ("a.localhost", True),
        ("printer.local", True),
        ("x.com", False),
    ],
)
def test_local_names(host: str, local: bool) -> None:
    assert is_local_name(host) is local


@pytest.mark.parametrize(
    ("url", "parts"),
    [
        ("http://example.com/v.mp4", ("http", "example.com", 80)),
        ("HTTPS://example.com:8443/", ("https", "example.com", 8443)),
        ("https://[::1]/", ("https", "::1", 443)),
    ],
)
def test_http_urls_split(url: str, parts: tuple[str, str, int]) -> None:
    assert split_http_url(url) == parts


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "file:///etc/passwd", "http:///nohost", "http://x:99999/"]
)
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        split_http_url(url)


async def test_the_policy_refuses_a_name_with_any_internal_address() -> None:
    policy = AddressPolicy.of(allow_private=False)
    with pytest.raises(ForbiddenAddress):
        await policy.resolve("localhost", 80)  # resolves to loopback
    with pytest.raises(ForbiddenAddress):
        await policy.resolve("[::ffff:10.0.0.1]", 80)
    assert await policy.resolve("93.184.216.34", 443) == [ipaddress.ip_address("93.184.216.34")]


async def test_the_policy_admits_allowed_host_ports_and_private_targets_when_told() -> None:
    allowed = AddressPolicy.of(allow_private=False, allowed_hosts=["127.0.0.1:8123", " "])
    assert await allowed.resolve("127.0.0.1", 8123) == [ipaddress.ip_address("127.0.0.1")]
    with pytest.raises(ForbiddenAddress):
        await allowed.resolve("127.0.0.1", 8124)  # the exact host:port only
    assert await AddressPolicy.of(allow_private=True).resolve("10.1.2.3", 80)


async def test_a_name_that_does_not_resolve_is_unresolvable() -> None:
    with pytest.raises(UnresolvableHost):
        await resolve("no-such-host.invalid", 80)


async def test_the_public_only_resolver_drops_internal_answers() -> None:
    resolver = PublicOnlyResolver()
    try:
        with pytest.raises(OSError, match="non-public"):
            await resolver.resolve("localhost", 80)
        public = await resolver.resolve("93.184.216.34", 80)
        assert [r["host"] for r in public] == ["93.184.216.34"]
    finally:
        await resolver.close()
