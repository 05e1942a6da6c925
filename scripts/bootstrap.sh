#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine (as root), builds Troupe in release mode, then either runs the
# main job or every test. The README's two commands:
#
#   bash scripts/bootstrap.sh run [options for `troupe run`]   # test-time RL with the defaults
#   bash scripts/bootstrap.sh test                             # every test target (what CI runs)
#
# Installs only the apt packages that are missing (nothing is fetched when all are present). Swift
# itself is not installed here: it is a tarball from swift.org; the script says how to get it.
# OPENBLAS_* variables are passed through untouched: the machine's kernel choice is the caller's.
set -euo pipefail

usage() {
    echo "usage: bash scripts/bootstrap.sh run [troupe run options...]" >&2
    echo "       bash scripts/bootstrap.sh test" >&2
}

MODE=${1:-}
case "$MODE" in
    run | test) shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage; exit 2 ;;
esac
if [[ $MODE == test && $# -gt 0 ]]; then
    echo "bootstrap: 'test' takes no arguments (got: $*)" >&2
    exit 2
fi

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '[bootstrap %s] %s\n' "$(date '+%Y-%m-%d %H:%M:%S')" "$*" >&2; }

# --- apt packages ---------------------------------------------------------------------------------
# Libraries Package.swift links (ZeroMQ, OpenBLAS, libsodium) and pkg-config, which finds OpenBLAS;
# the report test renders pages in headless Chromium; the fault-injection suite builds network
# namespaces (iproute2) with loss and partitions (nftables); the cluster test runs a Slurm cluster
# (cluster/lab/slurm-lab.sh: munge, slurmctld, slurmd and the client commands); the Kubernetes
# manifests are validated with checkers from PyPI in a virtualenv (python3-venv); the interop clients
# (clients/: wire conformance, the C client, the reference Python actor) generate their protobuf code
# with protoc and protoc-c, and the C client is built with gcc and make, linking protobuf-c and xxHash;
# protoc also generates the reference reward worker's Python protobuf code (scripts/rewards-venv.sh).
packages=(libzmq3-dev libopenblas-dev libsodium-dev pkg-config)
[[ $MODE == test ]] && packages+=(chromium iproute2 nftables munge slurmctld slurmd slurm-client python3-venv
                                  protobuf-compiler protobuf-c-compiler libprotobuf-c-dev libxxhash-dev make gcc)

log "phase: apt packages (${packages[*]})"
installed() { dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed'; }
missing=()
for package in "${packages[@]}"; do
    installed "$package" || missing+=("$package")
done
if ((${#missing[@]} == 0)); then
    log "all present"
else
    log "missing: ${missing[*]}"
    as_root=()
    if [[ $(id -u) -ne 0 ]]; then
        if command -v sudo >/dev/null; then
            as_root=(sudo)
        else
            log "error: installing ${missing[*]} needs root; run this script as root (or install them yourself)"
            exit 1
        fi
    fi
    "${as_root[@]}" apt-get update
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
    log "installed: ${missing[*]}"
fi

# --- Swift ----------------------------------------------------------------------------------------
log "phase: swift toolchain"
if ! command -v swift >/dev/null; then
    cat >&2 <<'MSG'
bootstrap: `swift` is not on PATH. Troupe needs Swift 6.3 (6.3.1 tested). On Debian 12:

  apt-get install -y binutils git gnupg2 libc6-dev libcurl4-openssl-dev libedit2 libgcc-12-dev \
      libpython3-dev libsqlite3-0 libstdc++-12-dev libxml2-dev libz3-dev pkg-config tzdata zlib1g-dev
  curl -LO https://download.swift.org/swift-6.3.1-release/debian12/swift-6.3.1-RELEASE/swift-6.3.1-RELEASE-debian12.tar.gz
  tar -xzf swift-6.3.1-RELEASE-debian12.tar.gz -C /opt
  export PATH=/opt/swift-6.3.1-RELEASE-debian12/usr/bin:$PATH

(or see https://www.swift.org/install/linux/), then run this script again.
MSG
    exit 1
fi
swift_version=$(swift --version 2>&1 | head -n 1)
log "$swift_version"
case "$swift_version" in
    *"Swift version 6.3"*) ;;
    *) log "warning: Troupe is built and tested with Swift 6.3; this toolchain may not build it" ;;
esac

openblas_settings=$(env | grep '^OPENBLAS_' | sort | paste -sd ' ' - || true)
log "OpenBLAS environment: ${openblas_settings:-none set (OpenBLAS picks its kernel and threads itself)}"

# --- build ----------------------------------------------------------------------------------------
log "phase: swift build -c release"
build_start=$SECONDS
swift build -c release
log "built in $((SECONDS - build_start))s"

# --- run or test ----------------------------------------------------------------------------------
if [[ $MODE == run ]]; then
    log "phase: troupe run $*"
    exec .build/release/troupe run "$@"
fi

# The portable bundle (a second, static build in .build/bundle) and the Kubernetes manifests'
# checkers, for Tests/TroupeIntegrationTests/Cluster/ClusterRecipeTests.swift.
log "phase: portable bundle (cluster/bundle/make-bundle.sh) and k8s checkers (cluster/k8s/validate.sh --install)"
bundle_start=$SECONDS
bash cluster/bundle/make-bundle.sh
log "bundle made in $((SECONDS - bundle_start))s"
bash cluster/k8s/validate.sh --install
# TensorBoard's and prometheus_client's parsers, which read back what the learner exports
# (Tests/TroupeIntegrationTests/MetricsExportTests.swift).
log "phase: metrics parsers (scripts/metrics-venv.sh)"
bash scripts/metrics-venv.sh
# pyzmq, protobuf, xxhash and numpy for the reference Python actor and the wire conformance check, and
# the Python protobuf code generated from Protos/ (Tests/TroupeIntegrationTests/InteropClientsTests.swift).
log "phase: interop clients (scripts/interop-venv.sh)"
bash scripts/interop-venv.sh
# The reference reward worker's virtualenv and generated protobuf code
# (Tests/TroupeIntegrationTests/RewardWorkerIntegrationTests.swift).
log "phase: reward worker (scripts/rewards-venv.sh)"
bash scripts/rewards-venv.sh

if [[ ! -d models/arith-base ]]; then
    log "note: models/arith-base is missing; tests that need a model build their own tiny ones"
fi
# The fault-injection suite and the Slurm cluster scenario run on their own after the others: they
# time evictions and recoveries, which must not compete with other tests for the cores.
run_tests() {
    local what=$1
    shift
    log "phase: swift test -c release $* ($what)${CI:+ (CI=$CI)}"
    local start=$SECONDS
    if swift test -c release "$@"; then
        log "$what passed in $((SECONDS - start))s"
    else
        local status=$?
        log "$what FAILED (exit status $status) after $((SECONDS - start))s"
        exit "$status"
    fi
}
run_tests "every test but the fault-injection suite and the Slurm cluster" --skip FaultInjectionTests --skip SlurmClusterTests
run_tests "the fault-injection suite" --skip-build --filter FaultInjectionTests
run_tests "the Slurm cluster scenario" --skip-build --filter SlurmClusterTests
log "all tests passed"
