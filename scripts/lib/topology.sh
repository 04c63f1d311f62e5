# Shared by the scripts that run the functions as separate processes behind the router
# (run-gcp-local.sh, run-distributed.sh), sourced from the repository's root. It sets:
#   bin     the folder of the built binaries (BIN_DIR, or `swift build -c $CONFIGURATION`'s)
#   python  the test virtual environment's Python (for free ports)
#   state   the folder of each process's log, port and current pid, and of router.url and ready
#           (TOPOLOGY_DIR, or a temporary folder removed when the topology stops)
# A process that exits is started again on its port, as Cloud Run starts a new instance behind
# the same URL; one that refuses its configuration (status 78) stops the whole topology.

bin=${BIN_DIR:-$(swift build -c "${CONFIGURATION:-debug}" --show-bin-path)}
python=${TEST_VENV:-.build-test/venv}/bin/python
state=${TOPOLOGY_DIR:-$(mktemp -d)}
mkdir -p "$state"
[ -n "${TOPOLOGY_DIR:-}" ] || remove_state=$state
rm -f "$state/ready" "$state/router.url" "$state/stopping" "$state/refused"

free_port() { "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

supervisors=()
topology_stop() {
    touch "$state/stopping"
    for pidfile in "$state"/*.pid; do
        [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
    done
    for pid in "${supervisors[@]}"; do wait "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ -n "${remove_state:-}" ]; then rm -rf "$remove_state"; fi
}

# Runs BINARY (with ARGS) as NAME on PORT, starting it again whenever it exits, until the
# topology stops.
supervise() {
    local name=$1 port=$2 binary=$3
    shift 3
    while [ ! -f "$state/stopping" ]; do
        # Callers come through the router, which appends their address to X-Forwarded-For.
        TRUSTED_PROXIES=1 PORT=$port "$bin/$binary" "$@" >>"$state/$name.log" 2>&1 &
        echo $! >"$state/$name.pid"
        local status=0
        wait $! || status=$?
        [ -f "$state/stopping" ] && break
        if [ "$status" = 78 ]; then
            echo "==> $name refused its configuration (exit 78):" >&2
            tail -n 5 "$state/$name.log" >&2
            touch "$state/refused"
            break
        fi
        echo "==> $name exited with $status; starting it again on port $port" >&2
    done
}

# Starts BINARY (with ARGS) as NAME under supervision on a free port and waits until it answers
# /healthz (each probe at most 2 s, so that a process that hung while starting is reported, not
# waited on); its port goes to $state/NAME.port.
start_process() {
    local name=$1 binary=$2 port
    shift 2
    port=$(free_port)
    echo "$port" >"$state/$name.port"
    supervise "$name" "$port" "$binary" "$@" &
    supervisors+=($!)
    for _ in $(seq 1 600); do
        curl -sf --max-time 2 "http://127.0.0.1:$port/healthz" >/dev/null && return 0
        if [ -f "$state/refused" ]; then exit 78; fi
        sleep 0.1
    done
    echo "==> $name did not start:" >&2
    cat "$state/$name.log" >&2
    exit 1
}

# The base URL of a started process.
process_url() { echo "http://127.0.0.1:$(cat "$state/$1.port")"; }

# Starts the router on $PORT (8080; 0 picks a free port) with the service URL variables given
# (MANAGE_TEAMS_URL=…, …), waits until it listens and writes its address to $state/router.url;
# router_pid and url are set.
start_router() {
    env "$@" PORT="${PORT:-8080}" "$bin/router" >>"$state/router.log" 2>&1 &
    router_pid=$!
    echo "$router_pid" >"$state/router.pid"
    url=
    for _ in $(seq 1 300); do
        url=$(grep '"message":"Listening"' "$state/router.log" | sed 's/.*"address":"\([^"]*\)".*/\1/' | tail -n 1 || true)
        [ -n "$url" ] && break
        kill -0 "$router_pid" 2>/dev/null || { cat "$state/router.log" >&2; exit 1; }
        sleep 0.1
    done
    [ -n "$url" ] || { echo "==> the router did not start:" >&2; cat "$state/router.log" >&2; exit 1; }
    echo "$url" >"$state/router.url"
}

# What every topology's processes share, set before the first starts: HOST on the loopback,
# DATA_DIR (under the state folder unless set), BOOTSTRAP_ADMIN_KEY (generated unless set), and
# the traps that stop the whole topology on exit, Ctrl-C or TERM.
topology_begin() {
    export HOST=127.0.0.1
    export DATA_DIR=${DATA_DIR:-$state/data}
    export BOOTSTRAP_ADMIN_KEY=${BOOTSTRAP_ADMIN_KEY:-imk_$("$python" -c 'import secrets; print(secrets.token_hex(16))')_$("$python" -c 'import secrets; print(secrets.token_urlsafe(32))')}
    mkdir -p "$DATA_DIR"
    trap topology_stop EXIT
    trap 'exit 0' TERM INT
}

# topology_announce TITLE NAME...: prints that the topology is up, the router's address and each
# named process's; the caller then prints its own lines (backends, the admin key).
topology_announce() {
    local title=$1 name
    shift
    echo "==> The $title topology is up (Ctrl-C stops it):"
    echo "    router (the production URL map)  $url"
    for name in "$@"; do printf '    %-32s %s\n' "$name" "$(process_url "$name")"; done
}

# Marks the topology ready ($state/ready) and serves until the router stops.
topology_serve() {
    touch "$state/ready"
    wait "$router_pid"
}
