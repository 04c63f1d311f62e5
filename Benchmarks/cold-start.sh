#!/usr/bin/env bash
# Cold start of a release-built function binary: from process start to its first 200 on /healthz,
# over RUNS runs (default 10), against a baseline measured the same way in the same run:
# python3's http.server answering 200 for a static file.
#
#   swift build -c release --product manage-teams
#   Benchmarks/cold-start.sh [path/to/binary]
#
# Tools: bash (its /dev/tcp probes the port without starting a process per poll), date, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-10}
BINARY=${1:-$(swift build -c release --show-bin-path)/manage-teams}
PORT=${PORT:-18765}
[ -x "$BINARY" ] || { echo "missing $BINARY: run swift build -c release --product manage-teams" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo ok > "$work/healthz"

# Succeeds when GET /$1 on the port answers 200.
answers_200() {
    local status
    { printf 'GET /%s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$1" >&3 && read -r status <&3; } \
        3<> "/dev/tcp/127.0.0.1/$PORT" 2> /dev/null || return 1
    [[ $status == "HTTP/1."?" 200"* ]]
}

# Prints the microseconds from starting "${@:2}" to the first 200 on /$1, then stops it.
time_to_first_200() {
    local path=$1 start end pid
    shift
    if answers_200 "$path"; then
        echo "port $PORT already answers: stop whatever listens there" >&2
        exit 1
    fi
    start=$(date +%s%N)
    "$@" > /dev/null 2>&1 &
    pid=$!
    until answers_200 "$path"; do :; done
    end=$(date +%s%N)
    kill -TERM "$pid"
    wait "$pid" 2> /dev/null || true
    echo $(((end - start) / 1000))
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

run_function() { cd "$work" && exec env DATA_DIR="$work/data" PORT="$PORT" "$BINARY"; }
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
echo "  $(basename "$BINARY") (release):        $function_median   runs: ${function_runs[*]}"
echo "  baseline python3 -m http.server: $baseline_median   runs: ${baseline_runs[*]}"
awk -v f="$function_median" -v b="$baseline_median" 'BEGIN { printf "  ratio function / baseline: %.2f\n", f / b }'
