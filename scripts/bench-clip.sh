#!/usr/bin/env bash
# The CLIP benchmark (a command, not a test): makes a random full-size ViT-B/32 CLIP with
# transformers (safetensors and ONNX, under .build-bench/, never committed), times PyTorch on it
# once, then times this engine (release build) and ONNX Runtime case by case, one right after the
# other, BENCH_ROUNDS times (default 3), and prints one table of medians with each round's ratio.
# ONNX Runtime's two-thread rate varies by about 15 % between runs on a shared machine, hence the
# pairs and the medians. Needs PyPI for the pinned reference stack (.build-bench/venv).
# BENCH_QUICK=1: this engine alone (no PyTorch, no ONNX Runtime), debug build, on the tests' tiny
# model with seeded inputs, one round of 0.05 s per case: a check that it runs, not a measure.
set -euo pipefail
source "$(dirname "$0")/lib/caller-paths.sh"
cd "$(dirname "$0")/.."
source scripts/lib/bench.sh
if [ -n "$quick" ]; then
    build_products clip-bench
    run_in_caller_folder clip-bench "$PWD/Tests/Fixtures/clip-tiny"
    exit 0
fi
SECONDS_PER_CASE=${BENCH_SECONDS:-3}
ROUNDS=${BENCH_ROUNDS:-3}
venv=${CLIP_REFERENCE_VENV:-.build-bench/venv}
model=.build-bench/clip-vit-b32-random
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q -r scripts/clip-fixtures/requirements.txt
if [ ! -f "$model/image_tower.onnx" ]; then
    echo "==> Making the random ViT-B/32 model, its ONNX export and inputs"
    "$venv/bin/python" Benchmarks/CLIPReference/setup_model.py "$model"
fi
build_products clip-bench
echo "==> Timing PyTorch"
"$venv/bin/python" Benchmarks/CLIPReference/bench_reference.py "$model" --seconds "$SECONDS_PER_CASE" --pytorch-only \
    2>/dev/null >.build-bench/pytorch.jsonl
echo "==> Timing this engine and ONNX Runtime, $ROUNDS rounds of pairs"
"$(swift build -c "$configuration" --show-bin-path)/clip-bench" "$model" --seconds "$SECONDS_PER_CASE" \
    --rounds "$ROUNDS" --pytorch .build-bench/pytorch.jsonl \
    --reference-server "exec '$venv/bin/python' Benchmarks/CLIPReference/bench_reference.py '$model' --serve 2>/dev/null"
