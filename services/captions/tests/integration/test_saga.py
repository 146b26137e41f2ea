"""The credits saga contract suite (common.testing.saga) against the captions service's own wiring.

The trivial paid job runs on the captions schema (its migrations), and billing's answers reach it through the
captions worker's router (``captions.handlers.router``: the credits router included with the cancel router, the
videos read model and transcript requests), with the real billing service as subprocesses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from captions import handlers
from captions.config import CaptionsSettings
from captions.jobs import PRODUCER
from common.bus.base import Bus
from common.storage.fs import FileStore
from common.testing.saga import SAGA_CASES, PaidJobAdapter, SagaStack

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.xdist_group("captions_saga")]
MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


class CaptionsSaga(PaidJobAdapter):
    """The trivial paid kind on captions' schema, subscribed through captions' router."""

    producer = PRODUCER
    kind = "saga.trivial"
    migrations_dir = MIGRATIONS
    price_name = "captions_per_minute"

    def __init__(self, objects: Path) -> None:
        super().__init__()
        self.objects = FileStore(objects)

    async def subscribe(self, pool: asyncpg.Pool, bus: Bus, *, queue: str) -> None:
        """Billing's answers through the captions worker's own router."""
        r = handlers.router(CaptionsSettings(), objects=self.objects, runner=None, on_failure=self.on_failure)
        await r.subscribe(bus, queue=queue, pool=pool)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(
    database_url: str, amqp_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[SagaStack]:
    """billing (worker + api subprocesses) and the captions wiring, for the whole module."""
    workdir: Path = tmp_path_factory.mktemp("captions-saga")
    adapter = CaptionsSaga(workdir / "objects")
    async with SagaStack(adapter, database_url=database_url, amqp_url=amqp_url, workdir=workdir) as s:
        yield s


@pytest.mark.parametrize("case", list(SAGA_CASES))
async def test_saga_contract(stack: SagaStack, case: str) -> None:
    await SAGA_CASES[case](stack)
