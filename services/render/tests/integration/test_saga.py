"""The credits saga contract suite (common.testing.saga) against render's own wiring: its router (credits router,
cancel router, read model) and its runner, with the real billing service as subprocesses."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from common.storage.fs import FileStore
from common.testing.saga import SAGA_CASES, SagaStack
from render.config import RenderSettings

from .conftest import RenderWorker

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.xdist_group("render_saga")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stack(
    database_url: str, amqp_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[SagaStack]:
    """billing (worker + api subprocesses) and render's worker wiring, for the whole module."""
    workdir = tmp_path_factory.mktemp("render-saga")
    worker = RenderWorker(RenderSettings(tmp_dir=str(workdir / "tmp")), FileStore(workdir / "objects"))
    async with SagaStack(worker, database_url=database_url, amqp_url=amqp_url, workdir=workdir) as s:
        yield s


@pytest.mark.parametrize("case", list(SAGA_CASES))
async def test_saga_contract(stack: SagaStack, case: str) -> None:
    await SAGA_CASES[case](stack)
