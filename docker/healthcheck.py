"""Container health check: exit 0 when this process's ``/healthz`` answers 200 (stdlib only, no curl needed)."""

import importlib
import os
import sys
import urllib.request


def _port() -> str:
    """HTTP_PORT, else the service's own default (its settings class in ``<service>.config``)."""
    if os.environ.get("HTTP_PORT"):
        return os.environ["HTTP_PORT"]
    service = os.environ.get("REELFORGE_SERVICE", "")
    try:
        config = importlib.import_module(f"{service}.config")
        for value in vars(config).values():
            if isinstance(value, type) and value.__module__ == config.__name__ and hasattr(value, "from_env"):
                return str(value.from_env().http_port)
    except Exception as e:  # the probe must answer, not crash: fall through to the common default
        sys.stderr.write(f"healthcheck: no port from {service}.config: {e}\n")
    return "8000"


url = f"http://127.0.0.1:{_port()}/healthz"
try:
    with urllib.request.urlopen(url, timeout=float(os.environ.get("HEALTHCHECK_TIMEOUT_S", "3"))) as resp:
        sys.exit(0 if resp.status == 200 else 1)
except OSError as e:
    sys.stderr.write(f"{url}: {e}\n")
    sys.exit(1)
