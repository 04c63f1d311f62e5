#!/bin/sh
# Prints the Debian packages that hold the shared libraries a binary links (one per line), leaving
# out those every Debian image has (libc6, libgcc-s1, libstdc++6, zlib1g). Run in the builder
# stage of the Containerfile, where those libraries are installed. Fails when a library belongs to
# no package (a toolchain library: the binary was not built with --static-swift-stdlib).
set -eu
binary=$1
packages=""
for library in $(ldd "$binary" | awk '/=> \// { print $3 }'); do
    real=$(readlink -f "$library")
    # Debian registers a library under /lib or /usr/lib: ask for both spellings.
    owner=$(dpkg -S "$real" 2>/dev/null || dpkg -S "${real#/usr}" 2>/dev/null || dpkg -S "$library" 2>/dev/null) || {
        echo "runtime-packages: no Debian package holds $library, which $binary links" >&2
        exit 1
    }
    packages="$packages ${owner%%:*}"
done
for package in $packages; do
    case $package in libc6 | libgcc-s1 | libstdc++6 | zlib1g) ;; *) echo "$package" ;; esac
done | sort -u
