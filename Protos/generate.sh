#!/usr/bin/env bash
# Regenerates Sources/TroupeProto/*.pb.swift from Protos/troupe/v1/*.proto.
#
# Run it after editing a .proto file and commit the result: the package never runs protoc itself
# (swift-protobuf's build plugin compiles protoc from source, ~9 minutes per clean build).
#
# Needs Debian's protoc (`apt-get install protobuf-compiler`, 3.21.x is known to work) and builds
# protoc-gen-swift at the same version as the SwiftProtobuf runtime in Package.swift, because the
# generated code checks the runtime's API version at compile time. The tool is cached in
# $PROTOC_GEN_SWIFT_CACHE (default ~/.cache/troupe/protoc-gen-swift-$VERSION); the first run takes
# a minute or two, later runs well under a second.
#
# Usage: Protos/generate.sh [--check]
#   --check  regenerate into a temporary folder and fail if it differs from the committed code.
set -euo pipefail

SWIFT_PROTOBUF_VERSION=1.39.0
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROTO_ROOT="$ROOT/Protos"
OUT="$ROOT/Sources/TroupeProto"
CACHE="${PROTOC_GEN_SWIFT_CACHE:-$HOME/.cache/troupe/protoc-gen-swift-$SWIFT_PROTOBUF_VERSION}"
PLUGIN="$CACHE/protoc-gen-swift"

command -v protoc >/dev/null || { echo "generate.sh: protoc not found (apt-get install protobuf-compiler)" >&2; exit 1; }

if [[ ! -x "$PLUGIN" ]]; then
    echo "generate.sh: building protoc-gen-swift $SWIFT_PROTOBUF_VERSION into $CACHE" >&2
    mkdir -p "$CACHE"
    SRC="$CACHE/src"
    rm -rf "$SRC"
    git clone --quiet --depth 1 --branch "$SWIFT_PROTOBUF_VERSION" https://github.com/apple/swift-protobuf "$SRC" 2>/dev/null \
        || { rm -rf "$SRC"; git clone --quiet https://github.com/apple/swift-protobuf "$SRC"; \
             git -C "$SRC" checkout --quiet "$SWIFT_PROTOBUF_VERSION"; }
    swift build --package-path "$SRC" -c release --product protoc-gen-swift >&2
    cp "$(swift build --package-path "$SRC" -c release --show-bin-path)/protoc-gen-swift" "$PLUGIN"
fi

generate_into() {
    local dest="$1"
    mkdir -p "$dest"
    # Every file lands in one flat module; FileNaming=DropPath keeps names like envelope.pb.swift.
    protoc --plugin=protoc-gen-swift="$PLUGIN" \
        --swift_opt=Visibility=Public --swift_opt=FileNaming=DropPath \
        --swift_out="$dest" -I "$PROTO_ROOT" "$PROTO_ROOT"/troupe/v1/*.proto
}

if [[ "${1:-}" == "--check" ]]; then
    TMP="$(mktemp -d)"
    trap 'rm -rf "$TMP"' EXIT
    generate_into "$TMP"
    # Sources/TroupeProto holds generated files only, so the two folders must be identical.
    if diff -r "$TMP" "$OUT" >/dev/null; then
        echo "generate.sh: Sources/TroupeProto is up to date"
    else
        echo "generate.sh: Sources/TroupeProto is stale; run Protos/generate.sh and commit" >&2
        exit 1
    fi
    exit 0
fi

rm -f "$OUT"/*.pb.swift
generate_into "$OUT"
echo "generate.sh: wrote $(ls "$OUT"/*.pb.swift | wc -l) files to Sources/TroupeProto"
