#!/usr/bin/env bash
# The cloud topology on one machine (make run-gcp-local): fake-gcs-server and Google's Pub/Sub and
# Firestore emulators on private ports (scripts/test-servers.sh starts and stops them), the six
# functions as separate processes on ports of their own with BLOB_BACKEND=gcs, EVENTS_BACKEND=pubsub
# and METADATA_BACKEND=firestore (or METADATA_BACKEND=sqlite: one SQLite file under DATA_DIR), and
# the router with the production URL map on
# $PORT (8080). process-embedding starts with --create-resources: it creates the topic, the
# dead-letter topic and its own push subscription. A function that exits is started again on its
# port, as Cloud Run starts a new instance behind the same URL; one that refuses its configuration
# (status 78) stops the whole topology.
#
# Variables (all optional): PORT (the router; 0 picks a free port), METADATA_BACKEND (firestore or
# sqlite), DATA_DIR (the folder of the embedded vector index and of the SQLite file; default: under
# TOPOLOGY_DIR, since the emulators keep nothing from one run to the next),
# BOOTSTRAP_ADMIN_KEY (generated and printed when unset), BIN_DIR (the binaries; default: a debug
# `swift build`, or CONFIGURATION=release), TOPOLOGY_DIR (where each process's log, port and
# current pid go, and `router.url` and `ready` once every process answers; default: a temporary
# folder). Anything else in the environment (EMBEDDING_PROVIDER, LOG_LEVEL, ...) reaches every
# function.
set -euo pipefail
source "$(dirname "$0")/lib/caller-paths.sh"
cd "$(dirname "$0")/.."
if [ -z "${TEST_STORAGE_EMULATOR_HOST:-}" ]; then
    scripts/setup.sh --test
    if [ -z "${BIN_DIR:-}" ]; then
        echo "==> Building every function and the router (swift build -c ${CONFIGURATION:-debug})"
        swift build -c "${CONFIGURATION:-debug}"
    fi
    TEST_SERVERS="gcs pubsub firestore" exec scripts/test-servers.sh "$script" "$@"
fi
if [ -z "${TEST_PUBSUB_EMULATOR_HOST:-}" ] || [ -z "${TEST_FIRESTORE_EMULATOR_HOST:-}" ]; then
    echo "run-gcp-local: the Pub/Sub or Firestore emulator did not start (they need the Google Cloud SDK's google-cloud-cli-pubsub-emulator and google-cloud-cli-firestore-emulator, and OpenJDK 17)" >&2
    exit 1
fi
source scripts/lib/topology.sh

topology_begin
export BLOB_BACKEND=gcs GCS_BUCKET_NAME=${GCS_BUCKET_NAME:-images} STORAGE_EMULATOR_HOST=$TEST_STORAGE_EMULATOR_HOST
export EVENTS_BACKEND=pubsub PUBSUB_EMULATOR_HOST=$TEST_PUBSUB_EMULATOR_HOST PUBSUB_TOPIC=${PUBSUB_TOPIC:-image-uploads}
export METADATA_BACKEND=${METADATA_BACKEND:-firestore}
if [ "$METADATA_BACKEND" = firestore ]; then
    export FIRESTORE_EMULATOR_HOST=$TEST_FIRESTORE_EMULATOR_HOST
    metadata_where="Firestore emulator $FIRESTORE_EMULATOR_HOST"
else
    metadata_where="$DATA_DIR"
fi
# The processing service first: its push subscription must exist before anything is published.
start_process process-embedding process-embedding --create-resources
for _ in $(seq 1 600); do
    grep -q "push subscription to this process created" "$state/process-embedding.log" && break
    sleep 0.1
done
grep -q "push subscription to this process created" "$state/process-embedding.log" || {
    echo "==> process-embedding did not create its push subscription:" >&2
    cat "$state/process-embedding.log" >&2
    exit 1
}
for name in upload-image search manage-teams manage-users api-keys; do start_process "$name" "$name"; done

router=()
for name in manage-teams manage-users api-keys upload-image search process-embedding; do
    variable=$(echo "$name" | tr 'a-z-' 'A-Z_')_URL
    router+=("$variable=$(process_url "$name")")
done
start_router "${router[@]}"

topology_announce cloud manage-teams manage-users api-keys upload-image search process-embedding
echo "    Cloud Storage (fake-gcs-server)  $TEST_STORAGE_EMULATOR_HOST, bucket $GCS_BUCKET_NAME"
echo "    Pub/Sub emulator                 $TEST_PUBSUB_EMULATOR_HOST, topic $PUBSUB_TOPIC"
echo "    metadata                         $metadata_where; logs in $state"
echo "    admin key                        $BOOTSTRAP_ADMIN_KEY"
topology_serve
