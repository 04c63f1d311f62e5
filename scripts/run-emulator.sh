#!/usr/bin/env bash
# Installs what is missing, builds, and starts the local function emulator on $PORT (default 8080).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "==> Building (release, so that CLIP inference runs at full speed; the first build takes several minutes) and starting the emulator"
exec swift run -c release emulator "$@"
