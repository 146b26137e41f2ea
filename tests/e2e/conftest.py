"""The e2e stack fixture: the whole platform as real processes, driven only through the gateway."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from .stack import Stack, drop_schemas, make_stack, migrate_all, start_all


@pytest.fixture(scope="session")
def e2e_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Every service's api and worker, migrated and ready."""
    import asyncio

    database_url = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    amqp_url = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    workdir: Path = tmp_path_factory.mktemp("stack")
    stack = make_stack(workdir, database_url=database_url, amqp_url=amqp_url, redis_url=redis_url)
    migrate_all(stack)
    start_all(stack)
    try:
        asyncio.run(stack.wait_ready())
        yield stack
    finally:
        stack.stop()
        drop_schemas(stack, database_url)
