"""``python -m streaming api|worker|migrate|import-bucket``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from common.service import main_exit, run_service

from .app import create_app
from .bucket_import import add_flags, import_bucket_command
from .config import StreamingSettings

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def main(argv: Sequence[str] | None = None) -> int:
    """Run a streaming command."""
    return run_service(
        settings=StreamingSettings.from_env(),
        create_app=create_app,
        migrations_dir=MIGRATIONS,
        argv=argv,
        commands={"import-bucket": (import_bucket_command, add_flags)},
    )


if __name__ == "__main__":
    main_exit(main())
