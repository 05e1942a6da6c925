#!/usr/bin/env bash
# Generates the Python protobuf code from Protos/troupe/v1/*.proto into clients/python/generated/
# (not committed: every run makes it from the .proto files, so it cannot drift from them).
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
echo "generate.sh: wrote $(ls "$out"/troupe/v1/*_pb2.py | wc -l) modules to $out"
