"""SSRF policy: which URLs an import may reach, and the guard proxy that enforces it per connection.

The address rule itself (``common.addresses.is_forbidden``) is tested in libs/common.
"""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from common.addresses import AddressPolicy
from common.jobs import JobFailure
from ingest.netguard import GuardProxy, check_url

DEFAULT = AddressPolicy.of(allow_private=False, allowed_hosts=())


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/v.mp4",
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/",
        "http://localhost:8001/api",
        "https://[::ffff:127.0.0.1]/",
        "http://0x7f000001/",
        "http://2130706433/",
    ],
)
async def test_check_url_refuses_internal_hosts(url: str) -> None:
    with pytest.raises(JobFailure) as err:
        await check_url(url, DEFAULT)
    assert err.value.code == "source.forbidden_address"


@pytest.mark.parametrize(
    "url", ["ftp://example.com/v.mp4", "file:///etc/passwd", "gopher://x/", "javascript:1", "http://"]
)
async def test_check_url_refuses_other_schemes(url: str) -> None:
    with pytest.raises(JobFailure) as err:
        await check_url(url, DEFAULT)
    assert err.value.code == "source.unsupported"


async def test_allowed_hosts_admit_exactly_one_host_and_port() -> None:
    policy = AddressPolicy.of(allow_private=False, allowed_hosts=["127.0.0.1:8123"])
    await check_url("http://127.0.0.1:8123/v.mp4", policy)
    with pytest.raises(JobFailure):
        await check_url("http://127.0.0.1:8124/v.mp4", policy)
    await check_url("http://10.1.2.3/v.mp4", AddressPolicy.of(allow_private=True, allowed_hosts=()))


async def _origin() -> TestServer:
    app = web.Application()

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=f"hello {request.path}")

    app.router.add_get("/{tail:.*}", hello)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


async def test_proxy_forwards_to_an_allowed_host_and_refuses_the_rest() -> None:
    origin = await _origin()
    try:
        policy = AddressPolicy.of(allow_private=False, allowed_hosts=[f"127.0.0.1:{origin.port}"])
        async with GuardProxy(policy) as proxy, aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{origin.port}/x", proxy=proxy.url) as resp:
                assert resp.status == 200 and await resp.text() == "hello /x"
            # the same server on a name that resolves to loopback is not the admitted host:port
            async with http.get(f"http://localhost:{origin.port}/x", proxy=proxy.url) as resp:
                assert resp.status == 403
            # https goes through CONNECT: refused before any connection to the metadata service is made
            with pytest.raises(aiohttp.ClientHttpProxyError) as err:
                await http.get("https://169.254.169.254/latest/meta-data/", proxy=proxy.url)
            assert err.value.status == 403
            assert len(proxy.refusals) == 2 and "169.254.169.254" in proxy.refusals[1]
    finally:
        await origin.close()
