"""Periodic tasks: every error is logged and counted, and the next round runs anyway."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from prometheus_client import REGISTRY

from common.runtime import Periodic
from common.testing.bus import unique_name
from common.testing.waiting import wait_for


def errors(service: str, where: str) -> float:
    return REGISTRY.get_sample_value("reelforge_errors_total", {"service": service, "where": where}) or 0.0


async def test_a_failing_round_is_counted_and_the_task_keeps_going(tmp_path: Path) -> None:
    service = unique_name("svc")
    config = tmp_path / "config.json"  # absent at first: the round fails until it appears
    seen: list[int] = []

    async def round_() -> None:
        seen.append(json.loads(config.read_text())["n"])

    task = Periodic("reload", 0.01, round_, service=service, run_at_start=True)
    task.start()
    try:
        await wait_for(lambda: task.failures >= 2)
        assert errors(service, "reload") == task.failures
        config.write_text('{"n": 7}')
        await wait_for(lambda: seen)
        assert seen[0] == 7
        failures = task.failures
        config.write_text("not json")  # fails again, then recovers again
        await wait_for(lambda: task.failures > failures)
        config.write_text('{"n": 8}')
        await wait_for(lambda: 8 in seen)
    finally:
        await task.stop()


async def test_wake_runs_a_round_now_and_a_round_may_ask_to_run_again_sooner() -> None:
    backlog = [3]
    done: list[int] = []

    async def round_() -> float | None:
        if backlog[0] == 0:
            return None
        backlog[0] -= 1
        done.append(backlog[0])
        return 0.0  # more is waiting: go on at once

    task = Periodic("drain", 3600, round_, service=unique_name("svc"))
    task.start()
    try:
        task.wake()  # the interval is an hour: only the wake-up and the requested waits run these rounds
        await wait_for(lambda: done == [2, 1, 0])
        backlog[0] = 1
        task.wake()
        await wait_for(lambda: done == [2, 1, 0, 0])
    finally:
        await task.stop()


async def test_stop_lets_a_round_in_progress_finish_within_its_grace() -> None:
    started, finished = asyncio.Event(), asyncio.Event()

    async def round_() -> None:
        started.set()
        await asyncio.sleep(0.05)
        finished.set()

    task = Periodic("slow", 3600, round_, service=unique_name("svc"), run_at_start=True)
    task.start()
    await asyncio.wait_for(started.wait(), 5)
    await task.stop(grace_s=5)
    assert finished.is_set()
    assert task.rounds == 1
