#!/usr/bin/env bash
# README command 1: install dependencies, build, and start the server on the
# embedded development config (config/dev.ini): self-signed TLS for the
# domain `_chatmail.localhost`, unprivileged ports, all state under ./var.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh --build-only
bash scripts/build.sh release
mkdir -p var
# An installed binary finds appversions.json beside itself; this one is told.
export CM_APPVERSIONS_FILE=${CM_APPVERSIONS_FILE:-$PWD/config/appversions.json}
exec build/chatmaild-server -c config/dev.ini "$@"
