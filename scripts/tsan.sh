#!/usr/bin/env bash
# Builds and runs the tests under ThreadSanitizer, in its own build folder (.build-tsan).
# `make tsan`; arguments go to `swift test` (`--filter CLIP`). Run it inside
# `scripts/test-servers.sh` for the cases that need the test servers. Locks are `Locked`
# (Runtime/Support/Locking), on POSIX mutexes that ThreadSanitizer sees; Swift's `Mutex` waits on futexes
# it does not see, and every access inside one would be reported as a race.
set -euo pipefail
cd "$(dirname "$0")/.."
scratch=.build-tsan
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
start=$(date +%s)
echo "==> Building with ThreadSanitizer into $scratch"
swift build --build-tests --sanitize=thread --scratch-path "$scratch"
echo "==> Running the tests under ThreadSanitizer"
swift test --skip-build --sanitize=thread --scratch-path "$scratch" "$@"
echo "==> ThreadSanitizer build and tests passed in $(( $(date +%s) - start )) s"
