"""The gateway's HTTP API as the CLI uses it: authentication (API key or tokens, refreshed by itself), problems
turned into exit codes, 429s waited out, and streamed uploads and downloads."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from enum import IntEnum
from pathlib import Path
from typing import Any

import aiohttp

from .config import Credentials, CredentialStore

CHUNK = 256 * 1024
#: refresh the access token when it has less than this left (a long upload must not start on a dying token)
REFRESH_MARGIN_S = 300.0
MAX_RETRY_AFTER_S = 60.0


class ExitCode(IntEnum):
    """The CLI's exit codes (docs/cli.md)."""

    OK = 0
    FAILED = 1  # the operation failed: a job failed or was canceled, or the request was refused (4xx)
    USAGE = 2  # bad arguments (click's own)
    AUTH = 3  # not logged in, wrong password, invalid/expired/revoked token or API key (401)
    FORBIDDEN = 4  # authenticated but not allowed, e.g. a read-only API key (403)
    NOT_FOUND = 5  # no such video/job/key (404)
    RATE_LIMITED = 6  # still 429 after waiting Retry-After
    NO_CREDITS = 7  # not enough credits (credits.insufficient)
    UNAVAILABLE = 8  # the gateway or a service cannot be reached or failed (5xx, network)
    INTERRUPTED = 130  # Ctrl-C


class CliError(Exception):
    """A failure the CLI reports and exits with."""

    def __init__(self, message: str, *, exit_code: ExitCode = ExitCode.FAILED, code: str = "") -> None:
        super().__init__(message)
        self.message, self.exit_code, self.code = message, exit_code, code

    def as_json(self) -> dict[str, Any]:
        """The error as ``--json`` prints it."""
        return {"error": {"code": self.code or self.exit_code.name.lower(), "message": self.message}}


#: what a dropped, refused or stalled connection raises (the gateway unreachable, or gone mid-request)
NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ClientConnectionError,
    aiohttp.ClientPayloadError,
    TimeoutError,
)


def unreachable(url: str, error: BaseException) -> CliError:
    """A network failure (refused, dropped mid-request, timed out) as the CLI reports it: exit code 8."""
    return CliError(
        f"the connection to {url} failed: {str(error) or type(error).__name__}",
        exit_code=ExitCode.UNAVAILABLE,
    )


def exit_code_for(status: int, code: str) -> ExitCode:
    """The exit code of an HTTP error answer."""
    if code.startswith("credits.") or status == 402:
        return ExitCode.NO_CREDITS
    by_status = {
        401: ExitCode.AUTH,
        403: ExitCode.FORBIDDEN,
        404: ExitCode.NOT_FOUND,
        429: ExitCode.RATE_LIMITED,
    }
    if status in by_status:
        return by_status[status]
    return ExitCode.UNAVAILABLE if status >= 500 else ExitCode.FAILED


async def problem_of(resp: aiohttp.ClientResponse) -> CliError:
    """A ``CliError`` from an error answer (``application/problem+json`` or anything else)."""
    text = await resp.text(errors="replace")
    try:
        body = json.loads(text)
    except ValueError:
        body = {}
    code = str(body.get("code", "")) if isinstance(body, dict) else ""
    message = str(body.get("detail") or body.get("title") or "") if isinstance(body, dict) else ""
    message = message or text[:200] or resp.reason or f"HTTP {resp.status}"
    return CliError(
        f"{message} ({code or resp.status})", exit_code=exit_code_for(resp.status, code), code=code
    )


