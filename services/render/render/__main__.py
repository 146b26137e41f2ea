"""``python -m render api|worker|migrate``."""

from __future__ import annotations

from common.service import main_exit, service_entry

from .app import create_app
from .config import RenderSettings

main = service_entry(__file__, RenderSettings, create_app)

if __name__ == "__main__":
    main_exit(main())
