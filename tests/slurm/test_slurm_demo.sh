#!/usr/bin/env bash
# test_slurm_demo.sh - CTest end-to-end test: run jobs/demo-tiny.yaml on 2 ranks through
# slurm/sisma.sbatch on a private 1-node Slurm cluster and check the HDF5 output.
#
# Usage: tests/slurm/test_slurm_demo.sh BUILD_DIR SOURCE_DIR [SISMA_EXE]   (SISMA_EXE default: BUILD_DIR/sisma)
# Exit 77 (CTest SKIP_RETURN_CODE) when Slurm/munge are not installed or we are not root and no cluster
# of ours is running. The cluster lives in BUILD_DIR/slurm-demo-test/cluster (or /tmp/sisma-slurm-<hash>
# when that path is too long for unix sockets), on free ports from 6937 up. If that cluster is already
# running it is reused and left running; otherwise it is started here and stopped on exit (trap EXIT),
# via slurm/local-cluster-down.sh, which only stops daemons recorded in that directory's pid files.
set -uo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ]; then echo "usage: $0 BUILD_DIR SOURCE_DIR [SISMA_EXE]" >&2; exit 2; fi
BUILD=$(cd "$1" && pwd) || exit 2
SRC=$(cd "$2" && pwd) || exit 2
EXE=${3:-$BUILD/sisma}
case "$EXE" in /*) ;; *) EXE=$(pwd)/$EXE ;; esac

skip() { echo "SKIP: $*"; exit 77; }
for b in slurmctld slurmd munged sbatch squeue scontrol; do
  command -v "$b" >/dev/null 2>&1 || skip "'$b' not installed (Debian: apt-get install slurm-wlm munge)"
done

# isolate from any surrounding Slurm job/config (ctest may itself run inside an allocation)
while read -r v; do unset "$v"; done < <(compgen -e | grep -E '^(SLURM|SBATCH|SALLOC|SRUN)_')

WORK=$BUILD/slurm-demo-test
CDIR=$WORK/cluster
if [ "${#CDIR}" -gt 60 ]; then CDIR=/tmp/sisma-slurm-$(printf %s "$BUILD" | md5sum | cut -c1-8); fi
export SISMA_SLURM_DIR=$CDIR
export SLURM_CONF=$CDIR/etc/slurm.conf
mkdir -p "$WORK"

alive() { # alive PIDFILE COMM
  local pid st
  [ -s "$1" ] || return 1
  pid=$(tr -dc 0-9 <"$1"); [ -n "$pid" ] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] || return 1
  st=$(awk '/^State:/{print $2}' "/proc/$pid/status" 2>/dev/null); [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
cluster_up() {
  alive "$CDIR/run/munged.pid" munged && alive "$CDIR/run/slurmctld.pid" slurmctld &&
    alive "$CDIR/run/slurmd.pid" slurmd && timeout 10 scontrol ping >/dev/null 2>&1
}

LOG=$WORK/job.log
OUTDIR=$WORK/out
STARTED=0     # 1: this run started the cluster, so it stops it
CLUSTER=0     # 1: a cluster is up (logs worth printing on failure)
OK=0
dump() {
  [ "$CLUSTER" = 1 ] || return 0
  echo "---- Slurm job log ($LOG)"; cat "$LOG" 2>/dev/null || echo "(none)"
  [ -n "${JID:-}" ] && { echo "---- scontrol show job $JID"; timeout 10 scontrol show job "$JID" 2>&1; }
  for f in slurmctld slurmd; do   # (minus the harmless "no state file yet" lines of a fresh cluster)
    echo "---- tail $CDIR/log/$f.log"
    grep -vE 'state file|Trying backup' "$CDIR/log/$f.log" 2>/dev/null | tail -n 25
  done
  echo "---- tail $CDIR/munge/munged.log"; tail -n 5 "$CDIR/munge/munged.log" 2>/dev/null
}
fail() { echo "FAIL: $*"; dump; exit 1; }
# shellcheck disable=SC2317  # (invoked by trap)
cleanup() {
  if [ "$STARTED" = 1 ]; then
    if [ "$OK" = 1 ]; then timeout 60 bash "$SRC/slurm/local-cluster-down.sh" --purge
    else timeout 60 bash "$SRC/slurm/local-cluster-down.sh"; echo "cluster state/logs kept in $CDIR"; fi
  fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP      # run the EXIT trap on Ctrl-C / kill
trap '' PIPE                    # a closed stdout (| head) must not skip the cleanup

[ -x "$EXE" ] || fail "$EXE not built"
JOBFILE=$SRC/jobs/demo-tiny.yaml
[ -r "$JOBFILE" ] || fail "$JOBFILE missing"
command -v h5dump >/dev/null 2>&1 || fail "h5dump not found (Debian: apt-get install hdf5-tools)"

# ---------------------------------------------------------------- cluster
if cluster_up; then
  echo "using the running test cluster in $CDIR (left running)"
else
  [ "$(id -u)" -eq 0 ] || skip "needs root to start munged/slurmctld/slurmd (or run: sudo SISMA_SLURM_DIR=$CDIR $SRC/slurm/local-cluster-up.sh)"
  port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
  p=6937
  until port_free "$p" && port_free $((p + 1)); do p=$((p + 2)); [ "$p" -lt 7100 ] || fail "no free port pair in 6937-7100"; done
  STARTED=1
  SISMA_SLURM_CTLD_PORT=$p SISMA_SLURM_SLURMD_PORT=$((p + 1)) \
    timeout 45 bash "$SRC/slurm/local-cluster-up.sh" >/dev/null || { CLUSTER=1; fail "local-cluster-up.sh failed"; }
fi
CLUSTER=1

# ---------------------------------------------------------------- job
rm -rf "$OUTDIR" "$LOG"
export SISMA=$EXE
cd "$WORK" || fail "cd $WORK"
# `timeout`: a job that cannot be scheduled pends forever instead of failing (pitfall P4)
SUB=$(timeout 140 sbatch --wait --export=ALL -J sisma-demo-test -n 2 -o "$LOG" \
        "$SRC/slurm/sisma.sbatch" "$JOBFILE" --set "output_dir=$OUTDIR" 2>&1)
RC=$?
echo "$SUB"
JID=$(sed -n 's/^Submitted batch job \([0-9]*\).*/\1/p' <<<"$SUB")
[ "$RC" -ne 124 ] || fail "sbatch --wait timed out after 140 s"
[ "$RC" -eq 0 ] || fail "sbatch --wait exit status $RC"
[ -n "$JID" ] || fail "no job id in sbatch output"
state=$(timeout 10 scontrol show job -o "$JID" 2>/dev/null | grep -o 'JobState=[^ ]* .*ExitCode=[^ ]*' | awk '{print $1, $NF}')
echo "job $JID: $state"
[ "$state" = "JobState=COMPLETED ExitCode=0:0" ] || fail "job $JID ended as '$state'"
[ -s "$LOG" ] || fail "job log $LOG missing or empty"
grep -q 'srun exited with status 0' "$LOG" || fail "job log lacks 'srun exited with status 0'"
grep -q 'ntasks=2' "$LOG" || fail "job log: not a 2-task job"

# ---------------------------------------------------------------- output
H5=$OUTDIR/demo.h5
[ -s "$H5" ] || { ls -la "$OUTDIR" 2>&1; fail "$H5 missing or empty"; }
INFO=$(timeout 20 "$EXE" info "$H5" 2>&1); rc=$?
echo "$INFO" | head -n 20
[ "$rc" -eq 0 ] || fail "sisma info $H5 exit status $rc"
HDR=$(timeout 20 h5dump -H -d /waveforms "$H5" 2>&1); rc=$?
if [ "$rc" -ne 0 ] || ! grep -q 'DATASET "/waveforms"' <<<"$HDR"; then
  echo "$HDR" | head -n 20; fail "h5dump -H: no /waveforms dataset in $H5"
fi
grep -E 'DATATYPE|DATASPACE' <<<"$HDR" | sed 's/^ */  \/waveforms: /'

OK=1
echo "PASS: sisma ran on 2 ranks under Slurm (job $JID) and wrote $H5"
exit 0
