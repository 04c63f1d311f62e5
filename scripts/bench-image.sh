#!/usr/bin/env bash
# The image-pipeline benchmark (a command, not a test): builds image-bench and the emulator it
# starts (release), then runs image-bench; arguments go to it (--quick for fewer rounds).
# BENCH_QUICK=1: the debug build and the smallest sizes: a check that it runs, not a measure.
set -euo pipefail
source "$(dirname "$0")/lib/caller-paths.sh"
cd "$(dirname "$0")/.."
source scripts/lib/bench.sh
build_products image-bench emulator
run_in_caller_folder image-bench "$@"
