"""``python scripts/gen_deploy.py [--check]``: write the deployment files (the generator is ``scripts/deploygen``)."""

from __future__ import annotations

import sys

from deploygen import main

if __name__ == "__main__":
    sys.exit(main())
