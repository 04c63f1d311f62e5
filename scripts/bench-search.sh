#!/usr/bin/env bash
# The search benchmark (a command, not a test): semantic and hybrid GET /api/v1/search latency, and
# a cached query's, through HTTP against the standalone `search` binary (release build) with the
# random full-size ViT-B/32 that
# `make bench-clip` makes, at 10,000 and 100,000 stored vectors, beside text embedding alone, the
# vector scan alone and /healthz measured in the same run. Seeded data folders are kept under
# .build-bench/ and reused. Extra arguments go to search-bench (--sizes, --seconds, --threads,
# --data DIR, relative paths taken from the current folder).
# BENCH_QUICK=1: the debug build, the tests' tiny CLIP model (no PyTorch needed), 200 vectors and
# a tenth of a second per case, in a temporary data folder: a check that it runs, not a measure.
set -euo pipefail
source "$(dirname "$0")/lib/caller-paths.sh"
cd "$(dirname "$0")/.."
source scripts/lib/bench.sh
if [ -n "$quick" ]; then
    model=$PWD/Tests/Fixtures/clip-tiny
    data=$(mktemp -d)
    trap 'rm -rf "$data"' EXIT
    set -- --data "$data" "$@"
else
    venv=${CLIP_REFERENCE_VENV:-.build-bench/venv}
    model=$PWD/.build-bench/clip-vit-b32-random
    if [ ! -f "$model/model.safetensors" ]; then
        [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
        "$venv/bin/pip" install -q -r scripts/clip-fixtures/requirements.txt
        echo "==> Making the random ViT-B/32 model"
        "$venv/bin/python" Benchmarks/CLIPReference/setup_model.py "$model"
    fi
    set -- --data "$PWD/.build-bench" "$@"
fi
build_products search search-bench
run_in_caller_folder search-bench "$model" "$@"
