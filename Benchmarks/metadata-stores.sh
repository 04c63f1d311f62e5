#!/usr/bin/env bash
# The metadata-store benchmark (a command, not a test): each store operation a request makes
# (create image, list page, count, key verify) on a SQLite file, on Google's Firestore emulator
# and on PostgreSQL; upload commits per second with 8 clients and commit → relay pickup with
# LISTEN/NOTIFY against polling, SQLite against PostgreSQL; all measured in one run
# (Benchmarks/MetadataBenchmarks/main.swift). The emulator and PostgreSQL are started on private
# ports by scripts/test-servers.sh. CONFIGURATION=release for a release build.
#   Benchmarks/metadata-stores.sh [ITERATIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TEST_FIRESTORE_EMULATOR_HOST:-}" ] || [ -z "${TEST_DATABASE_URL:-}" ]; then
    swift build -c "${CONFIGURATION:-debug}" --product metadata-bench >/dev/null
    TEST_SERVERS="firestore postgres" exec scripts/test-servers.sh "$0" "$@"
fi
"$(swift build -c "${CONFIGURATION:-debug}" --show-bin-path)/metadata-bench" "$@"
