# Sourced by scripts/backup.sh and scripts/restore.sh, after scripts/lib/caller-paths.sh:
# `emulator_command SUBCOMMAND FOLDER` builds the emulator of CONFIGURATION (release by default, as
# scripts/run-emulator.sh) and runs `emulator SUBCOMMAND FOLDER` from the repository's root (where
# it reads .env), FOLDER taken from the caller's folder.
emulator_command() {
    local folder bin configuration=${CONFIGURATION:-release}
    folder=$(caller_path "$2")
    cd "$(dirname "$script")/.."
    swift build -c "$configuration" --product emulator >&2
    bin=$(swift build -c "$configuration" --show-bin-path)
    exec "$bin/emulator" "$1" "$folder"
}
