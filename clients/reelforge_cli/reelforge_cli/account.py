"""login, logout, whoami, balance and keys: the account side of the CLI."""

from __future__ import annotations

import sys
from typing import Any

import click

from .app import api_command, cli
from .client import Api, CliError, ExitCode
from .config import Credentials
from .output import Output


@api_command(cli, "login")
@click.option("--email", help="the account's email (asked when missing)")
@click.option(
    "--password-stdin", is_flag=True, help="read the password from stdin (else it is asked, hidden)"
)
@click.option("--api-key", "key", help="log in with an API key (rf_live_…) instead of a password")
async def login(api: Api, out: Output, email: str | None, password_stdin: bool, key: str | None) -> None:
    """Log in with a password (tokens are kept and refreshed) or an API key; saved 0600 in the config dir."""
    if key:
        creds = Credentials(url=api.base_url, api_key=key.strip())
        method = "api_key"
    else:
        email = email or click.prompt("email", err=True)
        password = (
            sys.stdin.readline().rstrip("\n")
            if password_stdin
            else click.prompt("password", hide_input=True, err=True)
        )
        pair = await api.call(
            "POST", "/api/v1/auth/login", json_body={"email": email, "password": password}, auth=False
        )
        creds = Credentials(
            url=api.base_url, access_token=pair["access_token"], refresh_token=pair["refresh_token"]
        )
        method = "password"
    api.creds = creds
    me = await api.call("GET", "/api/v1/me")  # proves the key (a login already proved itself)
    api.creds = creds = Credentials(**{**creds.__dict__, "email": me["email"]})
    if api.store is None:
        raise CliError("no config directory to save the login in", exit_code=ExitCode.USAGE)
    api.store.save(creds)
    result = {
        "user_id": me["id"],
        "email": me["email"],
        "method": method,
        "url": api.base_url,
        "saved_to": str(api.store.path),
    }
    out.result(
        result, lambda r: out.note(f"logged in as {r['email']} ({r['method']}); saved to {r['saved_to']}")
    )


@api_command(cli, "logout")
async def logout(api: Api, out: Output) -> None:
    """End the saved login: the session is revoked at the gateway and the saved credentials are deleted."""
    revoked = False
    if api.creds.access_token and not api.creds.api_key:
        try:
            await api.call(
                "POST", "/api/v1/auth/logout", json_body={"refresh_token": api.creds.refresh_token}
            )
            revoked = True
        except CliError as e:
            if e.exit_code != ExitCode.AUTH:
                raise
    if api.store is not None:
        api.store.clear()
    out.result({"logged_out": True, "session_revoked": revoked}, lambda _: out.note("logged out"))


@api_command(cli, "whoami")
async def whoami(api: Api, out: Output) -> None:
    """The account the saved login (or --api-key) acts as."""
    me = await api.call("GET", "/api/v1/me")
    me["auth"] = "api_key" if api.creds.api_key else "password"
    out.result(me, lambda m: out.out.print(f"{m['email']} ({m['id']}, {m['auth']}) at {api.base_url}"))


@api_command(cli, "balance")
async def balance(api: Api, out: Output) -> None:
    """Credits: balance, held by running jobs, available."""
    b = await api.call("GET", "/api/v1/billing/balance")
    out.result(
        b, lambda b: out.table(["balance", "held", "available"], [[b["balance"], b["held"], b["available"]]])
    )


@cli.group()
def keys() -> None:
    """Personal API keys: create (shown once), list, revoke."""


def _key_rows(items: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [
            k["id"],
            k["name"],
            f"rf_live_{k['prefix']}_…",
            k["scope"],
            k["created_at"][:19],
            (k["last_used_at"] or "never")[:19],
        ]
        for k in items
    ]


_KEY_COLUMNS = ["id", "name", "key", "scope", "created", "last used"]


@api_command(keys, "create")
@click.argument("name")
@click.option(
    "--scope",
    type=click.Choice(["read", "full"]),
    default="read",
    show_default=True,
    help="read = GET/HEAD only",
)
async def keys_create(api: Api, out: Output, name: str, scope: str) -> None:
    """Create an API key (needs a password login). The key is printed this once: store it now."""
    key = await api.call("POST", "/api/v1/auth/keys", json_body={"name": name, "scope": scope})

    def show(k: dict[str, Any]) -> None:
        out.table(_KEY_COLUMNS, _key_rows([k]))
        out.out.print(k["key"])
        out.note(
            "this is the only time the key is shown; use it as `Authorization: Bearer <key>` or `reelforge login --api-key`"
        )

    out.result(key, show)


@api_command(keys, "list")
async def keys_list(api: Api, out: Output) -> None:
    """Your active API keys (never the keys themselves: their prefixes)."""
    items = (await api.call("GET", "/api/v1/auth/keys"))["items"]
    out.result(items, lambda ks: out.table(_KEY_COLUMNS, _key_rows(ks)))


@api_command(keys, "revoke")
@click.argument("key")
async def keys_revoke(api: Api, out: Output, key: str) -> None:
    """Revoke an API key by id or prefix; it is refused from the next request on."""
    items = (await api.call("GET", "/api/v1/auth/keys"))["items"]
    wanted = key.removeprefix("rf_live_").split("_")[0]
    matches = [k for k in items if key in (k["id"], k["prefix"]) or wanted == k["prefix"]]
    if len(matches) != 1:
        raise CliError(
            f"no active key with id or prefix {key!r}", exit_code=ExitCode.NOT_FOUND, code="api_key.not_found"
        )
    await api.call("DELETE", f"/api/v1/auth/keys/{matches[0]['id']}")
    out.result(
        {"revoked": matches[0]["id"], "prefix": matches[0]["prefix"]},
        lambda r: out.note(f"revoked {r['revoked']}"),
    )
