"""The ``reelforge`` console script: the group and every command module registered on it."""

from __future__ import annotations

from . import account, ai, jobs, media
from .app import cli

__all__ = ["account", "ai", "cli", "jobs", "media"]
