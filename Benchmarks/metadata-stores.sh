#!/usr/bin/env bash
# The metadata-store benchmark (a command, not a test): each store operation a request makes
# (create image, list page, count, key verify) on a SQLite file, on Google's Firestore emulator
# and on PostgreSQL; upload commits per second with 8 clients and commit → relay pickup with
# LISTEN/NOTIFY against polling, SQLite against PostgreSQL; all measured in one run
# (Benchmarks/MetadataBenchmarks/main.swift). The emulator and PostgreSQL are started on private
# ports by scripts/test-servers.sh. CONFIGURATION=release for a release build (debug by default).
# BENCH_QUICK=1: 5 runs of each operation, half a second of commits, 5 pickups: a check that it runs.
#   Benchmarks/metadata-stores.sh [ITERATIONS]
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/caller-paths.sh"
cd "$(dirname "$0")/.."
CONFIGURATION=${CONFIGURATION:-debug}
source scripts/lib/bench.sh
if [ -z "${TEST_FIRESTORE_EMULATOR_HOST:-}" ] || [ -z "${TEST_DATABASE_URL:-}" ]; then
    build_products metadata-bench
    TEST_SERVERS="firestore postgres" exec scripts/test-servers.sh "$script" "$@"
fi
run_in_caller_folder metadata-bench "$@"
