#!/usr/bin/env bash
# Upload -> success on the local cloud topology against the emulator, measured in one run (a
# command, not a test): 50 distinct images uploaded one at a time (Benchmarks/CloudTopology/
# upload_to_success.py) to
#   1. the emulator on its embedded defaults (SQLite, files, the local Pub/Sub pushing to itself);
#   2. the local cloud topology of scripts/run-gcp-local.sh: the six functions as separate
#      processes on fake-gcs-server and Google's Pub/Sub emulator (BLOB_BACKEND=gcs,
#      EVENTS_BACKEND=pubsub, a push subscription to process-embedding), which
#      scripts/test-servers.sh starts on private ports, every request through the router.
# Also prints the outbox relays' publish latency to the Pub/Sub emulator, read from both processes'
# debug logs (every function process runs a relay over the shared outbox). Uses the binaries of `swift build` (CONFIGURATION=release for a release build).
#   Benchmarks/cloud-topology.sh [COUNT]   # BENCH_QUICK=1: 5 images, a check that it runs
set -euo pipefail
source "$(dirname "$0")/../scripts/lib/caller-paths.sh"
cd "$(dirname "$0")/.."
if [ -z "${TEST_PUBSUB_EMULATOR_HOST:-}" ]; then
    swift build -c "${CONFIGURATION:-debug}" >/dev/null
    exec scripts/test-servers.sh "$script" "$@"
fi
count=${1:-$([ -n "${BENCH_QUICK:-}" ] && echo 5 || echo 50)}
bin=$(swift build -c "${CONFIGURATION:-debug}" --show-bin-path)
python=.build-test/venv/bin/python
key="imk_0123456789abcdef0123456789abcdef_$(printf 'B%.0s' $(seq 1 43))"
work=$(mktemp -d)
pids=()
trap 'for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"' EXIT
free_port() { "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
start() { # NAME PORT VARIABLES...
    local name=$1 port=$2
    shift 2
    env -i PATH=/usr/bin:/bin HOME="$work" HOST=127.0.0.1 PORT="$port" BOOTSTRAP_ADMIN_KEY="$key" "$@" "$bin/$name" \
        >"$work/$name-$port.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 300); do
        curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && return 0
        sleep 0.1
    done
    cat "$work/$name-$port.log" >&2
    echo "cloud-topology: $name did not answer on port $port within 30 s" >&2
    exit 1
}

echo "==> upload -> success, $count images ($(basename "$bin") build, $(nproc) cores)"
emulator_port=$(free_port)
start emulator "$emulator_port" DATA_DIR="$work/emulator"
"$python" Benchmarks/CloudTopology/upload_to_success.py "http://127.0.0.1:$emulator_port" "$key" "$count" \
    "emulator (embedded defaults)" | tee "$work/emulator.txt"
kill "${pids[-1]}"

run=$(date +%s)
# The cloud topology as make run-gcp-local starts it: six function processes behind the router.
topology="$work/topology"
env PORT=0 TOPOLOGY_DIR="$topology" BIN_DIR="$bin" BOOTSTRAP_ADMIN_KEY="$key" GCS_BUCKET_NAME="bench-$run" \
    PUBSUB_TOPIC="bench-$run" LOG_LEVEL=debug scripts/run-gcp-local.sh >"$work/run-gcp-local.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 600); do
    [ -f "$topology/ready" ] && break
    kill -0 "${pids[-1]}" 2>/dev/null || { cat "$work/run-gcp-local.out" >&2; echo "cloud-topology: run-gcp-local.sh exited" >&2; exit 1; }
    sleep 0.1
done
[ -f "$topology/ready" ] || { cat "$work/run-gcp-local.out" >&2; echo "cloud-topology: the topology was not ready within 60 s" >&2; exit 1; }
"$python" Benchmarks/CloudTopology/upload_to_success.py "$(cat "$topology/router.url")" "$key" "$count" \
    "cloud topology (six processes behind the router; gcs, pubsub)" | tee "$work/cloud.txt"
"$python" - "$topology"/*.log <<'PY'
import json, statistics, sys
publish, after = [], []
for path in sys.argv[1:]:
    for line in open(path):
        if '"message":"Delivered"' in line:
            entry = json.loads(line)
            publish.append(float(entry["publish_ms"]))
            after.append(float(entry["after_commit_ms"]))
publish.sort(); after.sort()
p95 = lambda v: v[min(len(v) - 1, round((len(v) - 1) * 0.95))]
print(f"    publish to the Pub/Sub emulator ({len(publish)} events): median {statistics.median(publish):.1f} ms"
      f"  p95 {p95(publish):.1f} ms; commit -> acknowledged by Pub/Sub: median {statistics.median(after):.1f} ms"
      f"  p95 {p95(after):.1f} ms")
PY
read -r _ _ _ base_median base_p95 < <(grep RESULT "$work/emulator.txt" | sed 's/RESULT \(.*\) \([0-9.]*\) \([0-9.]*\)$/x x x \2 \3/')
read -r _ _ _ cloud_median cloud_p95 < <(grep RESULT "$work/cloud.txt" | sed 's/RESULT \(.*\) \([0-9.]*\) \([0-9.]*\)$/x x x \2 \3/')
"$python" -c "import sys; b, c, bp, cp = map(float, sys.argv[1:]); print(f'  cloud topology / emulator: median {c / b:.2f}x, p95 {cp / bp:.2f}x')" \
    "$base_median" "$cloud_median" "$base_p95" "$cloud_p95"
