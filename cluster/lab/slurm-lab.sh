#!/usr/bin/env bash
# A real Slurm cluster on one Linux machine, for trying the recipes in cluster/slurm and for CI:
# one slurmd per node, each node in a network namespace of its own with its own address on a private
# bridge, so the learner and the actors run on different "hosts" (distinct addresses and host names,
# no loopback between them). The controller and the "login" host share one more namespace. Needs root, iproute2,
# nsenter (util-linux) and the Slurm and munge daemons (Debian: slurmctld slurmd slurm-client munge).
#
#   cluster/lab/slurm-lab.sh up   [--dir DIR] [--nodes N] [--cpus C]   # prints the lab's environment file
#   cluster/lab/slurm-lab.sh down [--dir DIR]
#   cluster/lab/slurm-lab.sh login [--dir DIR] COMMAND…                   # run a command on the login host
#
# `up` writes DIR/lab.env (SLURM_CONF, the login namespace, the subnet) for `login` and for tests.
# Everything the lab starts lives in its namespaces or is recorded in DIR; `down` ends only that: the
# jobs' processes inside the lab's namespaces, the daemons it started (by their pid files), the
# namespaces, and the root namespace's `unreachable` route for the lab's subnet (which keeps any
# packet for the lab's addresses from leaving through the machine's gateway).
set -Eeuo pipefail

usage() {
    sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//' >&2
}

bringing_up=0
die() {
    echo "slurm-lab: $*" >&2
    if ((bringing_up)); then bringing_up=0; log "bring-up failed; tearing down"; lab_down; fi
    exit 1
}
log() { printf '[slurm-lab %s] %s\n' "$(date '+%H:%M:%S')" "$*" >&2; }

command=${1:-}
[[ -n $command ]] || { usage; exit 2; }
shift
dir=/tmp/troupe-slurm-lab
nodes=5
cpus=2
while [[ $# -gt 0 ]]; do
    case "$1" in
        --dir) dir=${2:?--dir needs a directory}; shift 2 ;;
        --nodes) nodes=${2:?--nodes needs a count}; shift 2 ;;
        --cpus) cpus=${2:?--cpus needs a count}; shift 2 ;;
        --) shift; break ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) break ;;
    esac
