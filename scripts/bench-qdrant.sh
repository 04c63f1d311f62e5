#!/usr/bin/env bash
# The vector-index benchmark (a command, not a test): the embedded index against Qdrant's engine
# behind the Qdrant REST test double, started here with --approximate (the engine's HNSW index,
# as a Qdrant server searches) on a private port and stopped afterwards. Prints search latency
# (median, p95, p99) of both, the engine's own time apart from the double's overhead, and recall@10
# of HNSW against exact search. Extra arguments go to `search-bench qdrant` (--count, --dimensions,
# --queries; default 100,000 × 512 and 200 queries).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .build-bench
echo "==> Building search-bench (release)"
swift build -c release --product search-bench >/dev/null 2>.build-bench/build-search-bench.log \
    || { cat .build-bench/build-search-bench.log; exit 1; }
work=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
scripts/qdrant-test-double "$port" "$work/qdrant" --approximate >"$work/qdrant.log" 2>&1 &
double=$!
trap 'kill $double 2>/dev/null || true; wait $double 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 600); do
    grep -q "listening on" "$work/qdrant.log" && break
    kill -0 $double 2>/dev/null || { cat "$work/qdrant.log"; exit 1; }
    sleep 0.1
done
"$(swift build -c release --show-bin-path)/search-bench" qdrant "127.0.0.1:$port" "$@"
