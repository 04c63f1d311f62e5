#!/usr/bin/env bash
# What the functions cost at rest (Benchmarks/binary-footprint.sh) for the release builds of
# manage-teams and search, built first; other binaries: Benchmarks/binary-footprint.sh BINARY...
# BENCH_QUICK=1: the debug builds: a check that it runs, not a measure.
set -euo pipefail
source "$(dirname "$0")/lib/caller-paths.sh"
cd "$(dirname "$0")/.."
source scripts/lib/bench.sh
build_products manage-teams search
bin=$(swift build -c "$configuration" --show-bin-path)
Benchmarks/binary-footprint.sh "$bin/manage-teams" "$bin/search"
