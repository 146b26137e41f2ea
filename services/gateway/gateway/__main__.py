"""``python -m gateway api|migrate|keys rotate|keys list|keys prune``."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from common.service import main_exit, service_entry
from common.settings import ServiceSettings

from .app import create_app
from .config import GatewaySettings
from .keys import KeyRing, generate_key


async def keys_command(settings: ServiceSettings, args: argparse.Namespace) -> int:
    """Manage the signing keys in ``GATEWAY_KEYS_DIR``."""
    assert isinstance(settings, GatewaySettings)
    directory = Path(settings.gateway_keys_dir)
    ring = KeyRing(directory)
    ring.load()
    if args.action == "rotate":
        kid = generate_key(directory)
        print(json.dumps({"active": kid, "directory": str(directory)}))
        return 0
    if args.action == "list":
        active = ring.active.kid if ring.kids else None
        print(json.dumps({"active": active, "kids": sorted(ring.kids)}))
        return 0
    # prune: delete keys that no unexpired token can name any more
    pruned = ring.prunable(now=time.time(), token_ttl_s=settings.access_token_ttl_s)
    for kid in pruned:
        ring.delete(kid)
    print(json.dumps({"pruned": pruned}))
    return 0


def _configure_keys(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        choices=["rotate", "list", "prune"],
        help="rotate: add a key and sign with it; prune: delete keys no live token uses",
    )


main = service_entry(
    __file__,
    GatewaySettings,
    create_app,
    commands={"keys": (keys_command, _configure_keys)},
)


if __name__ == "__main__":
    main_exit(main())
