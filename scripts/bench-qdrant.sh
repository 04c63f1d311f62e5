#!/usr/bin/env bash
# The vector-index benchmark (a command, not a test): the embedded index against Qdrant's engine
# behind the Qdrant REST test double, started here with --approximate (the engine's HNSW index,
# as a Qdrant server searches) on a private port and stopped afterwards. Prints search latency
# (median, p95, p99) of both, the engine's own time apart from the double's overhead, and recall@10
# of HNSW against exact search. Extra arguments go to `search-bench qdrant` (--count, --dimensions,
# --queries, --data; default 100,000 × 512 and 200 queries).
# BENCH_QUICK=1: the debug build, 2,000 vectors and 20 queries: a check that it runs.
set -euo pipefail
source "$(dirname "$0")/lib/caller-paths.sh"
cd "$(dirname "$0")/.."
source scripts/lib/bench.sh
build_products search-bench
work=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
scripts/qdrant-test-double "$port" "$work/qdrant" --approximate >"$work/qdrant.log" 2>&1 &
double=$!
trap 'kill $double 2>/dev/null || true; wait $double 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 600); do
    grep -q "listening on" "$work/qdrant.log" && break
    kill -0 $double 2>/dev/null || { cat "$work/qdrant.log" >&2; echo "bench-qdrant: the Qdrant test double exited" >&2; exit 1; }
    sleep 0.1
done
grep -q "listening on" "$work/qdrant.log" || { echo "bench-qdrant: the Qdrant test double did not start within 60 s" >&2; exit 1; }
if [ -n "$quick" ]; then set -- --data "$work" "$@"; else set -- --data "$PWD/.build-bench" "$@"; fi
run_in_caller_folder search-bench qdrant "127.0.0.1:$port" "$@"
