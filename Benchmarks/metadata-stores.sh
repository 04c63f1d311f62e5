#!/usr/bin/env bash
# The metadata-store benchmark (a command, not a test): each store operation a request makes
# (create image, list page, count, key verify) on a SQLite file and on Google's Firestore
# emulator, measured in one run (Benchmarks/MetadataBenchmarks/main.swift). The emulator is
# started on a private port by scripts/test-servers.sh. CONFIGURATION=release for a release build.
#   Benchmarks/metadata-stores.sh [ITERATIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TEST_FIRESTORE_EMULATOR_HOST:-}" ]; then
    swift build -c "${CONFIGURATION:-debug}" --product metadata-bench >/dev/null
    exec scripts/test-servers.sh "$0" "$@"
fi
"$(swift build -c "${CONFIGURATION:-debug}" --show-bin-path)/metadata-bench" "$@"
