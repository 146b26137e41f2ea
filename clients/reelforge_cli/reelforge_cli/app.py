"""The ``reelforge`` command group, its global options, and how a command runs (``api_command``)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import click

from .client import NETWORK_ERRORS, Api, CliError, ExitCode, unreachable
from .config import Credentials, CredentialStore
from .config import config_dir as resolve_config_dir
from .output import Output, ProgressMode

Handler = Callable[..., Awaitable[int | None]]


@dataclass(frozen=True)
class Globals:
    """The group's options: where the gateway is, an API key to use instead of the saved login, the config dir."""

    url: str | None
    api_key: str | None
    store: CredentialStore
    progress: ProgressMode = ProgressMode.AUTO

    def credentials(self) -> Credentials:
        """The saved credentials, overridden by ``--url`` / ``--api-key`` (or their environment variables)."""
        creds = self.store.load()
        if self.url:
            creds = replace(creds, url=self.url)
        if self.api_key:
            creds = Credentials(url=creds.url, api_key=self.api_key)
        return creds


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option(
    "--url", envvar="REELFORGE_URL", help="the gateway (default: the saved one, else http://127.0.0.1:8080)"
)
@click.option("--api-key", envvar="REELFORGE_API_KEY", help="use this API key instead of the saved login")
@click.option(
    "--config-dir",
    envvar="REELFORGE_CONFIG_DIR",
    help="where credentials.json is kept (default: $XDG_CONFIG_HOME/reelforge, i.e. ~/.config/reelforge)",
)
@click.option(
    "--progress",
    envvar="REELFORGE_PROGRESS",
    type=click.Choice([m.value for m in ProgressMode]),
    default=ProgressMode.AUTO.value,
    show_default=True,
    help="progress on stderr: a live bar (auto: on a terminal), plain lines (auto: otherwise), or none",
)
@click.version_option(package_name="reelforge-cli")
@click.pass_context
def cli(
    ctx: click.Context, url: str | None, api_key: str | None, config_dir: str | None, progress: str
) -> None:
    """reelforge: upload, import, caption, analyse and rank videos on a Reelforge gateway.

    Every command takes --json (results as JSON on stdout; progress stays on stderr). Exit codes: 0 ok,
    1 failed, 2 usage, 3 authentication, 4 forbidden, 5 not found, 6 rate limited, 7 no credits,
    8 unavailable, 130 interrupted (docs/cli.md).
    """
    ctx.obj = Globals(
        url=url,
        api_key=api_key,
        store=CredentialStore(resolve_config_dir(config_dir)),
        progress=ProgressMode(progress),
    )


def api_command(group: click.Group, name: str, **kw: Any) -> Callable[[Handler], click.Command]:
    """Register ``async def handler(api, out, **params)`` as command ``name`` with a ``--json`` flag.

    The handler's return value (or a ``CliError``'s) is the exit code; the HTTP session lives as long as it runs.
    """

    def decorate(handler: Handler) -> click.Command:
        def command(**params: Any) -> None:
            g = click.get_current_context().find_object(Globals)
            assert g is not None
            out = Output(as_json=params.pop("as_json"), progress=g.progress)
            raise SystemExit(run(g, out, handler, params))

        command.__name__ = handler.__name__
        command.__doc__ = handler.__doc__
        command.__click_params__ = list(getattr(handler, "__click_params__", []))  # type: ignore[attr-defined]
        with_json = click.option(
            "--json", "as_json", is_flag=True, help="print the result as JSON on stdout (for scripts)"
        )(command)
        return group.command(name, **kw)(with_json)

    return decorate


def run(g: Globals, out: Output, handler: Handler, params: dict[str, Any]) -> int:
    """Run ``handler`` with an ``Api`` on the configured gateway; its exit code."""

    async def main() -> int | None:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=300)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            return await handler(Api(g.credentials(), g.store, session), out, **params)

    try:
        return int(asyncio.run(main()) or 0)
    except CliError as e:
        out.error(e)
        return int(e.exit_code)
    except NETWORK_ERRORS as e:
        out.error(unreachable(g.credentials().url, e))
        return int(ExitCode.UNAVAILABLE)
    except KeyboardInterrupt:
        out.error(CliError("interrupted", exit_code=ExitCode.INTERRUPTED))
        return int(ExitCode.INTERRUPTED)
