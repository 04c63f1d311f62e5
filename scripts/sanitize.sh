#!/usr/bin/env bash
# Builds and runs every test under AddressSanitizer (Swift and C) with UndefinedBehaviorSanitizer
# on the C targets (libvips shim, CLIP kernels), in its own build folder (.build-sanitize).
# `make sanitize`. On the 2-core development machine the first sanitized build took about 20 minutes
# (wall time, niced beside other builds) and a test run about 100 s once built.
# Leak reports for the process-wide thread pools of swift-nio and Dispatch, which live as long as
# the process by design, are suppressed (scripts/lsan-suppressions.txt); any other leak fails.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=.build-sanitize
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_stack_use_after_return=0:abort_on_error=0:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/scripts/lsan-suppressions.txt:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
start=$(date +%s)
# swiftc has no UndefinedBehaviorSanitizer on Linux: clang gets it for the C targets, and the link.
flags=(--scratch-path "$scratch" --sanitize=address -Xcc -fsanitize=undefined
    -Xswiftc -Xclang-linker -Xswiftc -fsanitize=undefined)
echo "==> Building with AddressSanitizer (and UBSan for C) into $scratch"
swift build --build-tests "${flags[@]}"
echo "==> Running every test under the sanitizers"
swift test --skip-build "${flags[@]}" "$@"
echo "==> Sanitized build and tests passed in $(( $(date +%s) - start )) s"
