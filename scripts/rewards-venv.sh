#!/usr/bin/env bash
# Makes the virtualenv the reference reward worker (rewards/python/troupe_reward_worker.py) runs in:
# its pinned requirements from PyPI, and the Python code of Protos/troupe/v1/reward.proto generated
# with protoc into the venv (never committed; regenerated on every run of this script, with the
# SHA-256 of the reward.proto it came from, which the worker checks).
#   bash scripts/rewards-venv.sh            # .build/venv-rewards unless TROUPE_REWARDS_VENV names another
# Exits non-zero naming what is missing.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${TROUPE_REWARDS_VENV:-$repo/.build/venv-rewards}
source "$repo/scripts/venv-lib.sh"
command -v protoc >/dev/null || { echo "rewards-venv: protoc is needed (apt-get install protobuf-compiler)" >&2; exit 1; }
make_venv rewards-venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$repo/rewards/python/requirements.txt"
generated="$venv/troupe_proto"
rm -rf "$generated"
mkdir -p "$generated"
protoc --python_out="$generated" -I "$repo/Protos" "$repo/Protos/troupe/v1/reward.proto"
# What it was made from: the worker refuses code generated from another reward.proto.
sha256sum "$repo/Protos/troupe/v1/reward.proto" | cut -d' ' -f1 > "$generated/REWARD_PROTO_SHA256"
"$venv/bin/python" "$repo/rewards/python/troupe_reward_worker.py" --self-test \
    || { echo "rewards-venv: the reward worker's self-test failed in $venv" >&2; exit 1; }
echo "rewards-venv: protobuf, pyzmq, sympy and numpy installed in $venv; reward_pb2 generated in $generated"
