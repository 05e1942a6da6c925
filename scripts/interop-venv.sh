#!/usr/bin/env bash
# Makes the virtualenv of the reference Python actor and the wire conformance check (clients/python:
# pyzmq, protobuf, xxhash, numpy from PyPI, pinned in clients/python/requirements.txt) and generates
# the Python protobuf code from Protos/ (clients/python/generate.sh, needs protoc).
#   bash scripts/interop-venv.sh            # .build/venv-interop unless TROUPE_INTEROP_VENV names another
# Exits non-zero naming what is missing.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${TROUPE_INTEROP_VENV:-$repo/.build/venv-interop}
source "$repo/scripts/venv-lib.sh"
make_venv interop-venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$repo/clients/python/requirements.txt"
bash "$repo/clients/python/generate.sh"
"$venv/bin/python" -c "import sys; sys.path.insert(0, '$repo/clients/python'); import zmq, xxhash, numpy, troupe_client.proto" \
    || { echo "interop-venv: the client's modules do not import from $venv" >&2; exit 1; }
echo "interop-venv: pyzmq, protobuf, xxhash and numpy installed in $venv; Python protobuf code generated"
