#!/usr/bin/env bash
# Makes the virtualenv whose parsers the metrics-export tests read the learner's outputs with:
# TensorBoard's event-file reader and prometheus_client's text-format parser, from PyPI.
#   bash scripts/metrics-venv.sh            # .build/venv-metrics unless TROUPE_METRICS_VENV names another
# Exits non-zero naming what is missing.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${TROUPE_METRICS_VENV:-$repo/.build/venv-metrics}
source "$repo/scripts/venv-lib.sh"
make_venv metrics-venv "$venv"
# setuptools below 81 still has pkg_resources, which tensorboard 2.20 (default.py) imports.
"$venv/bin/pip" install --quiet --disable-pip-version-check "tensorboard==2.20.0" "prometheus_client==0.23.1" "setuptools<81"
"$venv/bin/python" -c "import tensorboard.backend.event_processing.event_accumulator, prometheus_client.parser" \
    || { echo "metrics-venv: the parsers do not import from $venv" >&2; exit 1; }
echo "metrics-venv: tensorboard and prometheus_client installed in $venv"
