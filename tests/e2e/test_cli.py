"""The `reelforge` CLI as a user runs it: the console script of the venv, as a subprocess, against the whole stack."""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import srt
from yarl import URL

from common.testing.media import ffprobe, make_video
from common.testing.process import free_port
from common.testing.speech import SpeechSample
from common.testing.subtitles import SubtitleServer, talk

from .recorded_search import recording
from .stack import Stack

pytestmark = pytest.mark.xdist_group("e2e")

REELFORGE = Path(sys.executable).parent / "reelforge"  # installed by `uv sync` (make up / bootstrap)
PASSWORD = "correct horse battery"

# exit codes (docs/cli.md)
OK, FAILED, USAGE, AUTH, FORBIDDEN, NOT_FOUND, UNAVAILABLE = 0, 1, 2, 3, 4, 5, 8
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
CLOCK = r"\d+:\d\d:\d\d"


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


class Cli:
    """`reelforge` with its own config directory (one user's machine)."""

    def __init__(self, stack: Stack, config_dir: Path) -> None:
        self.config_dir = config_dir
        self.env = {
            **os.environ,
            "REELFORGE_URL": stack.gateway_url,
            "REELFORGE_CONFIG_DIR": str(config_dir),
            "COLUMNS": "160",
        }
        self.env.pop("REELFORGE_API_KEY", None)

    async def start(self, *args: str, **env: str) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            str(REELFORGE),
            *args,
            env={**self.env, **env},
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )

    async def __call__(self, *args: str, stdin: str = "", timeout: float = 600, **env: str) -> Run:
        proc = await self.start(*args, **env)
        out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), timeout)
        assert proc.returncode is not None
        return Run(proc.returncode, out.decode(), err.decode())

    @property
    def credentials(self) -> dict[str, str]:
        data: dict[str, str] = json.loads((self.config_dir / "credentials.json").read_text())
        return data


async def _register(http: aiohttp.ClientSession, base: str) -> str:
    email = f"cli-{uuid.uuid4().hex[:8]}@example.com"
    async with http.post(f"{base}/api/v1/auth/register", json={"email": email, "password": PASSWORD}) as r:
        assert r.status == 201, await r.text()
    return email


async def _logged_in(stack: Stack, http: aiohttp.ClientSession, tmp_path: Path, name: str = "cfg") -> Cli:
    cli = Cli(stack, tmp_path / name)
    email = await _register(http, stack.gateway_url)
    r = await cli("login", "--email", email, "--password-stdin", "--json", stdin=PASSWORD + "\n")
    assert r.code == OK, r.stderr
    assert r.json()["email"] == email and r.json()["method"] == "password"
    return cli


async def _granted(cli: Cli) -> dict[str, Any]:
    """The balance once the signup grant has arrived through events (asked at most once a second)."""
    deadline = time.monotonic() + 60
    while (r := await cli("balance", "--json")).code != OK or not r.json()["balance"]:
        assert time.monotonic() < deadline, r.stdout + r.stderr
        await asyncio.sleep(1)
    balance: dict[str, Any] = r.json()
    return balance


