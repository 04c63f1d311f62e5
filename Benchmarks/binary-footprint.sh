#!/usr/bin/env bash
# What each given function binary costs at rest: file size, size stripped of symbols, shared
# libraries linked (and whether libvips or OpenBLAS is among them), and resident memory once it
# answers /healthz with nothing else to do. Cold start is Benchmarks/cold-start.sh.
#
#   swift build -c release --product manage-teams --product search
#   Benchmarks/binary-footprint.sh .build/release/manage-teams .build/release/search
#
# Relative paths are taken from the current folder. A binary that exits, or does not answer within
# 60 s, ends the benchmark with one line naming it.
# Tools: bash, ldd, strip, awk, python3 (none of them start with the binary).
set -euo pipefail
PORT=${PORT:-18766}
[ $# -gt 0 ] || { echo "usage: Benchmarks/binary-footprint.sh BINARY..." >&2; exit 64; }
printf '%-40s %10s %10s %6s %-14s %9s\n' binary "size MB" "strip MB" libs "vips/openblas" "idle RSS"
for given in "$@"; do
    binary=$(realpath -- "$given")
    [ -x "$binary" ] || { echo "binary-footprint: no executable at $binary" >&2; exit 1; }
    work=$(mktemp -d)
    strip --strip-all -o "$work/stripped" "$binary"
    size=$(stat -c %s "$binary")
    stripped=$(stat -c %s "$work/stripped")
    libraries=$(ldd "$binary" | wc -l)
    heavy=$(ldd "$binary" | grep -cE 'libvips|libopenblas' || true)
    (cd "$work" && exec env DATA_DIR="$work/data" HOST=127.0.0.1 PORT="$PORT" EMBEDDING_PROVIDER=visual "$binary" \
        > "$work/log" 2>&1) &
    pid=$!
    deadline=$(($(date +%s) + 60))
    until python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$PORT/healthz', timeout=1)" 2> /dev/null; do
        kill -0 "$pid" 2> /dev/null || { echo "binary-footprint: $given exited: $(tail -n 1 "$work/log")" >&2; exit 1; }
        if [ "$(date +%s)" -gt "$deadline" ]; then
            kill -KILL "$pid" 2> /dev/null || true
            echo "binary-footprint: $given did not answer on port $PORT within 60 s" >&2
            exit 1
        fi
        sleep 0.05
    done
    rss=$(awk '/VmRSS/ { print $2 }' "/proc/$pid/status")
    kill -TERM "$pid"
    wait "$pid" 2> /dev/null || true
    rm -rf "$work"
    awk -v b="$given" -v s="$size" -v t="$stripped" -v l="$libraries" -v h="$heavy" -v r="$rss" 'BEGIN {
        printf "%-40s %10.1f %10.1f %6d %-14s %6.1f MB\n", b, s / 1048576, t / 1048576, l, (h > 0 ? "yes" : "no"), r / 1024
    }'
done
