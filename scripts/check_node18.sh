#!/usr/bin/env bash
# Build the web app with Node.js 18 (what a fresh Debian 12 gets from apt) without installing it: npx fetches the
# `node@18.19.0` package (a Node binary published on the npm registry: the version Debian 12 ships) and npm 9
# (Debian 12's; npm 11 itself needs Node 20), then a
# scratch copy of web/ is installed with --engine-strict (any dependency that declares it needs a newer Node fails
# here) and built with the committed API document. The checkout's web/node_modules and web/dist are not touched.
#
#     scripts/check_node18.sh          # `make check-node18`; about a minute with a warm npm cache
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

NODE_PKG=${NODE_PKG:-node@18.19.0}
NPM_PKG=${NPM_PKG:-npm@9}
scratch=$(mktemp -d "${TMPDIR:-/tmp}/reelforge-node18.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
cp -r web/index.html web/package.json web/package-lock.json web/openapi.json web/tsconfig.json web/vite.config.ts \
    web/src "$scratch"/
rm -f "$scratch/src/api/schema.d.ts"
started=$(date +%s)
(cd "$scratch" && npx --yes -p "$NODE_PKG" -p "$NPM_PKG" -c \
    'echo "node $(node --version), npm $(npm --version)" &&
     npm ci --engine-strict --no-audit --no-fund --loglevel=error &&
     npm run build --silent') || die "the web app did not build with $NODE_PKG (see above)"
[ -f "$scratch/dist/index.html" ] || die "no dist/index.html after the build"
say node18 "web app built with $NODE_PKG in $(( $(date +%s) - started )) s"
