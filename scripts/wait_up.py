#!/usr/bin/env python3
"""Print "Reelforge is up: URL" once the gateway's /healthz answers 200 (`make up` runs it beside honcho).

Standard library only (it runs before anything else is known to work). Polls ``URL/healthz`` every ``--interval``
seconds; exits 0 after printing, 1 after ``--timeout`` seconds without an answer (saying so on stderr), and 0
silently as soon as ``--watch-pid`` (the shell running honcho) is gone: Ctrl-C stopped the stack, or a service
failed to start and honcho stopped them all.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import urllib.error
import urllib.request


def answers(url: str, timeout_s: float) -> bool:
    """Whether ``url`` answers 200 now."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return int(resp.status) == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def alive(pid: int) -> bool:
    """Whether process ``pid`` still exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv: list[str] | None = None) -> int:
    """Poll, then print; the exit status says whether the URL answered."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", default="http://127.0.0.1:8080")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after this many seconds")
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between polls")
    parser.add_argument("--watch-pid", type=int, default=0, help="stop quietly when this process is gone")
    args = parser.parse_args(argv)
    base = args.url.rstrip("/")
    deadline = time.monotonic() + args.timeout
    while True:
        if args.watch_pid and not alive(args.watch_pid):
            return 0
        if answers(f"{base}/healthz", timeout_s=max(0.1, min(2.0, args.interval * 4))):
            print(f"Reelforge is up: {base}", flush=True)
            return 0
        if time.monotonic() >= deadline:
            print(f"Reelforge did not answer on {base}/healthz within {args.timeout:g} s", file=sys.stderr)
            return 1
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
