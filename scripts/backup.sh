#!/usr/bin/env bash
# Backs up the emulator's data folder (DATA_DIR, default ./data; or DATABASE_PATH and BLOB_DIR)
# into FOLDER while the emulator serves: a consistent copy of the SQLite database (SQLite's online
# backup: metadata, outbox and the embedded vectors), then the originals and thumbnails it names.
# FOLDER must be new or empty. Usage: scripts/backup.sh FOLDER
# Builds and runs the emulator of CONFIGURATION (release by default). Relative paths are taken
# from the current folder.
set -euo pipefail
source "$(dirname "$0")/lib/caller-paths.sh"
source "$(dirname "$0")/lib/emulator-command.sh"
[ $# -eq 1 ] || { echo "usage: scripts/backup.sh FOLDER" >&2; exit 64; }
emulator_command backup "$1"
