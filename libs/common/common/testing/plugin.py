"""The Reelforge pytest plugin (loaded by ``-p common.testing.plugin``): shared fixtures for every test suite."""

from __future__ import annotations

import pytest

from .auth import *  # noqa: F403
from .bus import *  # noqa: F403
from .db import *  # noqa: F403
from .gemini import *  # noqa: F403
from .media import *  # noqa: F403
from .process import *  # noqa: F403
from .speech import *  # noqa: F403
from .storage import *  # noqa: F403
from .subtitles import *  # noqa: F403
from .waiting import *  # noqa: F403


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The end-to-end tests first, the rest in collection order (a stable sort). They are the longest (up to 3 min
    each on a loaded machine), and xdist hands tests out in order: collected last, they left one worker finishing
    them while the other had nothing left; first, the short tests fill in at the end."""
    items.sort(key=lambda item: 0 if f"/{item.nodeid}".find("/tests/e2e/") >= 0 else 1)
