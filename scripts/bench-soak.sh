#!/usr/bin/env bash
# The soak benchmark (`make soak`; a command, not a test): builds the emulator (release), starts it
# on a free port with a new data folder and an admin key, and runs Benchmarks/Soak/soak.py against
# it for SOAK_MINUTES (default 10): a bounded mixed load from 8 clients, with the server's memory,
# open descriptors and latency per minute. BENCH_QUICK=1: the debug build, 30 s in windows of 10 s,
# to check that it runs, not to measure.
set -euo pipefail
source "$(dirname "$0")/lib/caller-paths.sh"
cd "$(dirname "$0")/.."
source scripts/lib/bench.sh
source scripts/lib/emulator.sh
build_products emulator
key="imk_$(python3 -c 'import secrets; print(secrets.token_hex(16))')_$(python3 -c 'import secrets; print(secrets.token_urlsafe(32)[:43])')"
start_emulator BOOTSTRAP_ADMIN_KEY="$key" LOG_LEVEL=warning HOST=127.0.0.1
if [ -n "$quick" ]; then
    minutes=0.5 window=10
else
    minutes=${SOAK_MINUTES:-10} window=60
fi
echo "==> Soak against the $configuration emulator at $emulator_base"
python3 Benchmarks/Soak/soak.py --base "$emulator_base" --key "$key" --pid "$emulator_pid" \
    --minutes "$minutes" --window "$window"
