#!/usr/bin/env bash
# Several machines' worth of processes on one (make run-distributed): PostgreSQL (metadata and
# the outbox) and the Qdrant test double (vectors) on private ports (scripts/test-servers.sh
# starts and stops them), the functions as separate processes with two replicas each of Search
# and ProcessEmbedding, the event relay (the outbox pushed to ProcessEmbedding's replicas in
# turn, woken by PostgreSQL's NOTIFY), and the router with the production URL map on $PORT
# (8080), sending each service's requests to its replicas in turn. Image bytes are files under
# DATA_DIR, which every process shares (one folder standing for a shared volume). A process that
# exits is started again on its port.
#
# Variables (all optional): PORT (the router; 0 picks a free port), DATABASE_URL (default: the
# PostgreSQL server started here), DATABASE_SCHEMA, QDRANT_COLLECTION, DATA_DIR (default: under
# TOPOLOGY_DIR), BOOTSTRAP_ADMIN_KEY (generated and printed when unset), BIN_DIR (the binaries;
# default: a debug `swift build`, or CONFIGURATION=release), TOPOLOGY_DIR (where each process's
# log, port and current pid go, and `router.url` and `ready` once every process answers;
# default: a temporary folder). Anything else in the environment (EMBEDDING_PROVIDER, LOG_LEVEL,
# ...) reaches every process.
set -euo pipefail
source "$(dirname "$0")/lib/caller-paths.sh"
cd "$(dirname "$0")/.."
if [ -z "${TEST_QDRANT_HOST:-}" ]; then
    scripts/setup.sh --test
    if [ -z "${BIN_DIR:-}" ]; then
        echo "==> Building every function, the event relay and the router (swift build -c ${CONFIGURATION:-debug})"
        swift build -c "${CONFIGURATION:-debug}"
    fi
    TEST_SERVERS="qdrant postgres" exec scripts/test-servers.sh "$script" "$@"
fi
if [ -z "${DATABASE_URL:-${TEST_DATABASE_URL:-}}" ]; then
    echo "run-distributed: PostgreSQL did not start (it needs Debian's postgresql package) and DATABASE_URL is not set" >&2
    exit 1
fi
source scripts/lib/topology.sh

token() { "$python" -c "import secrets; print(secrets.$1)"; }
topology_begin
export METADATA_BACKEND=postgres DATABASE_URL=${DATABASE_URL:-$TEST_DATABASE_URL}
export VECTOR_BACKEND=qdrant QDRANT_HOST=${TEST_QDRANT_HOST%:*} QDRANT_PORT=${TEST_QDRANT_HOST##*:}
export BLOB_BACKEND=filesystem EVENTS_BACKEND=local
# ProcessEmbedding takes deliveries from the relay alone: they carry this shared secret.
export PUBSUB_PUSH_TOKEN=${PUBSUB_PUSH_TOKEN:-$(token 'token_urlsafe(32)')}
for name in process-embedding search; do
    for replica in 1 2; do start_process "$name-$replica" "$name"; done
done
for name in upload-image manage-teams manage-users api-keys; do start_process "$name" "$name"; done
PUBSUB_PUSH_ENDPOINT="$(process_url process-embedding-1)/events/process-embedding,$(process_url process-embedding-2)/events/process-embedding" \
    start_process event-relay event-relay

start_router \
    MANAGE_TEAMS_URL="$(process_url manage-teams)" MANAGE_USERS_URL="$(process_url manage-users)" \
    API_KEYS_URL="$(process_url api-keys)" UPLOAD_IMAGE_URL="$(process_url upload-image)" \
    SEARCH_URL="$(process_url search-1),$(process_url search-2)" \
    PROCESS_EMBEDDING_URL="$(process_url process-embedding-1),$(process_url process-embedding-2)"

topology_announce distributed manage-teams manage-users api-keys upload-image search-1 search-2 \
    process-embedding-1 process-embedding-2 event-relay
echo "    PostgreSQL                       ${DATABASE_URL%%\?*} (schema ${DATABASE_SCHEMA:-public})"
echo "    Qdrant (test double)             $TEST_QDRANT_HOST; image files in $DATA_DIR; logs in $state"
echo "    admin key                        $BOOTSTRAP_ADMIN_KEY"
topology_serve
