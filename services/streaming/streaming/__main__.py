"""``python -m streaming api|worker|migrate|import-bucket``."""

from __future__ import annotations

from common.service import main_exit, service_entry

from .app import create_app
from .bucket_import import add_flags, import_bucket_command
from .config import StreamingSettings

main = service_entry(
    __file__,
    StreamingSettings,
    create_app,
    commands={"import-bucket": (import_bucket_command, add_flags)},
)


if __name__ == "__main__":
    main_exit(main())