class Api:
    """One gateway: every request authenticated, the token pair refreshed and saved when it runs out."""

    def __init__(
        self, creds: Credentials, store: CredentialStore | None, session: aiohttp.ClientSession
    ) -> None:
        self.creds, self.store, self.session = creds, store, session
        self._refresh_lock = asyncio.Lock()

    @property
    def base_url(self) -> str:
        """The gateway's URL."""
        return self.creds.url.rstrip("/")

    def url(self, path: str) -> str:
        """An absolute URL of a gateway path."""
        return path if path.startswith(("http://", "https://")) else self.base_url + path

    def auth_headers(self) -> dict[str, str]:
        """``Authorization`` for the current credentials."""
        token = self.creds.api_key or self.creds.access_token
        return {"Authorization": f"Bearer {token}"} if token else {}

    async def ensure_fresh(self) -> None:
        """Refresh the token pair first if the access token is (nearly) expired; an API key needs nothing."""
        if self.creds.api_key:
            return
        if not self.creds.logged_in:
            raise CliError(
                "not logged in: run `reelforge login`", exit_code=ExitCode.AUTH, code="auth.not_logged_in"
            )
        if self.creds.access_expires_in() < REFRESH_MARGIN_S:
            await self.refresh(self.creds.access_token)

    async def refresh(self, stale_access_token: str) -> None:
        """Rotate the refresh token (once, even if several requests noticed) and save the new pair."""
        async with self._refresh_lock:
            if (
                self.creds.access_token != stale_access_token
                and self.creds.access_expires_in() > REFRESH_MARGIN_S
            ):
                return  # another request refreshed meanwhile: refresh tokens rotate, a second use would be theft
            if not self.creds.refresh_token:
                raise CliError("the session has expired: run `reelforge login`", exit_code=ExitCode.AUTH)
            async with self.session.post(
                self.url("/api/v1/auth/refresh"), json={"refresh_token": self.creds.refresh_token}
            ) as resp:
                if resp.status != 200:
                    error = await problem_of(resp)
                    error.message = (
                        f"the session could not be refreshed, run `reelforge login`: {error.message}"
                    )
                    raise error
                pair = await resp.json()
            self.creds = self.creds.with_tokens(pair["access_token"], pair["refresh_token"])
            if self.store is not None:
                self.store.save(self.creds)

    async def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        auth: bool = True,
    ) -> Any:
        """A JSON request; the decoded answer (None for 204). Retries once after a refresh, and after 429s."""
        if auth:
            await self.ensure_fresh()
        for attempt in range(4):
            sent_token = self.creds.access_token
            headers = self.auth_headers() if auth else {}
            async with self.session.request(
                method, self.url(path), json=json_body, params=params, headers=headers
            ) as resp:
                if resp.status < 400:
                    return None if resp.status == 204 else await resp.json(content_type=None)
                if resp.status == 401 and auth and not self.creds.api_key and attempt == 0:
                    await self.refresh(sent_token)
                    continue
                if resp.status == 429 and attempt < 3:
                    await asyncio.sleep(retry_after(resp))
                    continue
                raise await problem_of(resp)
        raise CliError("gave up after repeated refusals", exit_code=ExitCode.RATE_LIMITED)

    @asynccontextmanager
    async def stream(self, method: str, path: str, **kw: Any) -> AsyncIterator[aiohttp.ClientResponse]:
        """A request whose answer is read by the caller (downloads); an error answer raises ``CliError``."""
        await self.ensure_fresh()
        headers = {**self.auth_headers(), **kw.pop("headers", {})}
        async with self.session.request(method, self.url(path), headers=headers, **kw) as resp:
            if resp.status >= 400:
                raise await problem_of(resp)
            yield resp


def retry_after(resp: aiohttp.ClientResponse) -> float:
    """How long a 429 asks to wait (bounded)."""
    try:
        return min(MAX_RETRY_AFTER_S, max(1.0, float(resp.headers.get("Retry-After", "1"))))
    except ValueError:
        return 1.0


def multipart_upload(
    path: Path, *, fields: Mapping[str, str], on_chunk: Callable[[int], None]
) -> tuple[AsyncIterator[bytes], dict[str, str]]:
    """A ``multipart/form-data`` body of ``fields`` and the file (last), streamed from disk, with its exact length.

    Built by hand rather than with ``aiohttp.FormData`` so the request carries a Content-Length (the server can
    refuse an oversized upload before it is sent) while the file is read in chunks, never whole.
    """
    boundary = "reelforge-" + path.name.encode().hex()[:16] + str(path.stat().st_ino)
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    )
    filename = path.name.replace('"', "_").replace("\r", "_").replace("\n", "_")
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = len(head) + path.stat().st_size + len(tail)

    async def body() -> AsyncIterator[bytes]:
        yield head
        with path.open("rb") as f:
            while chunk := await asyncio.to_thread(f.read, CHUNK):
                on_chunk(len(chunk))
                yield chunk
        yield tail

    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}", "Content-Length": str(length)}
    return body(), headers
