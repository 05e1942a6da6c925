#!/usr/bin/env bash
# Generates the Python protobuf code from Protos/troupe/v1/*.proto into clients/python/generated/
# (not committed; it records the .proto files' SHA-256, and troupe_client.proto refuses code made
# from other .proto files than those of this checkout).
# Needs protoc (Debian: protobuf-compiler 3.21.x, whose runtime requirements.txt pins).
#   bash clients/python/generate.sh [OUT]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${1:-$here/generated}
command -v protoc >/dev/null || { echo "generate.sh: protoc not found (apt-get install protobuf-compiler)" >&2; exit 1; }
rm -rf "$out"
mkdir -p "$out"
protoc --python_out="$out" -I "$repo/Protos" "$repo"/Protos/troupe/v1/*.proto
# What it was made from: troupe_client.proto refuses code older than the .proto files beside it.
(cd "$repo/Protos/troupe/v1" && LC_ALL=C ls *.proto | LC_ALL=C sort | xargs cat) | sha256sum | cut -d' ' -f1 > "$out/PROTOS_SHA256"
echo "generate.sh: wrote $(ls "$out"/troupe/v1/*_pb2.py | wc -l) modules to $out"
