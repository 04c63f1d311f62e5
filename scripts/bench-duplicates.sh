#!/usr/bin/env bash
# The near-duplicate benchmark (a command, not a test): a team's groups of near-duplicates over
# 10,000 and 100,000 seeded perceptual hashes, read from SQLite and grouped in memory, beside the
# same groups found by comparing every pair (the baseline), in one run (release build). The seeded
# SQLite files are kept under .build-bench/ and reused. Extra arguments go to
# `search-bench duplicates` (--sizes, --data DIR).
# BENCH_QUICK=1: the debug build and 2,000 hashes in a temporary folder: a check that it runs.
set -euo pipefail
source "$(dirname "$0")/lib/caller-paths.sh"
cd "$(dirname "$0")/.."
source scripts/lib/bench.sh
if [ -n "$quick" ]; then
    data=$(mktemp -d)
    trap 'rm -rf "$data"' EXIT
    set -- --data "$data" "$@"
else
    set -- --data "$PWD/.build-bench" "$@"
fi
build_products search-bench
run_in_caller_folder search-bench duplicates "$@"
