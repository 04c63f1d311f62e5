# Starts the emulator ($configuration when set, else the debug build) on a free loopback port with
# its data in a new temporary folder, for scripts that talk to it (schemathesis.sh,
# terraform-checks.sh, bench-soak.sh). Sourced; after
# `start_emulator [VARIABLE=value...]`, $emulator_base is its URL, $emulator_pid its process and
# $emulator_data its folder; `stop_emulator` (also set as the EXIT trap) stops it and removes the
# folder.
start_emulator() {
    local bin port
    bin=$(swift build -c "${configuration:-debug}" --show-bin-path)
    emulator_data=$(mktemp -d)
    trap stop_emulator EXIT
    # exec: $! is then the emulator itself.
    (cd "$emulator_data" && exec env -i PATH="$PATH" PORT=0 DATA_DIR="$emulator_data" "$@" \
        "$bin/emulator" >"$emulator_data/emulator.out" 2>"$emulator_data/emulator.err") &
    emulator_pid=$!
    for _ in $(seq 1 200); do
        port=$(sed -n 's#.*listening on http://127.0.0.1:\([0-9]*\).*#\1#p' "$emulator_data/emulator.out" | head -1)
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "${port:-}" ] || { echo "the emulator did not start"; cat "$emulator_data/emulator.err"; exit 1; }
    emulator_base=http://127.0.0.1:$port
}

stop_emulator() {
    kill "$emulator_pid" 2>/dev/null || true
    wait "$emulator_pid" 2>/dev/null || true
    rm -rf "$emulator_data"
}
