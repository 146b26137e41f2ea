"""`make up` says "Reelforge is up" only once the gateway answers (it used to print it ~12 s before anything
listened): scripts/wait_up.py, alone, against a real HTTP server that is not ready, then ready."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from aiohttp import web

from common.testing.process import free_port
from common.testing.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "wait_up.py"


async def _waiter(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, str(SCRIPT), *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


async def test_it_prints_only_once_healthz_answers() -> None:
    polls: list[int] = []
    ready = False

    async def healthz(_: web.Request) -> web.Response:
        polls.append(200 if ready else 503)
        return web.json_response({"status": "ok"} if ready else {}, status=200 if ready else 503)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    waiter = await _waiter(url, "--interval", "0.05", "--timeout", "60")
    assert waiter.stdout is not None
    app = web.Application()
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app)
    try:
        # nothing listens yet (connection refused), then the port listens but is not healthy
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await wait_for(lambda: len(polls) >= 3, message="three polls answered 503")
        assert waiter.returncode is None  # still waiting: the refusals and 503s printed nothing
        ready = True
        out, err = await asyncio.wait_for(waiter.communicate(), 30)
    finally:
        await runner.cleanup()
    assert waiter.returncode == 0, err
    assert out.decode() == f"Reelforge is up: {url}\n"
    assert polls[-1] == 200 and polls.count(200) == 1 and polls.count(503) >= 3


async def test_it_waits_for_every_process_of_the_procfile(tmp_path: Path) -> None:
    """The gateway answering while a service does not listen yet is not "up": its API would answer 502."""
    ports = {"gateway": free_port(), "ingest": free_port(), "ingest-worker": free_port()}
    procfile = tmp_path / "Procfile"
    procfile.write_text(
        "# generated\n"
        + "".join(f"{name}: HTTP_PORT={port} exec python -m x\n" for name, port in ports.items())
        + "relay: exec python -m relay\n"  # no HTTP_PORT: nothing to poll
    )
    polled: dict[str, int] = {name: 0 for name in ports}
    runners: list[web.AppRunner] = []

    async def listen(name: str) -> None:
        async def healthz(_: web.Request) -> web.Response:
            polled[name] += 1
            return web.json_response({"status": "ok"})

        app = web.Application()
        app.router.add_get("/healthz", healthz)
        runner = web.AppRunner(app)
        runners.append(runner)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", ports[name]).start()

    url = f"http://127.0.0.1:{ports['gateway']}"
    waiter = await _waiter(url, "--procfile", str(procfile), "--interval", "0.05", "--timeout", "60")
    try:
        await listen("gateway")
        await listen("ingest-worker")
        await wait_for(lambda: polled["gateway"] >= 1 and polled["ingest-worker"] >= 1, message="both polled")
        # the api of ingest is still refused: nothing is printed (the waiter still runs)
        assert waiter.returncode is None
        await listen("ingest")
        out, err = await asyncio.wait_for(waiter.communicate(), 30)
    finally:
        for runner in runners:
            await runner.cleanup()
    assert waiter.returncode == 0, err
    assert out.decode() == f"Reelforge is up: {url}\n"
    assert polled["gateway"] == 1 and polled["ingest-worker"] == 1  # an answered process is not asked again


async def test_it_names_the_processes_that_never_answered(tmp_path: Path) -> None:
    procfile = tmp_path / "Procfile"
    silent = free_port()
    procfile.write_text(
        f"render-worker: HTTP_PORT={silent} WORKER_PORT={silent} exec python -m render worker\n"
    )
    waiter = await _waiter(
        f"http://127.0.0.1:{free_port()}",
        "--procfile",
        str(procfile),
        "--interval",
        "0.05",
        "--timeout",
        "0.5",
    )
    out, err = await asyncio.wait_for(waiter.communicate(), 30)
    assert waiter.returncode == 1 and out == b""
    assert f"render-worker (http://127.0.0.1:{silent}/healthz)".encode() in err and b"gateway (" in err


async def test_it_gives_up_after_its_timeout_and_says_so() -> None:
    waiter = await _waiter(f"http://127.0.0.1:{free_port()}", "--interval", "0.05", "--timeout", "0.5")
    out, err = await asyncio.wait_for(waiter.communicate(), 30)
    assert waiter.returncode == 1 and out == b""
    assert b"did not answer" in err and b"/healthz" in err


async def test_it_ends_quietly_with_the_process_it_watches() -> None:
    """Ctrl-C on `make up`, or honcho stopping because a service failed: the waiter does not linger."""
    honcho = await asyncio.create_subprocess_exec(sys.executable, "-c", "import time; time.sleep(600)")
    waiter = await _waiter(
        f"http://127.0.0.1:{free_port()}", "--interval", "0.05", "--watch-pid", str(honcho.pid)
    )
    honcho.kill()
    await honcho.wait()
    out, err = await asyncio.wait_for(waiter.communicate(), 30)
    assert waiter.returncode == 0 and out == b"" and err == b""


def test_make_up_runs_the_waiter_beside_honcho() -> None:
    recipe = subprocess.run(
        ["make", "-n", "up", "UV=uv"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    line = next(x for x in recipe.splitlines() if x.startswith("scripts/wait_up.py"))
    # one shell line: the waiter in the background, honcho in the foreground, the waiter watching that shell
    assert line.startswith("scripts/wait_up.py http://127.0.0.1:8080 --procfile Procfile --watch-pid $$ & ")
    assert line.endswith("honcho start -f Procfile -e .env")
    assert not [x for x in recipe.splitlines() if x.startswith("echo") and "Reelforge is up" in x]
