#!/usr/bin/env bash
# Get this checkout ready to run and test: system packages, uv, the workspace venv, the web app,
# Postgres/RabbitMQ/Redis.
#
#   scripts/bootstrap.sh [--env-file .env]
#
# Idempotent: every step checks before it acts, so a second run takes a few seconds.
# Debian/Ubuntu (apt); runs apt through sudo when not root. Options are passed to scripts/ensure-services.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

# ffmpeg: benchmark baseline and ffprobe in tests; fonts-noto-cjk: Korean text in renders;
# espeak-ng: generated speech fixtures; prometheus: promtool checks the alert rules in tests (the server is
# not started); chromium: the browser tests drive it (tests/e2e/test_web_app.py). (Media work itself uses PyAV,
# which ships its own FFmpeg.)
APT_PACKAGES=(ffmpeg fonts-noto-cjk espeak-ng prometheus chromium)

# 1. System packages. Node.js and npm build the web app: Debian's, unless a node and npm are already on PATH
# (e.g. NodeSource's nodejs, which bundles npm and conflicts with Debian's npm package).
apt_install "${APT_PACKAGES[@]}"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    apt_install nodejs npm
fi
say apt "ok (${APT_PACKAGES[*]}, node $(node --version))"

# 2. uv (https://docs.astral.sh/uv/), from PyPI when absent.
# scripts/uv finds it on PATH, in ~/.local/bin or beside python3, so a new install is usable at once.
export PATH="$HOME/.local/bin:$PATH"
uv=scripts/uv
if ! "$uv" --version >/dev/null 2>&1; then
    command -v python3 >/dev/null 2>&1 || apt_install python3
    python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
    say uv "installing with pip"
    # Debian's system Python refuses global pip installs (PEP 668); a --user install only adds ~/.local/bin/uv.
    python3 -m pip install -q uv 2>/dev/null ||
        python3 -m pip install -q --user --break-system-packages uv ||
        die "could not install uv; see https://docs.astral.sh/uv/getting-started/installation/"
    "$uv" --version >/dev/null 2>&1 || die "uv was installed but scripts/uv cannot find it"
fi
say uv "$("$uv" --version)"

# 3. The workspace venv (.venv): every service and lib, plus the dev group, exactly as locked.
if [ -f uv.lock ]; then
    "$uv" sync --all-packages --frozen --quiet
    say venv ".venv in sync with uv.lock"
else
    "$uv" sync --all-packages --quiet
    say venv ".venv synced (no uv.lock yet: resolved and wrote one)"
fi
mkdir -p var/storage var/tmp var/keys
# the CLI on the user's PATH (~/.local/bin, where pip and uv put commands), pointing into this checkout's venv
if [ -x .venv/bin/reelforge ] && mkdir -p "$HOME/.local/bin" 2>/dev/null; then
    ln -sfn "$PWD/.venv/bin/reelforge" "$HOME/.local/bin/reelforge" && say cli "reelforge → $HOME/.local/bin/reelforge"
fi

# 4. The web app (web/dist, served by the gateway at /): rebuilt when its sources, its lock file or the API
# document changed since the last build. npm ci installs exactly package-lock.json; nothing is fetched at run time.
# The API document web/openapi.json is committed (like a lock file: a change to the API shows in review) and the
# client is typed from it. It is not rewritten here: when some Python changed since the last check, it is compared
# with what the code generates (seconds: it imports every service), and a stale one stops `make up` and `make test`
# here — a changed API breaks the build, not the user's browser. `make openapi` rewrites it;
# tests/architecture/test_committed_openapi.py checks the same on CI.
if [ ! -f var/openapi.stamp ] || [ -n "$(find libs services -name '*.py' -newer var/openapi.stamp -print -quit)" ]; then
    "$uv" run --frozen python scripts/gen_openapi.py var/openapi.json >/dev/null
    if cmp -s var/openapi.json web/openapi.json; then
        touch var/openapi.stamp
    else
        die "web/openapi.json is not what the API generates (the web client would be typed from a stale API): run \`make openapi\`, rebuild, and commit it"
    fi
fi
# Every file under web/ is an input of the build (package.json and its lock, the pages index.html and embed.html
# that vite.config.ts names as entry points, the config, the API document, src/, public/ if any), except what the
# build, npm or the browser tests write (dist/, node_modules/, the types generated into src/api/schema.d.ts,
# test-results/) and the browser tests themselves (tests/): a page or a dependency added later is covered too.
web_inputs_newer_than() {
    find web \( -path web/dist -o -path web/node_modules -o -path web/tests -o -path web/test-results \
        -o -path web/src/api/schema.d.ts \) -prune -o -type f -newer "$1" -print -quit
}
if [ -f web/dist/index.html ] && [ -z "$(web_inputs_newer_than web/dist/index.html)" ]; then
    say web "web/dist is current"
else
    say web "building web/dist"
    (cd web && { [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund --loglevel=error; } &&
        npm run build --silent >/dev/null) || die "the web app did not build (cd web && npm ci && npm run build)"
    say web "built web/dist"
fi

# 5. Postgres, RabbitMQ, Redis.
scripts/ensure-services.sh "$@"
