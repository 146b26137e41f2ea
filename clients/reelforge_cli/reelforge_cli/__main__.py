"""``python -m reelforge_cli`` = ``reelforge``."""

from .main import cli

cli()
