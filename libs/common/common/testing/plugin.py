"""The Reelforge pytest plugin (loaded by ``-p common.testing.plugin``): shared fixtures for every test suite."""

from __future__ import annotations

from .auth import *  # noqa: F403
from .db import *  # noqa: F403
from .media import *  # noqa: F403

try:  # written in parallel by the bus and storage work; optional until they land
    from .bus import *  # noqa: F403
except ImportError:  # pragma: no cover
    pass
try:
    from .storage import *  # noqa: F403
except ImportError:  # pragma: no cover
    pass
try:
    from .waiting import *  # noqa: F403
except ImportError:  # pragma: no cover
    pass
