"""The CLI's pieces that need no gateway: the credentials file, pushes applied in order, HLS and CSV parsing."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner
from yarl import URL

from reelforge_cli.ai import read_items
from reelforge_cli.client import CliError, ExitCode, exit_code_for
from reelforge_cli.config import Credentials, CredentialStore
from reelforge_cli.live import JobBoard
from reelforge_cli.main import cli
from reelforge_cli.media import best_variant, media_parts


def test_credentials_are_written_0600_in_a_0700_directory_and_replaced_whole(tmp_path: Path) -> None:
    store = CredentialStore(tmp_path / "cfg")
    assert store.load() == Credentials()
    store.save(Credentials(url="http://gw", email="a@example.com", refresh_token="rft_x"))
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700
    store.save(Credentials(url="http://gw", api_key="rf_live_abc"))
    assert store.load() == Credentials(url="http://gw", api_key="rf_live_abc")
    assert [p.name for p in store.directory.iterdir()] == ["credentials.json"]  # no temp files left
    store.clear()
    assert not store.path.exists() and not store.load().logged_in


def test_pushes_out_of_order_never_move_a_job_back() -> None:
    board = JobBoard()
    job = {"id": "j", "status": "running", "seq": 3, "progress": 40}
    assert board.apply(job)
    assert not board.apply({**job, "seq": 2, "progress": 10})
    assert board.apply({**job, "status": "succeeded", "seq": 2, "progress": 100})  # an end always wins
    assert not board.apply({**job, "status": "running", "seq": 9})
    assert board.all_ended(["j"]) and not board.all_ended(["j", "k"])


def test_the_best_variant_and_its_parts_keep_the_playback_token() -> None:
    base = URL("http://gw/play/v1/master.m3u8?token=t")
    master = (
        '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,CODECS="avc1.64001e,mp4a.40.2"\n'
        "360p/index.m3u8?token=t\n#EXT-X-STREAM-INF:BANDWIDTH=2500000,RESOLUTION=1280x720\n720p/index.m3u8?token=t\n"
    )
    variant = best_variant(master, base)
    assert str(variant) == "http://gw/play/v1/720p/index.m3u8?token=t"
    playlist = (
        '#EXTM3U\n#EXT-X-MAP:URI="init.mp4?token=t"\n#EXTINF:2.0,\nseg_00001.m4s?token=t\n#EXT-X-ENDLIST\n'
    )
    assert [str(u) for u in media_parts(playlist, variant)] == [
        "http://gw/play/v1/720p/init.mp4?token=t",
        "http://gw/play/v1/720p/seg_00001.m4s?token=t",
    ]


def test_a_batch_csv_takes_the_first_column_and_skips_a_header(tmp_path: Path) -> None:
    f = tmp_path / "videos.csv"
    f.write_text("url,note\nhttps://youtu.be/a,x\n\n# skipped\n0b9e4c52-4a1a-4c1e-9d1b-0c5d3f5a8e11,y\n")
    assert read_items(f) == [
        {"url": "https://youtu.be/a"},
        {"video_id": "0b9e4c52-4a1a-4c1e-9d1b-0c5d3f5a8e11"},
    ]
    f.write_text("https://youtu.be/a\nnot a url\n")
    with pytest.raises(CliError) as e:
        read_items(f)
    assert e.value.exit_code == ExitCode.USAGE


def test_exit_codes_follow_the_problem() -> None:
    assert exit_code_for(401, "auth.api_key_revoked") == ExitCode.AUTH
    assert exit_code_for(403, "auth.insufficient_scope") == ExitCode.FORBIDDEN
    assert exit_code_for(409, "credits.insufficient") == ExitCode.NO_CREDITS
    assert exit_code_for(422, "media.unreadable") == ExitCode.FAILED
    assert exit_code_for(503, "upstream.unavailable") == ExitCode.UNAVAILABLE


def test_not_logged_in_is_an_authentication_failure_with_a_json_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--config-dir", str(tmp_path), "balance", "--json"])
    assert result.exit_code == ExitCode.AUTH
    assert '"code": "auth.not_logged_in"' in result.stdout


def test_every_command_has_json(tmp_path: Path) -> None:
    def commands(group, prefix=()):  # type: ignore[no-untyped-def]
        for name, cmd in group.commands.items():
            if hasattr(cmd, "commands"):
                yield from commands(cmd, (*prefix, name))
            else:
                yield (*prefix, name), cmd

    found = dict(commands(cli))
    assert {("upload",), ("import",), ("jobs",), ("keys", "create"), ("batch",), ("rank",)} <= set(found)
    for name, cmd in found.items():
        assert any("--json" in p.opts for p in cmd.params), name


def _documented_exit_codes(doc: Path) -> dict[int, str]:
    """The ``| code | meaning |`` table under ``## Exit codes`` of ``doc``."""
    section = doc.read_text().split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|") for line in section.splitlines() if line.startswith("| ")]
    return {int(r[1]): r[2].strip() for r in rows if r[1].strip().isdigit()}


def test_the_documented_exit_codes_are_the_cli_s() -> None:
    """docs/cli.md's table, the CLI README's and --help's list name exactly the codes the CLI exits with."""
    root = Path(__file__).resolve().parents[3]
    documented = _documented_exit_codes(root / "docs" / "cli.md")
    assert set(documented) == {int(c) for c in ExitCode}
    assert set(_documented_exit_codes(Path(__file__).resolve().parents[1] / "README.md")) == set(documented)
    help_text = " ".join(CliRunner().invoke(cli, ["--help"]).stdout.split())
    listed = help_text.split("Exit codes:", 1)[1].split("(docs/cli.md)", 1)[0]
    assert {int(n) for n in re.findall(r"(\d+) [a-z]", listed)} == set(documented), listed


def test_plain_progress_writes_a_line_per_change_and_the_end(tmp_path: Path) -> None:
    from rich.console import Console

    from reelforge_cli.output import Output, ProgressMode

    out = Output(as_json=True, progress=ProgressMode.PLAIN)
    out.err = Console(file=(tmp_path / "err").open("w"), width=200)
    with out.count_progress() as progress:
        task = progress.add_task("batch 1234abcd", total=4, stage="queued=4", eta="-:--:--")
        progress.update(task, completed=0, stage="queued=4", eta="-:--:--")  # nothing new: no line
        progress.update(task, completed=3, stage="running=1 succeeded=3", eta="0:00:04")
        progress.update(task, completed=4, stage="succeeded=4", eta="0:00:00")
    out.err.file.close()
    assert (tmp_path / "err").read_text().splitlines() == [
        "batch 1234abcd 0/4 0% queued=4 eta -:--:--",
        "batch 1234abcd 3/4 75% running=1 succeeded=3 eta 0:00:04",
        "batch 1234abcd 4/4 100% succeeded=4 eta 0:00:00",
    ]
