"""``python -m captions api|worker|migrate``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from common.service import main_exit, run_service

from .app import create_app
from .config import CaptionsSettings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def main(argv: Sequence[str] | None = None) -> int:
    """Run a captions command."""
    return run_service(
        settings=CaptionsSettings.from_env(), create_app=create_app, migrations_dir=MIGRATIONS, argv=argv
    )


if __name__ == "__main__":
    main_exit(main())
