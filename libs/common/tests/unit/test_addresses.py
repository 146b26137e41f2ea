"""The shared SSRF address rule: every spelling of an internal address is internal."""

from __future__ import annotations

import ipaddress

import pytest

from common.addresses import is_forbidden


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
