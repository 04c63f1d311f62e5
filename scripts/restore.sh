#!/usr/bin/env bash
# Restores a backup made by scripts/backup.sh into the data folder (DATA_DIR, default ./data;
# or DATABASE_PATH and BLOB_DIR), which must hold no data yet; then start the emulator on it.
# Usage: scripts/restore.sh FOLDER
# Builds and runs the emulator of CONFIGURATION (release by default). Relative paths are taken
# from the current folder.
set -euo pipefail
source "$(dirname "$0")/lib/caller-paths.sh"
source "$(dirname "$0")/lib/emulator-command.sh"
[ $# -eq 1 ] || { echo "usage: scripts/restore.sh FOLDER" >&2; exit 64; }
emulator_command restore "$1"
