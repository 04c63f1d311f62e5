#!/usr/bin/env bash
# Builds every function's container image with podman from the Containerfile, runs each one,
# checks that /healthz answers 200 and prints each image's size and its container cold start.
#
# For machines with podman and no registry (see the README's "Container images"): the Debian base
# image is made with debootstrap from the mirror apt uses, the Swift builder image from this
# machine's toolchain (/opt/swift), and Swift packages come from the local copies in
# /opt/swift-packages. podman's own settings and storage live under $IMAGES_STATE (default
# /var/tmp/image-api-podman); the build cache there makes later builds quick.
#
# Environment: IMAGES="manage-teams search" builds a subset (IMAGES="" only the base images); CLIP_MODEL=baked copies
# ./models/clip-vit-base-patch32 into the images (`make model` first); IMAGE_TAG (default: the
# commit) tags the images image-api/<function>:<tag>.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
state=${IMAGES_STATE:-/var/tmp/image-api-podman}
images=(${IMAGES-manage-teams manage-users api-keys upload-image process-embedding search emulator})
tag=${IMAGE_TAG:-$(git rev-parse --short HEAD 2>/dev/null || echo local)}
# The images are built from the working tree: a tree that differs from the commit says so.
if [ -z "${IMAGE_TAG:-}" ] && [ -n "$(git status --porcelain -- Package.swift Runtime Functions Tests Benchmarks Containerfile deployment 2>/dev/null)" ]; then
    tag="$tag-dirty"
fi
clip_model=${CLIP_MODEL:-none}
toolchain=${SWIFT_TOOLCHAIN:-/opt/swift}
packages=${SWIFT_PACKAGES:-/opt/swift-packages}

step() { echo "==> $*"; }
fail() { echo "images: $*" >&2; exit 1; }

missing=()
for tool in podman buildah runc debootstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]})); then
    step "Installing ${missing[*]} (Debian packages podman buildah runc debootstrap)"
    command -v apt-get >/dev/null || fail "needs podman, buildah, runc and debootstrap; install them"
    sudo_if_needed() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
    sudo_if_needed apt-get install -y -q podman buildah runc debootstrap >/dev/null
fi
[ "$(id -u)" = 0 ] || fail "run as root: debootstrap and podman's overlay storage here need it"
[ -x "$toolchain/usr/bin/swift" ] || fail "no Swift toolchain at $toolchain (set SWIFT_TOOLCHAIN)"
[ -d "$packages" ] || fail "no local Swift package copies at $packages (set SWIFT_PACKAGES)"
if [ "$clip_model" = baked ] && [ ! -f models/clip-vit-base-patch32/config.json ]; then
    fail "CLIP_MODEL=baked needs the model in ./models/clip-vit-base-patch32: run make model first"
fi

# podman as CONTAINERS.md found it works here: runc (crun cannot run in this sandbox), limits the
# sandbox allows, overlay storage of our own.
mkdir -p "$state"
cat >"$state/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
cat >"$state/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$state/storage"
runroot = "$state/run"
CONF
export CONTAINERS_CONF="$state/containers.conf" CONTAINERS_STORAGE_CONF="$state/storage.conf"

base=docker.io/library/debian:bookworm-slim
builder=docker.io/library/swift:6.3-bookworm
if ! podman image exists "$base"; then
    mirror=$({ grep -rhoE '(URIs:|deb) +https?://[^ ]+/debian/?' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null || true; } \
        | head -1 | awk '{ print $2 }')
    mirror=${mirror:-http://deb.debian.org/debian}
    step "Base image $base: debootstrap --variant=minbase bookworm from $mirror"
    rootfs="$state/rootfs"
    rm -rf "$rootfs"
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$state/debootstrap.log" 2>&1 \
        || { tail -20 "$state/debootstrap.log" >&2; fail "debootstrap failed (log: $state/debootstrap.log)"; }
    printf 'deb %s bookworm main\ndeb %s bookworm-updates main\n' "$mirror" "$mirror" >"$rootfs/etc/apt/sources.list"
    # Trimmed as the official slim image is.
    rm -rf "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
        "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
        "$rootfs"/var/log/*.log
    find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
    tar -C "$rootfs" -c . | podman import - "$base" >/dev/null
    rm -rf "$rootfs"
fi
if ! podman image exists "$builder"; then
    step "Builder image $builder: the toolchain in $toolchain on $base"
    podman build --pull=never -t "$builder" -f deployment/local-builder.Containerfile "$toolchain"
fi

declare -A size_of cold_of
for image in "${images[@]}"; do
    name="image-api/$image:$tag"
    step "Building $name (PRODUCT=$image, CLIP_MODEL=$clip_model)"
    started=$(date +%s)
    podman build --pull=never --layers -v "$packages:$packages:ro" -f Containerfile \
        --build-arg PRODUCT="$image" --build-arg CLIP_MODEL="$clip_model" -t "$name" .
    echo "    built in $(($(date +%s) - started)) s"
done

base_bytes=$(podman image inspect --format '{{.Size}}' "$base")
for image in "${images[@]}"; do
    name="image-api/$image:$tag"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    step "Running $name on 127.0.0.1:$port"
    container=$(podman create -p "127.0.0.1:$port:8080" "$name")
    # Cold start: from the container's start to the first 200 on /healthz.
    cold=$(python3 - "$port" "$container" <<'PY'
import subprocess, sys, time, urllib.request
port, container = sys.argv[1], sys.argv[2]
started = time.monotonic()
subprocess.run(["podman", "start", container], check=True, stdout=subprocess.DEVNULL)
while time.monotonic() - started < 60:
    try:
        if urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).status == 200:
            print(f"{(time.monotonic() - started) * 1000:.0f}")
            sys.exit(0)
    except OSError:
        time.sleep(0.005)
sys.exit(1)
PY
    ) || { podman logs "$container" >&2; podman rm -f "$container" >/dev/null; fail "$name: /healthz did not answer 200 within 60 s"; }
    user=$(podman exec "$container" id -u)
    podman rm -f "$container" >/dev/null
    [ "$user" != 0 ] || fail "$name runs as root"
    bytes=$(podman image inspect --format '{{.Size}}' "$name")
    size_of[$image]=$bytes
    cold_of[$image]=$cold
    echo "    /healthz 200 after $cold ms, as uid $user"
done

echo
echo "Images (tag $tag, CLIP_MODEL=$clip_model), base $base $(awk -v b="$base_bytes" 'BEGIN { printf "%.1f MB", b / 1e6 }'):"
printf '%-20s %10s %14s %18s\n' image size "over the base" "cold start (ms)"
for image in "${images[@]}"; do
    awk -v name="$image" -v bytes="${size_of[$image]}" -v b="$base_bytes" -v cold="${cold_of[$image]}" \
        'BEGIN { printf "%-20s %7.1f MB %11.1f MB %18s\n", name, bytes / 1e6, (bytes - b) / 1e6, cold }'
done
