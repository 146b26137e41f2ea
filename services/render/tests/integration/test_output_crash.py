"""A crash between storing a render's output and the transaction that ends its job (issue 14 item 4), made to happen
exactly then.

A real ``python -m render worker`` runs with ``FAULT_PAUSE_AFTER_OUTPUT_S``: it renders, stores
``renders/<id>/short.mp4``, logs ``render.fault_pause_after_output`` and sleeps instead of committing; the test
SIGKILLs it there. The harness's own worker (render's runner, paused until then) takes the render over: it renders
again into the same key and ends with one object and one ``render.completed``; a render canceled while no worker
held it ends canceled and its failure hook deletes the object. Real Postgres, RabbitMQ, billing and filesystem store.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from common.credit_holds import HoldStatus
from common.jobs import request_cancel
from common.testing.bus import delete_queues, service_queues
from common.testing.process import ServiceProcess, free_port
from common.testing.waiting import wait_for
from render.jobs import output_key

from .conftest import RenderHarness
from .test_renders import _ended, _mixed_project, _outbox, _scratch_left

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.xdist_group("render_service"),
    pytest.mark.timeout(180),
]
REPO = Path(__file__).resolve().parents[4]
RETRY_DELAYS_MS = "200"


@pytest_asyncio.fixture(loop_scope="module")
async def crashed(harness: RenderHarness, tmp_path: Path) -> AsyncIterator[tuple[uuid.UUID, dict[str, str]]]:
    """A render whose worker process was SIGKILLed right after storing its output (render id, owner's auth); the
    harness's runner is paused until the test resumes it."""
    stack = harness.stack
    _, auth, project = await _mixed_project(harness, tmp_path)
    queue, port = f"render-crash-{uuid.uuid4().hex[:8]}", free_port()
    env = {
        **os.environ,
        "DATABASE_URL": stack.database_url,
        "DB_SCHEMA": stack.schema,
        "AMQP_URL": stack.amqp_url,
        "BUS_EXCHANGE": stack.bus.exchange_name,
        "BUS_DLX": stack.bus.dlx_name,
        "BUS_QUEUE": queue,
        "BUS_RETRY_DELAYS_MS": RETRY_DELAYS_MS,
        "WORKER_PORT": str(port),
        "LOG_FORMAT": "json",
        "STORAGE_URL": f"file://{harness.objects.root}",
        "TMP_DIR": str(tmp_path / "killed-scratch"),
        "BILLING_URL": harness.settings.billing_url,
        "JOB_LEASE_S": "2",
        "JOB_POLL_INTERVAL_S": "0.2",
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
        # unbuffered: the line proving where the process stopped must reach the file before the SIGKILL
        "PYTHONUNBUFFERED": "1",
        "FAULT_PAUSE_AFTER_OUTPUT_S": "300",
    }
    paused = ServiceProcess("render", env, port, tmp_path / "paused-worker.log", cwd=REPO)
    await stack.pause_runner()  # the paused process is the only render worker
    try:
        await paused.start()
        status, render = await harness.call("POST", f"/api/v1/rankings/{project}/renders", auth)
        assert status == 202, render
        await wait_for(
            lambda: "render.fault_pause_after_output" in paused.tail(50000),
            timeout=150,
            interval=0.05,
            message=f"the paused worker stored the output:\n{paused.tail()}",
        )
        paused.kill()  # between storing renders/<id>/short.mp4 and the transaction that ends the job
        render_id = uuid.UUID(render["id"])
        assert await harness.objects.exists(output_key(render_id))
        job = await stack.job(render_id)
        assert job.status == "running" and job.stage == "publishing", job
        assert not [e for e in await _outbox(harness, "render.completed.v1") if e.render_id == render_id]
        yield render_id, auth
    finally:
        paused.stop()
        await stack.resume_runner()
        await delete_queues(stack.amqp_url, service_queues(queue, [RETRY_DELAYS_MS]))


async def test_a_render_killed_after_storing_its_output_is_taken_over_into_one_output(
    harness: RenderHarness, crashed: tuple[uuid.UUID, dict[str, str]]
) -> None:
    render_id, auth = crashed
    await harness.stack.resume_runner()  # a worker again: it takes the render over once the lease has lapsed
    job = await _ended(harness, str(render_id), timeout=120)
    assert job.status == "succeeded", job.error
    assert harness.worker.render_runs[render_id] == 1  # the takeover rendered it again (the killed run was 1)
    async with harness.stack.pool.acquire() as conn:
        assert await conn.fetchval("SELECT attempts FROM job_runs WHERE job_id = $1", render_id) == 2
    assert [o.key async for o in harness.objects.list(f"renders/{render_id}/")] == [output_key(render_id)]
    completed = [e for e in await _outbox(harness, "render.completed.v1") if e.render_id == render_id]
    assert len(completed) == 1
    hold = await harness.stack.hold_settles(render_id, HoldStatus.CAPTURED)
    assert len(await harness.stack.captures(hold.hold_ref)) == 1
    _, view = await harness.call("GET", f"/api/v1/renders/{render_id}", auth)
    assert view["status"] == "succeeded" and view["download_url"], view
    assert _scratch_left(harness) == []


async def test_a_render_canceled_after_the_crash_leaves_no_output(
    harness: RenderHarness, crashed: tuple[uuid.UUID, dict[str, str]]
) -> None:
    render_id, _ = crashed
    async with harness.stack.pool.acquire() as conn, conn.transaction():
        await request_cancel(conn, render_id, producer="render")  # the owner gives up while no worker runs it
    await harness.stack.resume_runner()
    job = await _ended(harness, str(render_id), timeout=60)
    assert job.status == "canceled", job
    assert render_id not in harness.worker.render_runs  # ended by the takeover without rendering again
    assert [o.key async for o in harness.objects.list(f"renders/{render_id}/")] == []
    assert not [e for e in await _outbox(harness, "render.completed.v1") if e.render_id == render_id]
    failed = [e for e in await _outbox(harness, "render.failed.v1") if e.render_id == render_id]
    assert [e.code for e in failed] == ["job.canceled"]
    await harness.stack.hold_settles(render_id, HoldStatus.RELEASED)
