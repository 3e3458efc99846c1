#!/bin/bash
# A real single-node Slurm, started by this test as its own processes, runs
# a small campaign through `sbatch --array`; then the summary is merged
# (docs/campaigns.md).  Usage: slurm-test.sh BUILD_DIR.  Exit 77: skipped.
set -euo pipefail

build=$(cd "${1:?usage: slurm-test.sh BUILD_DIR}" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
campaign=$here/../../scripts/campaign/hvcampaign
export HVTRACE_BIN=$build

for t in munged mungekey slurmctld slurmd sbatch squeue sinfo python3 jq; do
        if ! command -v "$t" >/dev/null; then
                echo "SKIP: $t is not installed (scripts/deps.sh installs munge, slurmctld, slurmd, slurm-client)"
                exit 77
        fi
done

tmp=$(mktemp -d /tmp/hvcampaign-slurm.XXXXXX)
pids=()
# Our daemons and every step they started carry this in their environment,
# so they are found and stopped by PID, never by name.
export HV_SLURM_TEST_MARK=$tmp

stop_all() {
        local p
        for p in "${pids[@]}"; do
                kill "$p" 2>/dev/null || true
        done
        # slurmstepd ignores SIGTERM: anything left that carries our mark.
        for p in /proc/[0-9]*; do
                p=${p#/proc/}
                [ "$p" = $$ ] && continue
                if { tr '\0' '\n' <"/proc/$p/environ"; } 2>/dev/null |
                        grep -qx "HV_SLURM_TEST_MARK=$tmp"; then
                        kill -KILL "$p" 2>/dev/null || true
                fi
        done
        for p in "${pids[@]}"; do
                wait "$p" 2>/dev/null || true
        done
        if [ -n "${HV_KEEP_TMP:-}" ]; then
                echo "kept $tmp"
        else
                rm -rf "$tmp"
        fi
}
trap stop_all EXIT

fail() {
        echo "FAIL: $*"
        for f in "$tmp"/*.log; do
                echo "--- $f"
                tail -n 20 "$f"
        done
        exit 1
}

free_port() {
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# munge: a private daemon with its own key, socket, pid, seed and log files.
mkdir -p "$tmp/munge" "$tmp/state" "$tmp/spool"
chmod 700 "$tmp/munge"
mungekey -c -k "$tmp/munge/munge.key" >/dev/null 2>&1 || fail "mungekey"
munged -F --force -S "$tmp/munge/munge.sock" --key-file "$tmp/munge/munge.key" \
        --pid-file "$tmp/munge/munged.pid" --seed-file "$tmp/munge/munge.seed" \
        --log-file "$tmp/munged.log" 2>"$tmp/munged.out.log" &
pids+=($!)

ctld_port=$(free_port)
slurmd_port=$(free_port)
while [ "$slurmd_port" = "$ctld_port" ]; do
        slurmd_port=$(free_port)
done
cpus=$(nproc)
conf=$tmp/slurm.conf
cat >"$conf" <<CONF
ClusterName=hvtest
SlurmctldHost=localhost
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$tmp/munge/munge.sock
SlurmUser=$(id -un)
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/slurmctld.log
SlurmdLogFile=$tmp/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
ReturnToService=2
MinJobAge=600
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
MailProg=/bin/true
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=hv Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$conf

for _ in $(seq 50); do
        [ -S "$tmp/munge/munge.sock" ] && break
        sleep 0.1
done
[ -S "$tmp/munge/munge.sock" ] || fail "munged did not start"

slurmctld -D -i -f "$conf" >"$tmp/slurmctld.out.log" 2>&1 &
pids+=($!)
slurmd -D -N localhost -f "$conf" >"$tmp/slurmd.out.log" 2>&1 &
pids+=($!)

state=""
for _ in $(seq 300); do
        state=$(sinfo -h -N -o %T 2>/dev/null || true)
        [ "$state" = idle ] && break
        sleep 0.1
done
[ "$state" = idle ] || fail "the node is '$state', not idle, after 30 s"
echo "slurm: cluster up, node idle"

# 8 runs on emu: two seeds, real and long mode, the default and eager-step policies.
"$campaign" plan --seeds 1-2 --modes real,long --backends emu --policies window,eager-step \
        >"$tmp/plan"
[ "$(wc -l <"$tmp/plan")" = 8 ] || fail "the plan has $(wc -l <"$tmp/plan") runs, not 8"
job=$("$campaign" slurm "$tmp/plan" "$tmp/results") || fail "sbatch refused the array"
job=${job%%;*}
echo "slurm: submitted array job $job"

# No accounting: the tasks' states come from squeue -t all.
done_states=""
for _ in $(seq 600); do
        states=$(squeue -h -t all -r -j "$job" -o %T 2>/dev/null || true)
        n=$(printf '%s\n' "$states" | grep -c . || true)
        left=$(printf '%s\n' "$states" | grep -cvE '^(COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY)$' || true)
        if [ "$n" = 8 ] && [ "$left" = 0 ]; then
                done_states=$states
                break
        fi
        sleep 0.5
done
[ -n "$done_states" ] || fail "the array did not finish in 300 s: $(squeue -h -t all -r -j "$job" -o '%i %T' | tr '\n' ' ')"
bad=$(printf '%s\n' "$done_states" | grep -cv '^COMPLETED$' || true)
[ "$bad" = 0 ] || fail "$bad of 8 array tasks did not complete: $(squeue -h -t all -r -j "$job" -o '%i %T %r' | tr '\n' ' ')"
echo "slurm: 8 array tasks COMPLETED"

runs=$(find "$tmp/results/runs" -name run.json | wc -l)
[ "$runs" = 8 ] || fail "$runs run records, not 8"
hosts=$(jq -r .host "$tmp"/results/runs/*/run.json | sort -u | wc -l)
[ "$hosts" = 1 ] || fail "runs from $hosts hosts on a single-node cluster"

"$campaign" merge "$tmp/results" >/dev/null || fail "merge failed"
s=$tmp/results/summary.json
[ "$(jq .runs "$s")" = 8 ] || fail "summary counts $(jq .runs "$s") runs"
[ "$(jq '.status.recorded' "$s")" = 8 ] || fail "not every run recorded: $(jq -c .status "$s")"
[ "$(jq '.truth.agree' "$s")" -gt 0 ] || fail "no violation at a ground-truth shadow in the eager runs"
[ "$(jq '.truth.disagreements' "$s")" = 0 ] || fail "ground truth disagreements: $(jq -c '.findings' "$s")"
[ "$(jq '[.findings[]] | length' "$s")" = 0 ] || fail "findings on emu: $(jq -c '.findings' "$s")"
grep -q '^| sti-shadow | emu | eager-step |' "$tmp/results/summary.md" || fail "summary.md has no sti-shadow row"
echo "PASS: 8 runs through sbatch --array, summary merged ($(jq -c .truth "$s"))"
