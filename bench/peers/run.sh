#!/usr/bin/env bash
# The peers' side of `troupe bench`, measured on this machine: TRL's GRPOTrainer on the rl-step
# workload, PyTorch training, Hugging Face generate and llama.cpp on troupe's model shapes. Writes
# the results file `troupe bench model` and `troupe bench rl-step` read for their ratios
# (docs/benchmarks.md, "The peers' side"). Never part of the tests or CI.
#   bash bench/peers/run.sh [results.json] [peers.py options, e.g. --only rl_step]
# The virtualenv is .build/venv-peers unless TROUPE_PEERS_VENV names another; troupe-bench is
# .build/release/troupe-bench unless TROUPE_BENCH names another. Run it with the machine quiet.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
venv=${TROUPE_PEERS_VENV:-$repo/.build/venv-peers}
bench=${TROUPE_BENCH:-$repo/.build/release/troupe-bench}
out=${1:-$repo/bench/peers/results.json}
[[ $# -gt 0 ]] && shift
[[ -x $bench ]] || { echo "peers: no troupe-bench at $bench (swift build -c release --product troupe-bench)" >&2; exit 1; }
source "$repo/scripts/venv-lib.sh"
make_venv peers "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$repo/bench/peers/requirements.txt"
workload=$(mktemp -d)
trap 'rm -rf "$workload"' EXIT
"$bench" rl-step --export-workload "$workload" >/dev/null
"$venv/bin/python" "$repo/bench/peers/peers.py" --workload "$workload" --out "$out" "$@"