async def test_login_upload_with_progress_bars_until_ready_and_balance(
    e2e_stack: Stack, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    cli = await _logged_in(e2e_stack, http, tmp_path)
    creds_file = cli.config_dir / "credentials.json"
    assert stat.S_IMODE(creds_file.stat().st_mode) == 0o600
    assert cli.credentials["refresh_token"].startswith("rft_")

    first = make_video(seconds=3, width=640, height=360)
    second = tmp_path / "second clip.mp4"
    second.write_bytes(make_video(seconds=2).read_bytes())
    r = await cli("upload", str(first), str(second), "--wait", "--json", timeout=900)
    assert r.code == OK, r.stderr
    results = r.json()
    assert [Path(x["file"]).name for x in results] == [first.name, second.name]
    for x in results:
        assert x["stream"]["status"] == "ready", x
        assert x["video"]["width"] in (640, 320)
    # a progress bar per file, ended at 100 % of its size (on stderr: stdout is the JSON)
    bars = [line for line in r.stderr.splitlines() if "100%" in line]
    assert any(first.name in b for b in bars) and any(second.name in b for b in bars), r.stderr
    assert results[1]["video"]["title"]  # named from the file

    # a file that is no video: the upload fails, the exit code says so and the JSON names the code
    junk = tmp_path / "notes.mp4"
    junk.write_bytes(b"this is not a video" * 100)
    r = await cli("upload", str(junk), "--json")
    assert r.code == FAILED, r.stderr
    assert r.json()[0]["error"]["code"].startswith("media."), r.stdout

    balance = await _granted(cli)
    assert balance["available"] <= balance["balance"]
    r = await cli("balance")  # for people: a table
    assert r.code == OK and "available" in r.stdout

    # the access token runs out: the CLI refreshes it by itself and saves the new pair
    spent_refresh = cli.credentials["refresh_token"]
    creds_file.write_text(json.dumps({**cli.credentials, "access_token": "expired"}))
    r = await cli("whoami", "--json")
    assert r.code == OK, r.stderr
    assert r.json()["auth"] == "password"
    assert cli.credentials["refresh_token"] != spent_refresh
    assert stat.S_IMODE(creds_file.stat().st_mode) == 0o600


def _lines_of(stderr: str, prefix: str) -> list[str]:
    """The plain progress lines (``--progress plain``, the default when stderr is no terminal) of one task."""
    return [line for line in stderr.splitlines() if line.startswith(prefix)]


async def test_upload_draws_a_live_bar_and_each_failure_exits_with_its_documented_code(
    e2e_stack: Stack, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    cli = await _logged_in(e2e_stack, http, tmp_path)
    clip = make_video(seconds=2, width=640, height=360)

    # the terminal's bar (forced here, stderr being a pipe): redrawn in place from 0 % to 100 % of the file's bytes
    r = await cli("--progress", "bar", "upload", str(clip), "--json")
    assert r.code == OK, r.stderr
    assert r.json()[0]["video"]["size_bytes"] == clip.stat().st_size
    assert "\x1b[" in r.stderr and "\r" in r.stderr  # drawn with escape codes, over itself
    frames = [ANSI.sub("", f).strip() for f in re.split(r"[\r\n]", r.stderr)]
    frames = [f for f in frames if f.startswith(clip.name)]
    assert "━" in frames[0] and re.search(r" 0% +0\.0/[\d.]+ [kM]B", frames[0]), frames
    done = re.search(r" 100% +([\d.]+)/\1 [kM]B", frames[-1])
    assert done and float(done[1]) == round(clip.stat().st_size / 1000, 1), frames[-1]

    # plain lines where there is no terminal (the default in a pipe): the start and the end, with the bytes
    r = await cli("upload", str(clip), "--json")
    assert r.code == OK, r.stderr
    lines = _lines_of(r.stderr, clip.name)
    assert lines[0].startswith(f"{clip.name} 0% ") and re.match(
        rf"{clip.name} 100% ([\d.]+)/\1 kB", lines[-1]
    )

    # too large: refused from its Content-Length (a sparse file, no disk used)
    huge = tmp_path / "huge.mp4"
    with huge.open("wb") as f:
        f.truncate(2 * 1024**3 + 4 * 1024**2)
    r = await cli("upload", str(huge), "--json")
    assert r.code == FAILED, r.stderr
    assert r.json()[0]["error"]["code"] == "upload.too_large"
    # the bar says it failed; how far it got is a race (the body streams until the 413 arrives: CI saw 1 %)
    assert _lines_of(r.stderr, "huge.mp4 (failed) "), r.stderr
    assert "upload.too_large" in r.stderr.splitlines()[-1]  # said to a person too
    # corrupt: a file that is no video (media.*, exit 1) is in the first test; the other codes of docs/cli.md:
    r = await cli("upload", str(tmp_path / "missing.mp4"), "--json")
    assert r.code == USAGE and "does not exist" in r.stderr
    r = await Cli(e2e_stack, tmp_path / "nobody")("upload", str(clip), "--json")
    assert r.code == AUTH and r.json()[0]["error"]["code"] == "auth.not_logged_in"
    r = await cli("--url", f"http://127.0.0.1:{free_port()}", "balance", "--json")
    assert r.code == UNAVAILABLE and r.json()["error"]["code"] == "unavailable"
    r = await cli("download", str(uuid.uuid4()), "--json")
    assert r.code == NOT_FOUND, r.stdout + r.stderr


@asynccontextmanager
async def _dropping_uploads_of(gateway_url: str, filename: str) -> AsyncIterator[str]:
    """The gateway behind a TCP proxy that resets the connection (both sides, no answer) as soon as a request
    names ``filename`` in its multipart head: the network failing in the middle of that file's upload."""
    gateway = URL(gateway_url)
    marker = f'filename="{filename}"'.encode()
    tasks: set[asyncio.Task[None]] = set()

    async def relay(src: asyncio.StreamReader, dst: asyncio.StreamWriter, peer: asyncio.StreamWriter) -> None:
        seen = b""
        try:
            while data := await src.read(64 * 1024):
                seen = seen[-len(marker) :] + data
                if marker in seen:
                    break  # a cut, not a goodbye: abort() below resets both connections
                dst.write(data)
                await dst.drain()
        except OSError:
            pass
        finally:
            for writer in (dst, peer):
                writer.transport.abort()

    async def connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(gateway.host, gateway.port)
        for task in (
            asyncio.create_task(relay(reader, up_writer, writer)),
            asyncio.create_task(relay(up_reader, writer, up_writer)),
        ):
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(connect, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_upload_reports_every_files_outcome_when_one_is_cut_off_or_the_wait_runs_out(
    e2e_stack: Stack, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    cli = await _logged_in(e2e_stack, http, tmp_path)
    clips = [tmp_path / f"{name}.mp4" for name in ("first", "cut", "third")]
    for clip in clips:
        clip.write_bytes(make_video(seconds=1).read_bytes())

    # the connection drops in the middle of the second file: the first and the third are uploaded, the second
    # says why, and the exit code is the documented one of a network failure (8)
    async with _dropping_uploads_of(e2e_stack.gateway_url, "cut.mp4") as url:
        r = await cli("--url", url, "upload", *map(str, clips), "--json")
    assert r.code == UNAVAILABLE, r.stdout + r.stderr
    first, cut, third = r.json()
    assert [x["file"] for x in (first, cut, third)] == list(map(str, clips))
    assert "video" not in cut and cut["error"]["code"] == "unavailable", cut
    assert "error" not in first and "error" not in third
    assert _lines_of(r.stderr, "cut.mp4 (failed)"), r.stderr
    # uploaded once each and nothing resumed behind the user's back: the library holds exactly those two
    headers = {"Authorization": f"Bearer {cli.credentials['access_token']}"}
    async with http.get(f"{e2e_stack.gateway_url}/api/v1/videos", headers=headers) as resp:
        listed = [v["id"] for v in (await resp.json())["items"]]
    assert sorted(listed) == sorted([first["video"]["id"], third["video"]["id"]])

    # --wait runs out (here at once): the uploaded file keeps its video id beside its timeout; a file that is no
    # video has its own error; one JSON document for both, exit 1 (the first failed file's code)
    junk = tmp_path / "notes.mp4"
    junk.write_bytes(b"this is not a video" * 100)
    r = await cli("upload", str(clips[0]), str(junk), "--wait", "--timeout", "0", "--json")
    assert r.code == FAILED, r.stdout + r.stderr
    waited, refused = r.json()
    assert waited["video"]["id"] and waited["error"]["code"] == "stream.timeout", waited
    assert "video" not in refused and refused["error"]["code"].startswith("media."), refused
    assert "stream.timeout" in r.stderr and refused["error"]["code"] in r.stderr  # said to a person too


async def test_api_keys_from_the_cli_login_scope_and_revocation(
    e2e_stack: Stack, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    owner = await _logged_in(e2e_stack, http, tmp_path)
    r = await owner("keys", "create", "ci upload", "--scope", "full", "--json")
    assert r.code == OK, r.stderr
    full = r.json()
    assert full["key"].startswith(f"rf_live_{full['prefix']}_")
    r = await owner("keys", "create", "dashboards", "--json")
    read = r.json()
    assert read["scope"] == "read"
    r = await owner("keys", "list", "--json")
    listed = {k["prefix"]: k for k in r.json()}
    assert set(listed) == {full["prefix"], read["prefix"]} and all("key" not in k for k in listed.values())
    r = await owner("keys", "list")  # for people: a table of prefixes, never the keys
    assert r.code == OK and f"rf_live_{full['prefix']}_" in r.stdout and full["key"] not in r.stdout

    # another machine logs in with the full key and uploads through it
    script = Cli(e2e_stack, tmp_path / "ci")
    r = await script("login", "--api-key", full["key"], "--json")
    assert r.code == OK, r.stderr
    assert r.json()["method"] == "api_key"
    assert stat.S_IMODE((script.config_dir / "credentials.json").stat().st_mode) == 0o600
    clip = make_video(seconds=1)
    r = await script("upload", str(clip), "--json")
    assert r.code == OK, r.stderr
    vid = r.json()[0]["video"]["id"]
    r = await script("whoami", "--json")
    assert (
        r.json()["auth"] == "api_key"
        and r.json()["email"] == (await owner("whoami", "--json")).json()["email"]
    )
    # a key cannot make keys
    r = await script("keys", "create", "more", "--json")
    assert r.code == FORBIDDEN and r.json()["error"]["code"] == "auth.session_required"

    # the read key reads but cannot write
    r = await owner("--api-key", read["key"], "jobs", "--json")
    assert r.code == OK and isinstance(r.json(), list)
    r = await owner("--api-key", read["key"], "upload", str(clip), "--json")
    assert r.code == FORBIDDEN and r.json()[0]["error"]["code"] == "auth.insufficient_scope"

    # revoked by prefix: the very next command with it fails as an authentication failure
    r = await owner("keys", "revoke", full["prefix"], "--json")
    assert r.code == OK and r.json()["revoked"] == full["id"]
    r = await script("whoami", "--json")
    assert r.code == AUTH and r.json()["error"]["code"] == "auth.api_key_revoked"
    r = await script("jobs", "--json")
    assert r.code == AUTH
    r = await owner("keys", "list", "--json")
    assert [k["prefix"] for k in r.json()] == [read["prefix"]]
    assert (await owner("whoami", "--json")).code == OK  # the password login is untouched
    assert vid


async def test_jobs_watch_shows_a_jobs_progress_live(
    e2e_stack: Stack, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    cli = await _logged_in(e2e_stack, http, tmp_path)
    watcher = await cli.start("jobs", "--watch", "--json", "--timeout", "600")
    # and as a person reads it where there is no terminal: a line per change (a terminal gets a redrawn table)
    reader = await cli.start("jobs", "--watch", "--timeout", "600")
    seen: list[dict[str, Any]] = []
    lines: list[bytes] = []
    try:
        for proc in (watcher, reader):  # connected: every change from here on is shown
            assert proc.stderr is not None
            said = await asyncio.wait_for(proc.stderr.readline(), 60)
            assert said.startswith(b"watching live"), said
        clip = make_video(seconds=6, width=640, height=360)
        r = await cli("upload", str(clip), "--json")
        assert r.code == OK, r.stderr
        vid = r.json()[0]["video"]["id"]

        assert watcher.stdout is not None
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            line = await asyncio.wait_for(watcher.stdout.readline(), deadline - time.monotonic())
            assert line, (await watcher.stderr.read()).decode() if watcher.stderr else "watcher ended"
            job = json.loads(line)
            seen.append(job)
            if job["kind"] == "transcode" and job["status"] == "succeeded":
                break
        # the person's watcher has its own socket: wait for its line of the same end before stopping it
        assert reader.stdout is not None
        while time.monotonic() < deadline:
            line = await asyncio.wait_for(reader.stdout.readline(), deadline - time.monotonic())
            assert line, "the person's watcher ended"
            lines.append(line)
            if line.startswith(seen[-1]["id"][:8].encode()) and b" succeeded " in line:
                break
    finally:
        for proc in (watcher, reader):
            proc.terminate()
        await watcher.wait()
        rest, _ = await reader.communicate()
    shown = b"".join(lines) + rest
    transcode = [j for j in seen if j["kind"] == "transcode"]
    assert transcode and transcode[-1]["status"] == "succeeded", seen
    # live: it showed the job while it ran, not only its end, in order
    assert any(j["status"] in ("queued", "running") for j in transcode), transcode
    assert [j["seq"] for j in transcode] == sorted(j["seq"] for j in transcode)
    job_id = transcode[-1]["id"]
    # the person's view: the same job, a line each time it changed, ending succeeded at 100 %
    rows = [line.split() for line in shown.decode().splitlines() if line.startswith(job_id[:8])]
    assert [row[1] for row in rows] == ["transcode"] * len(rows), rows
    statuses = [row[2] for row in rows]
    assert statuses[-1] == "succeeded" and rows[-1][3] == "100%", rows
    assert {"queued", "running"} & set(statuses[:-1]), rows

    # --job: follow one job and exit with its outcome (it has ended: at once, 0)
    r = await cli("jobs", "--watch", "--job", job_id, "--json", timeout=60)
    assert r.code == OK, r.stderr
    assert json.loads(r.stdout.splitlines()[-1])["status"] == "succeeded"
    r = await cli("jobs", "--kind", "transcode", "--json")
    assert r.code == OK and r.json()[0]["id"] == job_id
    r = await cli("jobs", "--kind", "transcode")
    assert r.code == OK and job_id[:8] in r.stdout and "succeeded" in r.stdout

    # and the rendition comes back down, with a read-only key: a signed playback link only reads
    r = await cli("keys", "create", "viewer", "--scope", "read", "--json")
    assert r.code == OK, r.stderr
    target = tmp_path / "back.mp4"
    r = await cli("--api-key", r.json()["key"], "download", vid, "-o", str(target), "--json")
    assert r.code == OK, r.stderr
    assert r.json()["bytes"] == target.stat().st_size > 10_000


async def test_captions_with_translation_and_a_track_downloaded(
    e2e_stack: Stack, http: aiohttp.ClientSession, tmp_path: Path, speech_sample: SpeechSample
) -> None:
    cli = await _logged_in(e2e_stack, http, tmp_path)
    speech = tmp_path / "speech.mp4"
    speech.write_bytes(speech_sample.path.read_bytes())
    r = await cli("upload", str(speech), "--wait", "--json", timeout=900)
    assert r.code == OK, r.stderr
    vid = r.json()[0]["video"]["id"]

    r = await cli("captions", vid, "--language", "en", "--translate-to", "es", "--json", timeout=900)
    assert r.code == OK, r.stderr
    result = r.json()
    assert result["job"]["status"] == "succeeded" and result["job"]["kind"] == "captions"
    tracks = {t["language"]: t for t in result["tracks"]}
    assert set(tracks) == {"en", "es"} and all(t["cue_count"] > 0 for t in tracks.values())

    target = tmp_path / "speech.es.srt"
    r = await cli("download", vid, "--captions", "es", "--format", "srt", "-o", str(target), "--json")
    assert r.code == OK, r.stderr
    cues = list(srt.parse(target.read_text()))
    assert len(cues) == tracks["es"]["cue_count"] and all(c.content.strip() for c in cues)

    # a language the video has no track in
    r = await cli("download", vid, "--captions", "ko", "--json")
    assert r.code == NOT_FOUND and r.json()["error"]["code"] == "captions.not_found"


async def test_import_of_a_url_followed_live(
    e2e_stack: Stack, http: aiohttp.ClientSession, tmp_path: Path, clip_url: str
) -> None:
    cli = await _logged_in(e2e_stack, http, tmp_path)
    r = await cli("import", clip_url, "--title", "From the web", "--json")
    assert r.code == OK, r.stderr
    imported = r.json()
    assert imported["video_id"] and imported["status"] == "succeeded", imported
    r = await cli("jobs", "--kind", "import", "--json")
    assert r.json()[0]["status"] == "succeeded"
    r = await cli("import", clip_url.replace("/clip.mp4", "/missing.mp4"), "--json")
    assert r.code == FAILED, r.stderr
    failed = r.json()
    assert failed["status"] == "failed" and failed["error"]["code"] == "source.unavailable", failed
    assert "source.unavailable" in r.stderr  # said to a person too


async def test_analyze_a_url_then_a_batch_to_completion_with_its_export(
    e2e_stack: Stack, http: aiohttp.ClientSession, tmp_path: Path, platform: SubtitleServer
) -> None:
    cli = await _logged_in(e2e_stack, http, tmp_path)
    await _granted(cli)
    tag = uuid.uuid4().hex[:6]
    url = platform.add(f"cli-{tag}", talk("A talk for the command line."), title="Command line talk")
    r = await cli("analyze", url, "--detail", "brief", "--json", timeout=900)
    assert r.code == OK, r.stderr
    analysis = r.json()
    assert analysis["state"] == "succeeded" and analysis["result"]["summary"], analysis

    # the batch: three pages, and a fourth that answers 429 twice first (so it ends some seconds after the others,
    # while the batch runs with a throughput and an ETA to show)
    slow = SubtitleServer(limited_times=2)
    await slow.start()
    try:
        urls = [slow.add(f"b{i}", talk(f"Batch talk {i} of {tag}."), title=f"Batch {i}") for i in range(4)]
        urls[3] = slow.url("b3", "limited")
        listing = tmp_path / "videos.csv"
        listing.write_text("url\n" + "\n".join(urls) + "\n")
        export = tmp_path / "out.jsonl"
        r = await cli(
            "batch", str(listing), "--detail", "brief", "--export", str(export), "--json", timeout=900
        )
    finally:
        await slow.close()
    assert r.code == OK, r.stderr
    batch = r.json()
    assert batch["state"] == "done" and batch["total"] == 4, batch
    assert batch["counts"]["succeeded"] == 4, batch
    rows = [json.loads(line) for line in export.read_text().splitlines() if line.strip()]
    assert sorted(row["url"] for row in rows) == sorted(urls), rows
    assert all(row["state"] == "succeeded" and row["result"]["summary"] for row in rows), rows
    assert slow.hits["limited/b3"] == 3  # two 429s, then the page

    # the live progress (plain lines on a pipe; a bar on a terminal): items ended of the total, counts by state,
    # items/min and the server's ETA, while the batch runs, then 4/4
    progress = [
        re.match(rf"batch {batch['id'][:8]} (\d+)/(\d+) +\d+% (.*) ([\d.]+)/min eta ({CLOCK}|-:--:--)$", line)
        for line in _lines_of(r.stderr, f"batch {batch['id'][:8]} ")
    ]
    shown = [m for m in progress if m]
    assert len(shown) == len(progress) >= 3, r.stderr
    assert all(m[2] == "4" for m in shown[1:]), r.stderr
    running = [m for m in shown if 0 < int(m[1]) < 4]
    assert running, r.stderr
    assert all(re.fullmatch(CLOCK, m[5]) and "running=" in m[3] for m in running), r.stderr
    assert shown[-1][1] == "4" and shown[-1][3] == "succeeded=4" and shown[-1][5] == "0:00:00", r.stderr


def _record_search(stack: Stack, target: str, found: list[tuple[str, str, int]]) -> None:
    """The platform's answer to a search for ``target`` (the stack's ingest worker replays it instead of asking
    YouTube, tests/e2e/recorded_search.py): yt-dlp's flat playlist of ``found`` (page URL, title, views)."""
    entries = [
        {"_type": "url", "id": f"v{k}", "url": url, "title": title, "channel": "Cat TV", "view_count": views}
        for k, (url, title, views) in enumerate(found)
    ]
    info = {"_type": "playlist", "id": target, "extractor_key": "YoutubeSearch", "entries": entries}
    recording(stack.search_recordings, target).write_text(json.dumps(info))


async def test_search_then_rank_builds_a_top_n_short_renders_it_with_a_live_bar_and_downloads_it(
    e2e_stack: Stack, http: aiohttp.ClientSession, tmp_path: Path, platform: SubtitleServer
) -> None:
    cli = await _logged_in(e2e_stack, http, tmp_path)
    await _granted(cli)  # a render is paid
    # what the platform finds for "cat <tag>": three clips whose pages (on 127.0.0.1) ingest can import
    tag = uuid.uuid4().hex[:6]
    views = [500, 9000, 120]
    pages = [
        platform.add(
            f"cat-{tag}-{i}",
            talk(f"Cat clip {i}."),
            title=f"Cat clip {tag} {i}",
            media=make_video(seconds=2 + i, width=640, height=360),
        )
        for i in range(3)
    ]
    found = [(url, f"Cat clip {tag} {i}", views[i]) for i, url in enumerate(pages)]
    for limit in (5, 10):  # `search --limit 5`, and rank's own search (twice n, at least 10)
        _record_search(e2e_stack, f"ytsearch{limit}:cat {tag}", found)

    r = await cli("search", f"cat {tag}", "--limit", "5", "--sort", "views", "--json")
    assert r.code == OK, r.stderr
    searched = r.json()
    assert searched["status"] == "succeeded" and searched["query"] == f"cat {tag}", searched
    # the most viewed first, each with the platform's position
    assert [(x["url"], x["position"], x["view_count"]) for x in searched["results"]] == [
        (pages[1], 2, 9000),
        (pages[0], 1, 500),
        (pages[2], 3, 120),
    ]
    done = _lines_of(r.stderr, f"search {searched['job_id'][:8]} ")
    assert done and done[-1].startswith(f"search {searched['job_id'][:8]} 100% succeeded"), r.stderr
    r = await cli("search", f"cat {tag}", "--limit", "5")  # for people: a table
    assert r.code == OK and all(f"Cat clip {tag} {i}" in r.stdout for i in range(3)), r.stdout
    r = await cli("search", f"nothing recorded {tag}", "--json")  # as when the platform cannot be reached
    assert r.code == FAILED and r.json()["error"]["code"] == "source.unavailable", r.stdout

    # rank: its own search, the top 3 by views imported from the platform, rendered, downloaded
    short = tmp_path / "short.mp4"
    r = await cli(
        "rank", "CLI Top 3", "--query", f"cat {tag}", "-n", "3", "--order-by", "views", "--clip-seconds", "1",
        "--intro-seconds", "0.5", "--outro-seconds", "0.5", "-o", str(short), "--json", timeout=900,
    )  # fmt: skip
    assert r.code == OK, r.stderr
    result = r.json()
    project, render = result["project"], result["render"]
    assert project["title"] == "CLI Top 3" and "search_id" in project["source"], project
    ranked = sorted(project["items"], key=lambda i: i["rank"])
    assert [(i["source_url"], i["view_count"]) for i in ranked] == [
        (pages[1], 9000),
        (pages[0], 500),
        (pages[2], 120),
    ]
    assert project["options"]["intro_s"] == 0.5 and project["options"]["outro_s"] == 0.5
    assert render["status"] == "succeeded" and render["download_url"] and render["credits"] > 0, render
    assert result["path"] == str(short)
    video = next(s for s in ffprobe(short)["streams"] if s["codec_type"] == "video")
    assert (video["width"], video["height"]) == (1080, 1920)

    # it waited with a live bar of the render's stage, ending at 100 %
    lines = _lines_of(r.stderr, f"render {render['id'][:8]} ")
    assert lines and "100% succeeded" in lines[-1], r.stderr
    stages = {line.split()[3] for line in lines[:-1] if re.match(r"render \w+ \d+% \w+", line)}
    assert {"composing", "encoding"} & stages, lines
    assert _lines_of(r.stderr, f"{short.name} 100% "), r.stderr  # then the download's

    # the short is a render job of theirs
    r = await cli("jobs", "--kind", "render", "--json")
    assert r.code == OK and r.json()[0]["status"] == "succeeded", r.stdout
