#!/usr/bin/env bash
# The search benchmark (a command, not a test): semantic GET /api/v1/search latency through HTTP
# against the standalone `search` binary (release build) with the random full-size ViT-B/32 that
# `make bench-clip` makes, at 10,000 and 100,000 stored vectors, beside text embedding alone, the
# vector scan alone and /healthz measured in the same run. Seeded data folders are kept under
# .build-bench/ and reused. Extra arguments go to search-bench (--sizes, --seconds, --threads).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${CLIP_REFERENCE_VENV:-.build-bench/venv}
model=.build-bench/clip-vit-b32-random
if [ ! -f "$model/model.safetensors" ]; then
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install -q -r scripts/clip-fixtures/requirements.txt
    echo "==> Making the random ViT-B/32 model"
    "$venv/bin/python" Benchmarks/CLIPReference/setup_model.py "$model"
fi
echo "==> Building search and search-bench (release)"
swift build -c release --product search >/dev/null 2>.build-bench/build-search.log \
    && swift build -c release --product search-bench >/dev/null 2>>.build-bench/build-search.log \
    || { cat .build-bench/build-search.log; exit 1; }
"$(swift build -c release --show-bin-path)/search-bench" "$model" "$@"
