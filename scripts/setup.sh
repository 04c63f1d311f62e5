#!/usr/bin/env bash
# Installs what the project needs on a Debian or Ubuntu machine, then fetches the Swift packages.
# With --test, also the Python test helpers (scripts/test-requirements.txt) into .build-test/venv.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages: SQLite headers for GRDB; libvips (decoding, EXIF, thumbnails), OpenBLAS (vector
# scoring, CLIP inference) and zlib (the original CLIP vocabulary file) headers for the C targets;
# git and pkg-config for SwiftPM; curl, jq and make for the README's first session and commands.
APT_PACKAGES=(git pkg-config libsqlite3-dev libvips-dev libopenblas-dev zlib1g-dev ca-certificates curl jq make)
# The test servers add PostgreSQL (server and pg_isready).
if [ "${1:-}" = "--test" ]; then APT_PACKAGES+=(python3-venv python3-pip postgresql postgresql-client); fi
# The Swift toolchain needs at least this version (Hummingbird 2.28 asks for tools 6.2).
MINIMUM_SWIFT=6.2

sudo_if_needed() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for package in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "==> Installing system packages: ${missing[*]}"
    sudo_if_needed apt-get update -qq
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

version_at_least() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }
swift_version() { swift --version 2>/dev/null | sed -n 's/.*Swift version \([0-9][0-9.]*\).*/\1/p' | head -n1; }

if ! command -v swift >/dev/null 2>&1 || ! version_at_least "$(swift_version)" "$MINIMUM_SWIFT"; then
    candidate=$(apt-cache policy swiftlang 2>/dev/null | sed -n 's/ *Candidate: \([0-9][0-9.]*\).*/\1/p')
    if [ -n "$candidate" ] && version_at_least "$candidate" "$MINIMUM_SWIFT"; then
        echo "==> Installing Swift $candidate from the distribution (swiftlang)"
        sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq swiftlang
    else
        echo "error: Swift $MINIMUM_SWIFT or newer is required (found: $(swift_version || true))." >&2
        echo "       This distribution does not package it; install it from https://www.swift.org/install/linux/" >&2
        echo "       (for example with swiftly), put 'swift' on PATH, and run this command again." >&2
        exit 1
    fi
fi

echo "==> Swift $(swift_version); resolving Swift packages"
# The versions Package.resolved pins, exactly (an application ships what it was tested with).
swift package resolve --force-resolved-versions

if [ "${1:-}" = "--test" ]; then
    venv=.build-test/venv
    stamp="$venv/.requirements"
    if ! cmp -s scripts/test-requirements.txt "$stamp" 2>/dev/null; then
        echo "==> Installing the Python test helpers into $venv"
        [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
        "$venv/bin/pip" install -q -r scripts/test-requirements.txt
        cp scripts/test-requirements.txt "$stamp"
    fi
fi
