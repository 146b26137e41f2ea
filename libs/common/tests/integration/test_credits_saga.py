"""The credits saga contract suite against a trivial paid job kind, with the real billing service.

A paid service runs the same suite against itself with its own ``PaidJobAdapter`` (docs/credits.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from common.credits import PriceList, PricesUnavailable, UnknownPrice
from common.testing.process import free_port
from common.testing.saga import SAGA_CASES, PaidJobAdapter, SagaStack

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.xdist_group("credits_saga")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(
    database_url: str, amqp_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[SagaStack]:
    """billing (worker + api subprocesses) and a trivial paid service, for the whole module."""
    workdir: Path = tmp_path_factory.mktemp("saga")
    async with SagaStack(
        PaidJobAdapter(), database_url=database_url, amqp_url=amqp_url, workdir=workdir
    ) as s:
        yield s


@pytest.mark.parametrize("case", list(SAGA_CASES))
async def test_saga_contract(stack: SagaStack, case: str) -> None:
    await SAGA_CASES[case](stack)


async def test_prices_come_from_billing_and_are_cached(stack: SagaStack) -> None:
    prices = await stack.prices.prices()
    assert prices["analysis_per_video"] == 5  # billing's default PRICES
    assert await stack.prices.cost("captions_per_minute", 2.1) == 3 * prices["captions_per_minute"]
    assert await stack.prices.prices() is prices  # within the TTL, no second request
    with pytest.raises(UnknownPrice) as err:
        await stack.prices.price("teleport_per_kg")
    assert err.value.code == "credits.unknown_price"


async def test_prices_unreachable_is_a_clear_503() -> None:
    async with aiohttp.ClientSession() as session:
        prices = PriceList(session, f"http://127.0.0.1:{free_port()}", timeout_s=2)
        with pytest.raises(PricesUnavailable) as err:
            await prices.cost("analysis_per_video")
    assert err.value.status == 503 and err.value.code == "credits.prices_unavailable"
