#!/usr/bin/env bash
# Installs what is missing, builds, and starts the local function emulator on $PORT (default 8080).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "==> Building and starting the emulator (the first build takes several minutes)"
exec swift run emulator "$@"
