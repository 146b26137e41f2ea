#!/bin/sh
# `python -m $REELFORGE_SERVICE "$@"`: the image's CMD is `api`; run `worker` or `migrate` by passing it.
set -e
exec python -m "${REELFORGE_SERVICE:?REELFORGE_SERVICE is not set}" "$@"
