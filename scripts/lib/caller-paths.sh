# Sourced first by the scripts that change to the repository's root, before they change: the paths
# the caller gave them (as path variables, or as $0 for a script that starts itself again under
# scripts/test-servers.sh) are made absolute against the caller's folder, so that they still name
# what the caller meant. Sets `script` (this script's absolute path) and exports BENCH_CALLER, the
# caller's folder, which a script that starts itself again keeps.

# Prints PATH made absolute against the caller's folder (the path need not exist yet).
caller_path() {
    case $1 in
    /*) printf '%s\n' "$1" ;;
    *) printf '%s\n' "$BENCH_CALLER/$1" ;;
    esac
}

export BENCH_CALLER=${BENCH_CALLER:-$PWD}
script=$(caller_path "$0")
for path_variable in DATA_DIR DATABASE_PATH BLOB_DIR TOPOLOGY_DIR BIN_DIR CLIP_MODEL_DIR; do
    if [ -n "${!path_variable:-}" ]; then export "$path_variable=$(caller_path "${!path_variable}")"; fi
done
unset path_variable
