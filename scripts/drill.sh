#!/usr/bin/env bash
# The failure drills (make drill; scripts/drill.py says what each does and checks): the cloud
# topology of make run-gcp-local (with the vectors in the Qdrant test double) and the distributed
# topology of make run-distributed each take uploads while, one after another, each dependency is
# killed, kept down and started again on the same port and data, and then each function process
# is killed; a table per topology says what came through.
#
#   scripts/drill.sh                    both topologies, 200 uploads from 8 clients, 20 s down
#   scripts/drill.sh --quick            the part the test command runs (scripts/test.sh): fewer
#                                       uploads, 5 s down, every drill but the cloud topology's
#                                       Qdrant one (the distributed topology's covers the engine)
#   scripts/drill.sh --topology cloud   one topology (any other option goes to scripts/drill.py)
#
# Variables: BIN_DIR (the binaries; default: a debug `swift build`, or CONFIGURATION=release);
# DRILL_KEEP_LOGS=1 keeps the servers' and processes' logs of drills that pass too (those of a
# drill that fails are always kept).
set -euo pipefail
cd "$(dirname "$0")/.."
quick=()
topologies=(cloud distributed)
options=()
while [ $# -gt 0 ]; do
    case $1 in
        --quick) quick=(--uploads 40 --clients 4 --down 5 --drain-deadline 180) ;;
        --topology) topologies=("$2"); shift ;;
        *) options+=("$1") ;;
    esac
    shift
done
scripts/setup.sh --test
if [ -z "${BIN_DIR:-}" ]; then
    echo "==> Building every function, the event relay and the router (swift build -c ${CONFIGURATION:-debug})"
    swift build -c "${CONFIGURATION:-debug}"
fi
bin=${BIN_DIR:-$(swift build -c "${CONFIGURATION:-debug}" --show-bin-path)}
python=${TEST_VENV:-.build-test/venv}/bin/python
status=0
for topology in "${topologies[@]}"; do
    targets=()
    if [ ${#quick[@]} -gt 0 ]; then
        case $topology in
            cloud) targets=(--targets pubsub,firestore,gcs,functions) ;;
            distributed) targets=(--targets postgres,qdrant,functions) ;;
        esac
    fi
    case $topology in
        cloud) servers="gcs qdrant pubsub firestore" ;;
        distributed) servers="qdrant postgres" ;;
        *) echo "drill.sh: no topology named $topology (cloud, distributed)" >&2; exit 64 ;;
    esac
    # The servers' command lines and the topology's logs; kept when a drill fails.
    control=$(mktemp -d /tmp/drill-$topology.XXXXXX)
    if TEST_SERVERS="$servers" TEST_SERVERS_CONTROL="$control" REQUIRE_TEST_SERVERS=1 scripts/test-servers.sh \
        "$python" scripts/drill.py --topology "$topology" --bin "$bin" "${quick[@]}" "${targets[@]}" \
        "${options[@]}"; then
        if [ -n "${DRILL_KEEP_LOGS:-}" ]; then echo "==> The $topology drills' logs are in $control"; else rm -rf "$control"; fi
    else
        status=1
        echo "==> The $topology drills' logs are in $control" >&2
    fi
done
exit "$status"
