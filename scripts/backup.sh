#!/usr/bin/env bash
# Backs up the emulator's data folder (DATA_DIR, default ./data; or DATABASE_PATH and BLOB_DIR)
# into FOLDER while the emulator serves: a consistent copy of the SQLite database (SQLite's online
# backup: metadata, outbox and the embedded vectors), then the originals and thumbnails it names.
# FOLDER must be new or empty. Usage: scripts/backup.sh FOLDER
# Builds and uses the emulator binary of CONFIGURATION (release by default, as
# scripts/run-emulator.sh). Relative paths are taken from the current folder.
set -euo pipefail
source "$(dirname "$0")/lib/caller-paths.sh"
[ $# -eq 1 ] || { echo "usage: scripts/backup.sh FOLDER" >&2; exit 64; }
folder=$(caller_path "$1")
cd "$(dirname "$0")/.."
configuration=${CONFIGURATION:-release}
bin=$(swift build -c "$configuration" --show-bin-path)
swift build -c "$configuration" --product emulator >&2
exec "$bin/emulator" backup "$folder"
