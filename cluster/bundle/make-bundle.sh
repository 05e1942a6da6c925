#!/usr/bin/env bash
# Builds the portable bundle: `troupe` linked with the static Swift standard library and Foundation,
# plus every shared library it loads that is not part of glibc, in one tarball that runs on a Linux
# x86-64 machine without the Swift toolchain.
#
#   bash cluster/bundle/make-bundle.sh [--out DIR]     # default DIR: .build/bundle
#
# Writes DIR/troupe-VERSION-linux-ARCH.tar.gz, holding troupe-VERSION/{bin/troupe, lib/*.so*,
# BUNDLE.txt}. BUNDLE.txt names each bundled library, the Debian package it came from, and the glibc
# floor: the highest GLIBC_x.y symbol version the binary and the libraries need (measured here with
# objdump -T). The build uses its own scratch directory (.build/bundle), so the normal .build is untouched.
#
# Why the link flags: the binary finds lib/ through an rpath of $ORIGIN/../lib, written as DT_RPATH
# (--disable-new-dtags) because DT_RUNPATH applies only to the binary's own dependencies: OpenBLAS's
# libgfortran or libzmq's libsodium would then come from the host, or not at all.
set -euo pipefail
caller=$PWD
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

out=.build/bundle
while (($#)); do
    case "$1" in
        # A relative --out is the caller's, not the repository's.
        --out) out=${2:?--out needs a directory}; [[ $out == /* ]] || out=$caller/$out; shift 2 ;;
        -h | --help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "make-bundle: unknown argument $1 (usage: make-bundle.sh [--out DIR])" >&2; exit 2 ;;
    esac
done
for tool in swift objdump ldd tar strip dpkg-query; do
    command -v "$tool" >/dev/null || { echo "make-bundle: $tool is not on PATH" >&2; exit 1; }
done

log() { printf '[make-bundle %s] %s\n' "$(date '+%H:%M:%S')" "$*" >&2; }

scratch=.build/bundle
start=$SECONDS
log "swift build -c release --product troupe --static-swift-stdlib (scratch $scratch)"
# shellcheck disable=SC2016 # $ORIGIN is the dynamic loader's, not the shell's
swift build -c release --product troupe --scratch-path "$scratch" --static-swift-stdlib \
    -Xlinker --disable-new-dtags -Xlinker -rpath -Xlinker '$ORIGIN/../lib'
log "built in $((SECONDS - start)) s"
binary=$(swift build -c release --scratch-path "$scratch" --show-bin-path)/troupe

version=$("$binary" --version)
arch=$(uname -m)
name=troupe-$version-linux-$arch
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root=$stage/$name
mkdir -p "$root/bin" "$root/lib"
cp "$binary" "$root/bin/troupe"
strip "$root/bin/troupe"

# Every library the loader resolves for the binary, transitively (ldd lists the closure). glibc's own
# libraries stay with the host: they must match its kernel interface and its loader.
is_glibc() {
    case "$1" in
        ld-linux*.so.* | libc.so.* | libm.so.* | libpthread.so.* | libdl.so.* | librt.so.* | libresolv.so.* | libutil.so.* | libanl.so.* | libnss_*.so.* | linux-vdso.so.*) return 0 ;;
        *) return 1 ;;
    esac
}
toolchain=$(dirname "$(dirname "$(readlink -f "$(command -v swift)")")")
manifest=$root/BUNDLE.txt
libraries=()
while read -r soname path; do
    is_glibc "$soname" && continue
    [[ -n $path && -e $path ]] || { log "error: ldd cannot resolve $soname for $binary"; exit 1; }
    case "$(readlink -f "$path")" in
        "$toolchain"/*) log "error: $soname resolves into the Swift toolchain ($path): the static link did not take"; exit 1 ;;
    esac
    cp -L "$path" "$root/lib/$soname"
    chmod 0644 "$root/lib/$soname"
    # dpkg knows a file by the path it installed (merged /usr: /lib/... or /usr/lib/...): try both.
    package=$( (dpkg-query -S "$path" || dpkg-query -S "$(readlink -f "$path")") 2>/dev/null | cut -d: -f1 | head -n1 || true)
    libraries+=("$soname ${package:-(package unknown)}")
done < <(ldd "$binary" | awk '$2 == "=>" { print $1, $3 } $2 != "=>" && $1 !~ /^\// { print $1, "" }')

# The glibc floor: the highest GLIBC_ symbol version any bundled file asks the host's glibc for.
glibc_needed() { objdump -T "$1" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -t. -k1,1n -k2,2n -k3,3n -u | tail -n 1; }
floor=0 floor_files=()
for f in "$root/bin/troupe" "$root"/lib/*; do
    needed=$(glibc_needed "$f")
    [[ -n $needed ]] || continue
    if [[ $needed == "$floor" ]]; then
        floor_files+=("${f#"$root"/}")
    elif [[ $(printf '%s\n%s\n' "$floor" "$needed" | sort -t. -k1,1n -k2,2n -k3,3n | tail -n 1) == "$needed" ]]; then
        floor=$needed floor_files=("${f#"$root"/}")
    fi
done
binary_floor=$(glibc_needed "$root/bin/troupe")
{
    echo "troupe $version for Linux $arch, built $(date -u '+%Y-%m-%d') with $(swift --version 2>&1 | head -n 1)"
    echo "glibc floor: $floor (the highest GLIBC_ symbol version the binary and lib/ need, objdump -T: ${floor_files[*]};"
    echo "  bin/troupe alone needs $binary_floor)"
    echo "run: bin/troupe --help   (lib/ is found through the binary's rpath \$ORIGIN/../lib; keep the layout)"
    echo "OpenBLAS picks its kernel from the CPU; on a CPU it does not recognise (some VMs) it falls back to slow"
    echo "generic kernels: set OPENBLAS_CORETYPE (e.g. Haswell or SkylakeX) there."
    echo
    echo "bundled libraries (Debian package they came from):"
    printf '  %s\n' "${libraries[@]}"
} >"$manifest"

mkdir -p "$out"
tarball=$out/$name.tar.gz
tar -C "$stage" --owner=0 --group=0 --numeric-owner -czf "$tarball" "$name"
log "wrote $tarball ($(du -h "$tarball" | cut -f1); unpacked $(du -sh "$root" | cut -f1)); glibc floor $floor"
echo "$tarball"
