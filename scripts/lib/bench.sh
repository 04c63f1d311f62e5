# Sourced by the benchmark scripts (scripts/bench-*.sh), after scripts/lib/caller-paths.sh and the
# change to the repository's root. Sets:
#   configuration  CONFIGURATION, else debug with BENCH_QUICK and release without
#   quick          non-empty with BENCH_QUICK: the smallest sizes and one short round, which the
#                  test command runs to check that each benchmark works (never how fast)
# and gives build_products and run_in_caller_folder.
quick=${BENCH_QUICK:-}
if [ -n "$quick" ]; then configuration=${CONFIGURATION:-debug}; else configuration=${CONFIGURATION:-release}; fi
mkdir -p .build-bench

# build_products PRODUCT...: builds them in $configuration, printing the build's output only when
# it fails (and then failing with one line naming the log).
build_products() {
    local product log=.build-bench/build-$configuration.log
    echo "==> Building $* ($configuration)"
    for product in "$@"; do
        if ! swift build -c "$configuration" --product "$product" >"$log" 2>&1; then
            cat "$log" >&2
            echo "$(basename "$script"): building $product failed (log: $log)" >&2
            exit 1
        fi
    done
}

# run_in_caller_folder PRODUCT ARGUMENTS...: runs the built product from the caller's folder, so
# that the relative paths among the arguments mean what the caller meant.
run_in_caller_folder() {
    local binary
    binary="$(swift build -c "$configuration" --show-bin-path)/$1"
    shift
    (cd "$BENCH_CALLER" && "$binary" "$@")
}
