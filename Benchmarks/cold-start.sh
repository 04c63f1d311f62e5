#!/usr/bin/env bash
# Cold start of a release-built function binary: from process start to its first 200 on /healthz,
# over RUNS runs (default 10), against a baseline measured the same way in the same run:
# python3's http.server answering 200 for a static file.
#
#   Benchmarks/cold-start.sh [path/to/binary]   # a relative path is taken from the current folder;
#                                               # without one, manage-teams is built (release) and timed
#
# BENCH_QUICK=1: one run of the debug build's manage-teams (unless a binary is given), to check
# that the benchmark works, not to measure. A start that does not answer within 60 s, or a binary
# that exits, ends the benchmark with one line naming it.
# Tools: bash (its /dev/tcp probes the port without starting a process per poll), date, python3.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${BENCH_QUICK:-}" ]; then RUNS=${RUNS:-1} CONFIGURATION=${CONFIGURATION:-debug}; fi
RUNS=${RUNS:-10}
PORT=${PORT:-18765}
if [ $# -gt 0 ]; then
    BINARY=$(realpath -- "$1")
else
    # No binary given: manage-teams, built first.
    echo "==> Building manage-teams (${CONFIGURATION:-release})"
    swift build --package-path "$root" -c "${CONFIGURATION:-release}" --product manage-teams > /dev/null
    BINARY=$(swift build --package-path "$root" -c "${CONFIGURATION:-release}" --show-bin-path)/manage-teams
fi
[ -x "$BINARY" ] || { echo "cold-start: no executable at $BINARY" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo ok > "$work/healthz"

# Succeeds when GET /$1 on the port answers 200.
answers_200() {
    local status
    # stderr first: bash reports a refused connection while it opens descriptor 3.
    { printf 'GET /%s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$1" >&3 && read -r status <&3; } \
        2> /dev/null 3<> "/dev/tcp/127.0.0.1/$PORT" || return 1
    [[ $status == "HTTP/1."?" 200"* ]]
}

# Prints the microseconds from starting "${@:2}" to the first 200 on /$1, then stops it. Fails with
# one line when the process exits first or does not answer within 60 s.
time_to_first_200() {
    local path=$1 name start end pid deadline
    name=$([ "$2" = run_function ] && basename "$BINARY" || echo "python3 -m http.server")
    shift
    if answers_200 "$path"; then
        echo "cold-start: port $PORT already answers: stop whatever listens there, or set PORT" >&2
        exit 1
    fi
    start=$(date +%s%N)
    deadline=$((start + 60000000000))
    "$@" > "$work/start.log" 2>&1 &
    pid=$!
    until answers_200 "$path"; do
        if ! kill -0 "$pid" 2> /dev/null; then
            echo "cold-start: $name exited before answering on port $PORT: $(tail -n 1 "$work/start.log")" >&2
            exit 1
        fi
        if [ "$(date +%s%N)" -gt "$deadline" ]; then
            kill -KILL "$pid" 2> /dev/null || true
            echo "cold-start: $name did not answer on port $PORT within 60 s" >&2
            exit 1
        fi
    done
    end=$(date +%s%N)
    kill -TERM "$pid"
    wait "$pid" 2> /dev/null || true
    echo $(((end - start) / 1000))
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

run_function() { cd "$work" && exec env DATA_DIR="$work/data" HOST=127.0.0.1 PORT="$PORT" "$BINARY"; }
run_baseline() { exec python3 -m http.server "$PORT" --bind 127.0.0.1 --directory "$work"; }

# One start first creates and migrates the database, so the runs measure starts on existing data.
time_to_first_200 healthz run_function > /dev/null

function_runs=()
baseline_runs=()
for _ in $(seq "$RUNS"); do
    function_runs+=("$(time_to_first_200 healthz run_function)")
    baseline_runs+=("$(time_to_first_200 healthz run_baseline)")
done

function_median=$(printf '%s\n' "${function_runs[@]}" | median)
baseline_median=$(printf '%s\n' "${baseline_runs[@]}" | median)
echo "cold start to first 200 on /healthz, median of $RUNS runs (microseconds):"
echo "  $(basename "$BINARY") ($(basename "$(dirname "$BINARY")")):        $function_median   runs: ${function_runs[*]}"
echo "  baseline python3 -m http.server: $baseline_median   runs: ${baseline_runs[*]}"
awk -v f="$function_median" -v b="$baseline_median" 'BEGIN { printf "  ratio function / baseline: %.2f\n", f / b }'
