#!/usr/bin/env bash
# Tests a portable bundle on a clean root: a chroot that holds glibc (Debian's libc6 libraries and
# loader) and nothing else — no Swift toolchain, no ZeroMQ, OpenBLAS or libsodium, no shell — with the
# bundle unpacked in /opt/troupe and the tiny fixture model in /model. Inside it, as an unprivileged user:
#
#   1. the loader lists where every library of bin/troupe comes from: lib/ of the bundle or glibc;
#   2. troupe --version, troupe config, troupe keygen;
#   3. troupe run: a learner and an actor as child processes, 2 steps, an evaluation, summary.json;
#   4. an authenticated learner bound to every interface and an actor with weights fetched in chunks
#      (no shared memory, as between pods), each with --status-file, checked with troupe probe
#      (--require listening / joined) while they run; on SIGTERM the learner checkpoints and both exit 0.
#
#   bash cluster/bundle/test-bundle.sh TARBALL      # as root (chroot and a private mount namespace)
#
# Only the processes this script starts are waited for or signalled.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tarball=${1:?usage: test-bundle.sh TARBALL}
[[ -f $tarball ]] || { echo "test-bundle: $tarball does not exist (make it with cluster/bundle/make-bundle.sh)" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || { echo "test-bundle: needs root (chroot, mount namespace)" >&2; exit 1; }
for tool in unshare chroot dpkg-query tar; do
    command -v "$tool" >/dev/null || { echo "test-bundle: $tool is not on PATH" >&2; exit 1; }
done

log() { printf '[test-bundle %s] %s\n' "$(date '+%H:%M:%S')" "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }

root=$(mktemp -d /tmp/troupe-bundle-root.XXXXXX)
trap 'rm -rf "$root"' EXIT
chmod 0755 "$root"

# glibc only, from the libc6 package: its shared objects and the loader.
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
mkdir -p "$root/lib/$multiarch" "$root/lib64"
while read -r path; do
    [[ -e $path ]] && cp -L "$path" "$root/lib/$multiarch/$(basename "$path")"
done < <(dpkg-query -L libc6 | grep -E "/$multiarch/[^/]+\.so(\.[0-9]+)*$")
loader=$(readelf -l /bin/true 2>/dev/null | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
loader=${loader:-/lib64/ld-linux-x86-64.so.2}
mkdir -p "$root$(dirname "$loader")"
cp -L "$loader" "$root$loader"

mkdir -p "$root/opt/troupe" "$root/model" "$root/work" "$root/tmp" "$root/proc" "$root/dev" "$root/etc"
tar -xzf "$tarball" -C "$root/opt/troupe" --strip-components=1
cp -r "$repo/Tests/Fixtures/llama-tiny/." "$root/model/"
chmod 1777 "$root/tmp"
chown 10001:10001 "$root/work"
# Device nodes the processes open; bound one by one (no /dev/shm: the runs below use none or their own).
for node in null zero random urandom; do touch "$root/dev/$node"; done
find "$root" -path "$root/proc" -prune -o -path "$root/dev" -prune -o -type f -print | grep -q swift \
    && fail "the clean root holds a file named like the Swift toolchain"
log "clean root $root: $(find "$root/lib" "$root/lib64" -type f | wc -l) glibc files, bundle $(du -sh "$root/opt/troupe" | cut -f1)"

# OpenBLAS settings pass through untouched (the machine's kernel choice is the caller's).
openblas_env=$(env | grep '^OPENBLAS_' | tr '\n' ' ' || true)

# Runs the steps below inside a private mount namespace: /proc ($ORIGIN needs /proc/self/exe) and the
# device nodes are mounted there and vanish with it.
inside=$(cat <<'SCRIPT'
set -euo pipefail
root=$1; loader=$2; openblas_env=$3
mount -t proc proc "$root/proc"
for node in null zero random urandom; do mount --bind "/dev/$node" "$root/dev/$node"; done
chroot=$(command -v chroot)
as_user() { env -i PATH=/opt/troupe/bin HOME=/work TMPDIR=/tmp OPENBLAS_NUM_THREADS=1 $openblas_env "$chroot" --userspec=10001:10001 "$root" "$@"; }
# For background jobs (`exec_user … &`): the exec makes $! troupe itself, so the signals sent reach it.
exec_user() { exec env -i PATH=/opt/troupe/bin HOME=/work TMPDIR=/tmp OPENBLAS_NUM_THREADS=1 $openblas_env "$chroot" --userspec=10001:10001 "$root" "$@"; }
log() { printf '[test-bundle %s] %s\n' "$(date '+%H:%M:%S')" "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }

log "1. libraries as the loader resolves them in the clean root"
listing=$(as_user "$loader" --list /opt/troupe/bin/troupe) || { echo "$listing"; fail "the loader cannot resolve bin/troupe"; }
echo "$listing" | sed 's/^/    /'
echo "$listing" | grep -q 'not found' && fail "a library is not found"
echo "$listing" | grep '=>' | grep -Ev '=> (/opt/troupe/(bin/\.\./)?lib/|/lib/)' && fail "a library resolves outside the bundle and glibc"
for name in libzmq.so.5 libopenblas.so.0 libgfortran.so.5 libsodium.so.23 libstdc++.so.6; do
    echo "$listing" | grep -qF "$name => /opt/troupe/bin/../lib/$name" || fail "$name does not come from the bundle"
done

log "2. troupe --version, config, keygen"
version=$(as_user /opt/troupe/bin/troupe --version)
log "troupe --version: $version"
config=$(as_user /opt/troupe/bin/troupe config --set run.max_steps=2)
grep -q '"max_steps" : 2' <<<"$config" || fail "troupe config did not print the resolved configuration"
as_user /opt/troupe/bin/troupe keygen learner --role learner --directory /work/keys >/dev/null
as_user /opt/troupe/bin/troupe keygen a1 --directory /work/keys/allowed >/dev/null

tiny=(--set model.path=/model --set task.spec=arith:add2 --set task.count=16 --set sampling.group_size=4
      --set learner.batch_groups=2 --set sampling.max_new_tokens=6)
log "3. troupe run: 2 steps with one actor, evaluations at start and end"
start=$SECONDS
as_user /opt/troupe/bin/troupe run "${tiny[@]}" --set run.max_steps=2 --set actors.count=1 --set eval.every=0 \
    --set eval.samples=2 --set run.directory=/work/run --set learner.shared_memory_dir=/tmp/shm >"$root/work/run.out" 2>&1 \
    || { tail -n 30 "$root/work/run.out"; fail "troupe run"; }
[[ -f $root/work/run/summary.json ]] || fail "troupe run wrote no summary.json"
grep -q '"steps" : 2' "$root/work/run/summary.json" || { cat "$root/work/run/summary.json"; fail "summary.json does not say 2 steps"; }
log "troupe run finished 2 steps in $((SECONDS - start)) s"

log "4. an authenticated learner on every interface and an actor fetching chunks, probed through their status files"
base=${TROUPE_TEST_PORT_BASE:-$((20000 + RANDOM % 12000))}   # the Swift test passes a block it found free
ports=(--set endpoints.control_port=$base --set endpoints.weights_port=$((base + 1)) --set endpoints.announce_port=$((base + 2))
       --set endpoints.logs_port=$((base + 3)) --set endpoints.logs_in_port=$((base + 4)))
# Long enough (max_steps) that both are probed while they run; SIGTERM then stops them, as Kubernetes does.
exec_user /opt/troupe/bin/troupe learner "${tiny[@]}" "${ports[@]}" --set run.max_steps=100000 --set run.directory=/work/learner-run \
    --set learner.shared_memory_dir= --set 'endpoints.bind_host=*' --set endpoints.advertise_host=127.0.0.1 \
    --key /work/keys/learner.key_secret --allow /work/keys/allowed --status-file /tmp/learner.status >"$root/work/learner.out" 2>&1 &
learner=$!
probe() { as_user /opt/troupe/bin/troupe probe "$@"; }
wait_for() { # wait_for SECONDS PROBE-ARGS...
    local deadline=$((SECONDS + $1)); shift
    until probe "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || { probe "$@" || true; return 1; }
        sleep 0.5
    done
    probe "$@"
}
stop_all() { kill -TERM "$learner" ${actor:+"$actor"} 2>/dev/null || true; }
wait_for 60 /tmp/learner.status --max-age 10 --require listening || { stop_all; tail -n 20 "$root/work/learner.out"; fail "the learner never became ready"; }
probe /tmp/learner.status --require joined && { stop_all; fail "a learner's status passed --require joined"; }
exec_user /opt/troupe/bin/troupe actor --learner "tcp://127.0.0.1:$base" --key /work/keys/allowed/a1.key_secret \
    --learner-key /work/keys/learner.key --relay-advertise 127.0.0.1 --status-file /tmp/actor.status >"$root/work/actor.out" 2>&1 &
actor=$!
wait_for 60 /tmp/actor.status --max-age 10 --require joined || { stop_all; tail -n 20 "$root/work/actor.out"; fail "the actor never joined"; }
sleep 3
probe /tmp/learner.status --max-age 10 --require listening || { stop_all; fail "the learner's status went stale while it trained"; }
probe /tmp/actor.status --max-age 10 --require joined || { stop_all; fail "the actor's status went stale while it sampled"; }

kill -TERM "$learner"
status=0; wait "$learner" || status=$?
((status == 0)) || { stop_all; tail -n 30 "$root/work/learner.out"; fail "the learner exited with $status after SIGTERM"; }
ls "$root/work/learner-run/checkpoints" | grep -q '^step-.*\.safetensors$' || { stop_all; fail "the learner wrote no checkpoint on SIGTERM"; }
kill -TERM "$actor"
status=0; wait "$actor" || status=$?
((status == 0)) || { tail -n 30 "$root/work/actor.out"; fail "the actor exited with $status after SIGTERM"; }
log "learner and actor stopped cleanly on SIGTERM; checkpoints: $(ls "$root/work/learner-run/checkpoints" | tr '\n' ' ')"
SCRIPT
)
unshare --mount --propagation private bash -c "$inside" inside "$root" "$loader" "$openblas_env"
log "the bundle passed on a clean root"
