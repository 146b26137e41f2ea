"""Where the CLI keeps its credentials: ``credentials.json`` in the user's config dir, mode 0600."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import click

APP_NAME = "reelforge"
DEFAULT_URL = "http://127.0.0.1:8080"
FILE_NAME = "credentials.json"


def config_dir(override: str | None = None) -> Path:
    """``--config-dir`` / ``REELFORGE_CONFIG_DIR``, else the platform's (``$XDG_CONFIG_HOME/reelforge`` on Linux)."""
    return Path(override) if override else Path(click.get_app_dir(APP_NAME))


@dataclass(frozen=True)
class Credentials:
    """A gateway URL and how to authenticate there: an API key, or a login's token pair."""

    url: str = DEFAULT_URL
    email: str = ""
    api_key: str = ""
    access_token: str = ""
    refresh_token: str = ""

    @property
    def logged_in(self) -> bool:
        """Whether there is anything to authenticate with."""
        return bool(self.api_key or self.access_token or self.refresh_token)

    def access_expires_in(self) -> float:
        """Seconds until the access token expires (read from its payload; 0 when unknown or none)."""
        try:
            payload = self.access_token.split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            return float(claims["exp"]) - time.time()
        except (IndexError, ValueError, KeyError, TypeError):
            return 0.0

    def with_tokens(self, access_token: str, refresh_token: str) -> Credentials:
        """These credentials with a new token pair."""
        return replace(self, access_token=access_token, refresh_token=refresh_token)


class CredentialStore:
    """Reads and writes ``credentials.json`` atomically; the file is created 0600 and its directory 0700."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / FILE_NAME

    def load(self) -> Credentials:
        """The saved credentials (empty ones when there are none or the file is unreadable)."""
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return Credentials()
        known = {f.name for f in fields(Credentials)}
        return Credentials(**{k: str(v) for k, v in data.items() if k in known})

    def save(self, creds: Credentials) -> None:
        """Replace the file: written to a 0600 temp file in the same directory, then renamed over it."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".credentials-")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(asdict(creds), f, indent=2)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def clear(self) -> None:
        """Forget the credentials (logout)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
