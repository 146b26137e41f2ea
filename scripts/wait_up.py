#!/usr/bin/env python3
"""Print "Reelforge is up: URL" once every process answers /healthz (`make up` runs it beside honcho).

Standard library only (it runs before anything else is known to work). Polls ``URL/healthz`` and, with
``--procfile``, the ``/healthz`` of every process the Procfile starts (its ``HTTP_PORT`` on 127.0.0.1): the gateway
alone answering is not enough, since it answers 502 for a service that does not listen yet. Polls every
``--interval`` seconds; exits 0 after printing, 1 after ``--timeout`` seconds with a process still silent (naming
those on stderr), and 0 silently as soon as ``--watch-pid`` (the shell running honcho) is gone: Ctrl-C stopped the
stack, or a service failed to start and honcho stopped them all.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

_PORT = re.compile(r"\bHTTP_PORT=(\d+)\b")


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


def procfile_urls(path: Path) -> dict[str, str]:
    """The base URL of every process in a Procfile that sets ``HTTP_PORT`` (on 127.0.0.1), by process name."""
    urls: dict[str, str] = {}
    for line in path.read_text().splitlines():
        name, sep, command = line.partition(":")
        if not sep or line.lstrip().startswith("#"):
            continue
        port = _PORT.search(command)
        if port:
            urls[name.strip()] = f"http://127.0.0.1:{port.group(1)}"
    return urls


def main(argv: list[str] | None = None) -> int:
    """Poll, then print; the exit status says whether every process answered."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", nargs="?", default="http://127.0.0.1:8080")
    parser.add_argument("--procfile", type=Path, help="also wait for every process this Procfile starts")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after this many seconds")
    parser.add_argument("--interval", type=float, default=0.25, help="seconds between polls")
    parser.add_argument("--watch-pid", type=int, default=0, help="stop quietly when this process is gone")
    args = parser.parse_args(argv)
    base = args.url.rstrip("/")
    # by URL: the Procfile's gateway is usually ``url`` itself
    pending = {base: "gateway"} | {
        url: name for name, url in (procfile_urls(args.procfile) if args.procfile else {}).items()
    }
    poll_timeout_s = max(0.1, min(2.0, args.interval * 4))
    deadline = time.monotonic() + args.timeout
    while True:
        if args.watch_pid and not alive(args.watch_pid):
            return 0
        pending = {
            url: name for url, name in pending.items() if not answers(f"{url}/healthz", poll_timeout_s)
        }
        if not pending:
            print(f"Reelforge is up: {base}", flush=True)
            return 0
        if time.monotonic() >= deadline:
            silent = ", ".join(f"{name} ({url}/healthz)" for url, name in sorted(pending.items()))
            print(f"Reelforge did not answer within {args.timeout:g} s: {silent}", file=sys.stderr)
            return 1
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
