#!/usr/bin/env bash
# Get this checkout ready to run and test: system packages, uv, the workspace venv, Postgres/RabbitMQ/Redis.
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
# not started). (Media work itself uses PyAV, which ships its own FFmpeg.)
APT_PACKAGES=(ffmpeg fonts-noto-cjk espeak-ng prometheus)

# 1. System packages.
apt_install "${APT_PACKAGES[@]}"
say apt "ok (${APT_PACKAGES[*]})"

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

# 4. Postgres, RabbitMQ, Redis.
scripts/ensure-services.sh "$@"
