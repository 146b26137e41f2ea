"""``python -m streaming api|worker|migrate``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from common.service import main_exit, run_service

from .app import create_app
from .bucket_migration import add_flags, bucket_migrate_command
from .config import StreamingSettings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def main(argv: Sequence[str] | None = None) -> int:
    """Run a streaming command."""
    return run_service(
        settings=StreamingSettings.from_env(),
        create_app=create_app,
        migrations_dir=MIGRATIONS,
        argv=argv,
        commands={"migrate": (bucket_migrate_command, add_flags)},  # bucket migration (delivery half)
    )


if __name__ == "__main__":
    main_exit(main())
