"""The Reelforge pytest plugin (loaded by ``-p common.testing.plugin``): shared fixtures for every test suite."""

from __future__ import annotations

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
