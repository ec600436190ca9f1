#!/usr/bin/env bash
# local-cluster-down.sh - stop the daemons that slurm/local-cluster-up.sh started, and only those:
# each pid comes from our pid file and must be a live (non-zombie) process with the expected
# /proc/PID/comm. Jobs still queued/running on our cluster are cancelled first.
# Usage: slurm/local-cluster-down.sh [--purge] [--keep-munge]
#   --purge       also delete $SISMA_SLURM_DIR (config, state, logs, munge key)
#   --keep-munge  leave munged running (used by local-cluster-up.sh on a config change)
set -uo pipefail

DIR=${SISMA_SLURM_DIR:-/tmp/sisma-slurm}
case "$DIR" in /*) ;; *) DIR=$(pwd)/$DIR ;; esac
PURGE=0; KEEP_MUNGE=0
for a in "$@"; do
  case "$a" in
    --purge) PURGE=1 ;;
    --keep-munge) KEEP_MUNGE=1 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "local-cluster-down.sh: unknown option $a" >&2; exit 2 ;;
  esac
done
log() { printf '[local-cluster-down %s] %s\n' "$(date +%T)" "$*" >&2; }

live() { local st; st=$(awk '/^State:/{print $2}' "/proc/$1/status" 2>/dev/null); [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]; }
# pid_of PIDFILE COMM: print the pid if it is a live process named COMM (guards against pid reuse)
pid_of() {
  local pf=$1 name=$2 pid
  [ -s "$pf" ] || return 1
  pid=$(tr -dc 0-9 <"$pf"); [ -n "$pid" ] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] && live "$pid" || return 1
  echo "$pid"
}
stop() { # stop PIDFILE COMM
  local pf=$1 name=$2 pid
  if ! pid=$(pid_of "$pf" "$name"); then
    [ -e "$pf" ] && log "$name: not running (stale $pf)"; rm -f "$pf"; return 0
  fi
  log "$name: SIGTERM $pid"
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 100); do live "$pid" || break; sleep 0.1; done     # zombies count as gone
  if live "$pid"; then log "$name: SIGKILL $pid"; kill -KILL "$pid" 2>/dev/null; sleep 0.2; fi
  rm -f "$pf"
}

# cancel our jobs first: slurmd does not kill running steps when it exits
CONF=$DIR/etc/slurm.conf
if pid_of "$DIR/run/slurmctld.pid" slurmctld >/dev/null && [ -r "$CONF" ]; then
  jobs=$(SLURM_CONF=$CONF squeue -h -t PD,R,CG,S -o %A 2>/dev/null | sort -u | tr '\n' ' ')
  if [ -n "${jobs// /}" ]; then
    log "cancelling jobs: $jobs"
    # shellcheck disable=SC2086
    SLURM_CONF=$CONF scancel $jobs 2>/dev/null || true
    for _ in $(seq 1 40); do
      [ -z "$(SLURM_CONF=$CONF squeue -h -t PD,R,CG,S 2>/dev/null)" ] && break; sleep 0.5
    done
  fi
fi
stop "$DIR/run/slurmd.pid" slurmd
stop "$DIR/run/slurmctld.pid" slurmctld
[ "$KEEP_MUNGE" = 1 ] || stop "$DIR/run/munged.pid" munged

if [ "$PURGE" = 1 ] && [ -d "$DIR" ]; then
  # only delete a directory that holds nothing but what local-cluster-up.sh creates
  for e in "$DIR"/* "$DIR"/.[!.]*; do
    [ -e "$e" ] || continue
    case "${e##*/}" in etc|state|spool|run|log|munge) ;;
      *) log "not purging $DIR: it contains ${e##*/} (not created by local-cluster-up.sh)"; exit 1 ;;
    esac
  done
  rm -rf "$DIR"
  log "purged $DIR"
fi
exit 0