done
if ! [[ $nodes =~ ^[1-9][0-9]?$ ]] || ((nodes > 50)); then die "--nodes must be 1…50 (got $nodes)"; fi
[[ $cpus =~ ^[1-9][0-9]?$ ]] || die "--cpus must be 1…99 (got $cpus)"
[[ $dir == /* ]] || dir=$PWD/$dir

need_root_tools() {
    [[ $(id -u) -eq 0 ]] || die "needs root (network namespaces, the Slurm daemons)"
    local t
    for t in ip nsenter munged mungekey slurmctld slurmd sbatch sinfo scontrol; do
        command -v "$t" >/dev/null || die "\`$t\` is not installed (Debian: apt-get install iproute2 util-linux munge slurmctld slurmd slurm-client)"
    done
}

# The lab's names derive from a token kept in DIR, so two labs (two DIRs) never share a namespace.
load_state() {
    [[ -f $dir/lab.env ]] || die "no lab in $dir (run: $0 up --dir $dir)"
    # shellcheck disable=SC1091
    source "$dir/lab.env"
}

namespace_pids() { ip netns pids "$1" 2>/dev/null || true; }

stop_pids() {
    # SIGTERM, then SIGKILL after 5 s; a zombie counts as gone (PID 1 here reaps orphans only every few seconds).
    local pids=("$@") pid deadline=$((SECONDS + 5))
    ((${#pids[@]})) || return 0
    kill -TERM "${pids[@]}" 2>/dev/null || true
    while ((SECONDS < deadline)); do
        local alive=0
        for pid in "${pids[@]}"; do
            [[ -d /proc/$pid ]] && [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]] && alive=1
        done
        ((alive)) || return 0
        sleep 0.1
    done
    kill -KILL "${pids[@]}" 2>/dev/null || true
}

lab_down() {
    [[ -f $dir/lab.env ]] || { log "no lab in $dir: nothing to stop"; return 0; }
    load_state
    local ns pidfile
    # Jobs first (while the controller still runs), so nothing is requeued behind our back.
    if [[ -e /run/netns/$LAB_LOGIN_NETNS ]]; then
        SLURM_CONF=$SLURM_CONF timeout 10 nsenter --net="/run/netns/$LAB_LOGIN_NETNS" scancel --full --quiet --user=root 2>/dev/null || true
    fi
    for pidfile in "$dir"/run/*.pid; do
        [[ -f $pidfile ]] || continue
        local pid
        pid=$(cat "$pidfile")
        [[ $pid =~ ^[0-9]+$ ]] && stop_pids "$pid"
        rm -f "$pidfile"
    done
    for ns in $LAB_NAMESPACES; do
        # Whatever still runs in the lab's hosts (job steps, their children) is the lab's own.
        mapfile -t leftover < <(namespace_pids "$ns")
        ((${#leftover[@]})) && stop_pids "${leftover[@]}"
        ip netns delete "$ns" 2>/dev/null || true
    done
    ip route del unreachable "$LAB_SUBNET" 2>/dev/null || true
    rm -f "$dir/lab.env"
    log "lab in $dir stopped"
}

# A 10.232.N.0/24 that no route of this machine mentions yet.
free_subnet() {
    local n
    for _ in $(seq 40); do
        n=$((RANDOM % 254 + 1))
        if [[ -z $(ip -4 route show table all to root "10.232.$n.0/24") ]]; then echo "10.232.$n"; return; fi
    done
    die "no free 10.232.N.0/24 subnet"
}

write_slurm_conf() {
    local i
    cat >"$dir/slurm.conf" <<EOF
# Written by cluster/lab/slurm-lab.sh: a lab of $nodes nodes, each its own network namespace.
ClusterName=troupelab
SlurmctldHost=$(hostname -s)($LAB_PREFIX.2)
SlurmctldPort=6817
SlurmdPort=6818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd-%n.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
# Heterogeneous jobs are started only by the backfill scheduler: look every second, not every 30 s.
SchedulerParameters=bf_interval=1,bf_hetjob_immediate
# Declared CPUs may exceed the machine's (a lab on a 2-core machine).
SlurmdParameters=config_overrides
KillWait=30
EOF
    for ((i = 1; i <= nodes; i++)); do
        echo "NodeName=node$i NodeHostname=node$i NodeAddr=$LAB_PREFIX.$((10 + i)) CPUs=$cpus RealMemory=2000 State=UNKNOWN" >>"$dir/slurm.conf"
    done
    echo "PartitionName=lab Nodes=node[1-$nodes] Default=YES MaxTime=INFINITE State=UP" >>"$dir/slurm.conf"
}

# A host: a namespace with loopback up and one veth into the bridge namespace.
add_host() {
    local ns=$1 address=$2 index=$3
    ip netns add "$ns"
    ip link add "tl${LAB_TOKEN}h$index" type veth peer name "tl${LAB_TOKEN}s$index"
    ip link set "tl${LAB_TOKEN}h$index" netns "$ns"
    ip link set "tl${LAB_TOKEN}s$index" netns "$LAB_BRIDGE_NETNS"
    ip -n "$LAB_BRIDGE_NETNS" link set "tl${LAB_TOKEN}s$index" master labbr0
    ip -n "$LAB_BRIDGE_NETNS" link set "tl${LAB_TOKEN}s$index" up
    ip -n "$ns" link set "tl${LAB_TOKEN}h$index" name lab0
    ip -n "$ns" addr add "$address/24" dev lab0
    ip -n "$ns" link set lab0 up
    ip -n "$ns" link set lo up
}

wait_for() {
    local what=$1 seconds=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || die "timed out after ${seconds}s waiting for $what (logs in $dir/log)"
        sleep 0.2
    done
}

all_nodes_idle() {
    local states
    states=$(SLURM_CONF=$dir/slurm.conf nsenter --net="/run/netns/$LAB_LOGIN_NETNS" sinfo --noheader --Node --format='%T' 2>/dev/null) || return 1
    [[ $(grep -c '^idle$' <<<"$states") -eq $nodes ]]
}

# The daemons must inherit no descriptor from our caller: a caller that learns of our exit through a
# descriptor it passed us (Foundation's Process does) would wait for the daemons instead.
close_inherited_descriptors() {
    local fd
    for fd in "/proc/$$/fd"/*; do
        fd=${fd##*/}
        if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
}

