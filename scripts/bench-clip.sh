#!/usr/bin/env bash
# The CLIP benchmark (a command, not a test): makes a random full-size ViT-B/32 CLIP with
# transformers (safetensors and ONNX, under .build-bench/, never committed), times ONNX Runtime and
# PyTorch on it in one Python process, then this engine in a release build, and prints one table.
# Needs PyPI for the pinned reference stack (a virtual environment under .build-bench/venv).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_CASE=${BENCH_SECONDS:-3}
venv=${CLIP_REFERENCE_VENV:-.build-bench/venv}
model=.build-bench/clip-vit-b32-random
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q -r scripts/clip-fixtures/requirements.txt
if [ ! -f "$model/image_tower.onnx" ]; then
    echo "==> Making the random ViT-B/32 model, its ONNX export and inputs"
    "$venv/bin/python" Benchmarks/CLIPReference/setup_model.py "$model"
fi
echo "==> Timing ONNX Runtime and PyTorch"
"$venv/bin/python" Benchmarks/CLIPReference/bench_reference.py "$model" --seconds "$SECONDS_PER_CASE" \
    2>/dev/null > .build-bench/reference.jsonl
echo "==> Building and timing this engine (release)"
swift build -c release --product clip-bench >/dev/null 2>.build-bench/build.log || { cat .build-bench/build.log; exit 1; }
"$(swift build -c release --show-bin-path)/clip-bench" "$model" --seconds "$SECONDS_PER_CASE" \
    --reference .build-bench/reference.jsonl
