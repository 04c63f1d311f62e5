#!/usr/bin/env bash
# Installs what is missing, builds, and starts the local function emulator on $PORT (default 8080),
# in the repository's root (where it reads .env and keeps ./data unless DATA_DIR says otherwise; a
# relative DATA_DIR is taken from the current folder). Arguments go to the emulator
# (`emulator --help`). CONFIGURATION=debug runs the debug build instead of the release build (which
# is the default, so that CLIP inference runs at full speed).
set -euo pipefail
source "$(dirname "$0")/lib/caller-paths.sh"
cd "$(dirname "$0")/.."
scripts/setup.sh
configuration=${CONFIGURATION:-release}
echo "==> Building the emulator ($configuration build; the first release build from a fresh clone takes about 10 minutes on 2 cores, later ones seconds)"
swift build -c "$configuration" --product emulator
echo "==> Starting the emulator; it prints 'Image API emulator listening on …' once it is ready"
exec "$(swift build -c "$configuration" --show-bin-path)/emulator" "$@"