lab_up() {
    need_root_tools
    close_inherited_descriptors
    if [[ -f $dir/lab.env ]]; then
        load_state
        if [[ -e /run/netns/$LAB_LOGIN_NETNS ]] && all_nodes_idle; then
            log "lab already up in $dir"
            cat "$dir/lab.env"
            return 0
        fi
        lab_down
    fi
    mkdir -p "$dir"/{run,log,state,spool,munge}
    chmod 0755 "$dir" "$dir/munge"
    LAB_TOKEN=$(printf '%04x' $((RANDOM * 2 % 65536)))
    LAB_PREFIX=$(free_subnet)
    LAB_SUBNET=$LAB_PREFIX.0/24
    LAB_BRIDGE_NETNS=troupe-lab-$LAB_TOKEN-sw
    LAB_LOGIN_NETNS=troupe-lab-$LAB_TOKEN-login
    LAB_NAMESPACES="$LAB_LOGIN_NETNS"
    local i
    for ((i = 1; i <= nodes; i++)); do LAB_NAMESPACES+=" troupe-lab-$LAB_TOKEN-node$i"; done
    LAB_NAMESPACES+=" $LAB_BRIDGE_NETNS"
    cat >"$dir/lab.env" <<EOF
LAB_DIR=$dir
LAB_TOKEN=$LAB_TOKEN
LAB_PREFIX=$LAB_PREFIX
LAB_SUBNET=$LAB_SUBNET
LAB_NODES=$nodes
LAB_BRIDGE_NETNS=$LAB_BRIDGE_NETNS
LAB_LOGIN_NETNS=$LAB_LOGIN_NETNS
LAB_LOGIN_ADDRESS=$LAB_PREFIX.2
LAB_NAMESPACES="$LAB_NAMESPACES"
SLURM_CONF=$dir/slurm.conf
EOF
    # From here on, a failure tears down what was made.
    bringing_up=1
    trap 'die "a bring-up command failed (line $LINENO)"' ERR

    ip route add unreachable "$LAB_SUBNET"
    ip netns add "$LAB_BRIDGE_NETNS"
    ip -n "$LAB_BRIDGE_NETNS" link add labbr0 type bridge
    ip -n "$LAB_BRIDGE_NETNS" link set labbr0 up
    add_host "$LAB_LOGIN_NETNS" "$LAB_PREFIX.2" 0
    for ((i = 1; i <= nodes; i++)); do add_host "troupe-lab-$LAB_TOKEN-node$i" "$LAB_PREFIX.$((10 + i))" "$i"; done

    # munge: a daemon of the lab's own (its own key and socket; the network namespace does not matter to
    # a unix socket, so every host's daemons share it).
    [[ -f $dir/munge/munge.key ]] || mungekey --create --keyfile="$dir/munge/munge.key" 2>/dev/null \
        || dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
    chmod 0600 "$dir/munge/munge.key"
    # Daemons get no terminal and none of our output streams: a caller reading our output to its end
    # (a test) would otherwise wait for the daemons to exit.
    munged --force --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
        --pid-file="$dir/run/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed" \
        </dev/null >>"$dir/log/munged.log" 2>&1
    wait_for "munged" 10 test -S "$dir/munge/munge.socket"

    write_slurm_conf
    export SLURM_CONF=$dir/slurm.conf
    nsenter --net="/run/netns/$LAB_LOGIN_NETNS" slurmctld -c -f "$SLURM_CONF" </dev/null >>"$dir/log/slurmctld.log" 2>&1
    for ((i = 1; i <= nodes; i++)); do
        # nsenter, not `ip netns exec`: the latter remounts /sys, which slurmd's plugins read. Each node also
        # gets a host name of its own (a UTS namespace), as real nodes have, so that a process can tell
        # it runs on another host than the learner.
        # shellcheck disable=SC2016 # $1 and $2 are the inner script's own arguments
        nsenter --net="/run/netns/troupe-lab-$LAB_TOKEN-node$i" unshare --uts \
            bash -c 'hostname "$1" && exec slurmd -N "$1" -f "$2"' slurmd-launcher "node$i" "$SLURM_CONF" \
            </dev/null >>"$dir/log/slurmd-node$i.log" 2>&1
    done
    wait_for "$nodes idle nodes" 30 all_nodes_idle
    trap - ERR
    bringing_up=0
    log "lab up: $nodes nodes on $LAB_SUBNET, controller and login host at $LAB_PREFIX.2; environment in $dir/lab.env"
    cat "$dir/lab.env"
}

case "$command" in
    up) lab_up ;;
    down) need_root_tools; lab_down ;;
    login)
        load_state
        [[ $# -gt 0 ]] || die "login needs a command"
        SLURM_CONF=$SLURM_CONF exec nsenter --net="/run/netns/$LAB_LOGIN_NETNS" "$@"
        ;;
    -h | --help | help) usage ;;
    *) usage; exit 2 ;;
esac
