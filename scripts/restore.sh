#!/usr/bin/env bash
# Restores a backup made by scripts/backup.sh into the data folder (DATA_DIR, default ./data;
# or DATABASE_PATH and BLOB_DIR), which must hold no data yet; then start the emulator on it.
# Usage: scripts/restore.sh FOLDER
# Builds and uses the emulator binary of CONFIGURATION (release by default, as
# scripts/run-emulator.sh). Relative paths are taken from the current folder.
set -euo pipefail
source "$(dirname "$0")/lib/caller-paths.sh"
[ $# -eq 1 ] || { echo "usage: scripts/restore.sh FOLDER" >&2; exit 64; }
folder=$(caller_path "$1")
cd "$(dirname "$0")/.."
configuration=${CONFIGURATION:-release}
bin=$(swift build -c "$configuration" --show-bin-path)
swift build -c "$configuration" --product emulator >&2
exec "$bin/emulator" restore "$folder"
