#!/usr/bin/env bash
# local-cluster-up.sh - idempotent bring-up of a 1-node Slurm cluster on localhost for sisma
# development and CI: munged (private socket and key), slurmctld, slurmd -N localhost.
# Needs root (no systemd, no cgroups, no slurmdbd). Re-running is a no-op while all daemons live;
# dead ones are restarted; a changed config restarts only our slurmctld/slurmd.
# Stop with slurm/local-cluster-down.sh [--purge]. Prints `export SLURM_CONF=...` on stdout.
#
# Environment knobs:
#   SISMA_SLURM_DIR          state/config/log directory (<= 60 chars: unix sockets live below it) [/tmp/sisma-slurm]
#   SISMA_SLURM_CPUS         CPUs advertised for the node                     [max(nproc, 4)]
#   SISMA_SLURM_CTLD_PORT    slurmctld port (not 6817: never collide with a site cluster) [6917]
#   SISMA_SLURM_SLURMD_PORT  slurmd port                                      [6918]
#   SISMA_SLURM_TIMEOUT      seconds to wait for the node to become idle      [60]
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DIR=${SISMA_SLURM_DIR:-/tmp/sisma-slurm}
NPROC=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)   # nproc obeys OMP_NUM_THREADS
CPUS=${SISMA_SLURM_CPUS:-$(( NPROC > 4 ? NPROC : 4 ))}
CTLD_PORT=${SISMA_SLURM_CTLD_PORT:-6917}
SLURMD_PORT=${SISMA_SLURM_SLURMD_PORT:-6918}
TIMEOUT=${SISMA_SLURM_TIMEOUT:-60}
TEMPLATE=$HERE/slurm.conf.in

log() { printf '[local-cluster-up %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "must run as root (munged runs as user munge, slurmd launches jobs)"
for b in munged munge unmunge mungekey setpriv slurmctld slurmd sinfo scontrol; do
  command -v "$b" >/dev/null || die "$b not found (Debian: apt-get install -y slurm-wlm munge)"
done
id munge >/dev/null 2>&1 || die "user 'munge' missing (install the munge package)"
[ -r "$TEMPLATE" ] || die "template $TEMPLATE missing"
case "$DIR" in /*) ;; *) DIR=$(pwd)/$DIR ;; esac
# AF_UNIX paths are limited to 107 bytes; slurmd puts localhost_<job>.<step> sockets in its spool dir
[ "${#DIR}" -le 60 ] || die "SISMA_SLURM_DIR '$DIR' is longer than 60 characters (unix socket paths); choose a shorter one"

MUNGE_DIR=$DIR/munge
MUNGE_SOCKET=$MUNGE_DIR/munge.socket.2
MUNGE_KEY=$MUNGE_DIR/munge.key
CONF=$DIR/etc/slurm.conf
export SLURM_CONF=$CONF

# alive PIDFILE COMM: the pid in PIDFILE is a live (non-zombie) process whose /proc/PID/comm is COMM
# (comm, not exe: /usr/sbin/slurmctld is an alternatives link to slurmctld-wlm)
alive() {
  local pf=$1 name=$2 pid st
  [ -s "$pf" ] || return 1
  pid=$(tr -dc 0-9 <"$pf"); [ -n "$pid" ] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || return 1
  st=$(awk '/^State:/{print $2}' "/proc/$pid/status" 2>/dev/null)
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for() { # wait_for SECONDS CMD... : poll every 0.2 s
  local end=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do [ "$(date +%s)" -lt "$end" ] || return 1; sleep 0.2; done
}
munge_ok() { munge -S "$MUNGE_SOCKET" -n </dev/null | unmunge -S "$MUNGE_SOCKET" >/dev/null 2>&1; }

# fail before starting anything if a port is taken by someone else's daemon
if ! alive "$DIR/run/slurmctld.pid" slurmctld && port_busy "$CTLD_PORT"; then
  die "port $CTLD_PORT busy (not our slurmctld); set SISMA_SLURM_CTLD_PORT"
fi
if ! alive "$DIR/run/slurmd.pid" slurmd && port_busy "$SLURMD_PORT"; then
  die "port $SLURMD_PORT busy (not our slurmd); set SISMA_SLURM_SLURMD_PORT"
fi

mkdir -p "$DIR"/{etc,state,spool/slurmd,run,log}
chmod 755 "$DIR"

# ---------------------------------------------------------------- munged (private key + socket)
install -d -o munge -g munge -m 0755 "$MUNGE_DIR"      # socket dir must be o+x for clients
if [ ! -s "$MUNGE_KEY" ]; then
  setpriv --reuid=munge --regid=munge --init-groups mungekey --create --keyfile="$MUNGE_KEY"
fi
if alive "$DIR/run/munged.pid" munged && munge_ok; then
  log "munged already running (pid $(cat "$DIR/run/munged.pid"))"
else
  rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock" "$MUNGE_DIR/munged.pid" "$DIR/run/munged.pid"
  setpriv --reuid=munge --regid=munge --init-groups \
    munged --socket="$MUNGE_SOCKET" --key-file="$MUNGE_KEY" --pid-file="$MUNGE_DIR/munged.pid" \
    --log-file="$MUNGE_DIR/munged.log" --seed-file="$MUNGE_DIR/munged.seed" </dev/null >/dev/null 2>&1 \
    || die "munged failed to start; see $MUNGE_DIR/munged.log"
  wait_for 10 test -s "$MUNGE_DIR/munged.pid" || die "munged wrote no pid file; see $MUNGE_DIR/munged.log"
  cp "$MUNGE_DIR/munged.pid" "$DIR/run/munged.pid"
  wait_for 10 munge_ok || die "munge round-trip failed; see $MUNGE_DIR/munged.log"
  alive "$DIR/run/munged.pid" munged || die "munged exited; see $MUNGE_DIR/munged.log"
  log "munged started (pid $(cat "$DIR/run/munged.pid"))"
fi

# ---------------------------------------------------------------- slurm.conf
NEW=$(mktemp)
sed -e "s|@DIR@|$DIR|g" -e "s|@CPUS@|$CPUS|g" -e "s|@CTLD_PORT@|$CTLD_PORT|g" \
    -e "s|@SLURMD_PORT@|$SLURMD_PORT|g" -e "s|@MUNGE_SOCKET@|$MUNGE_SOCKET|g" \
    -e "s|@CLUSTER@|sismalocal|g" -e "s|@PARTITION@|debug|g" "$TEMPLATE" >"$NEW"
if grep -q '@[A-Z_]*@' "$NEW"; then rm -f "$NEW"; die "unrendered placeholder in $TEMPLATE"; fi
CHANGED=0
if ! cmp -s "$NEW" "$CONF"; then CHANGED=1; install -m 0644 "$NEW" "$CONF"; fi
rm -f "$NEW"
: >"$DIR/etc/plugstack.conf"           # empty SPANK stack

if [ "$CHANGED" = 1 ] && { alive "$DIR/run/slurmctld.pid" slurmctld || alive "$DIR/run/slurmd.pid" slurmd; }; then
  log "config changed: restarting our slurmctld/slurmd"
  SISMA_SLURM_DIR=$DIR "$HERE/local-cluster-down.sh" --keep-munge
fi

# ---------------------------------------------------------------- slurmctld
if alive "$DIR/run/slurmctld.pid" slurmctld; then
  log "slurmctld already running (pid $(cat "$DIR/run/slurmctld.pid"))"
else
  rm -f "$DIR/run/slurmctld.pid"
  port_busy "$CTLD_PORT" && die "port $CTLD_PORT busy (not our slurmctld); set SISMA_SLURM_CTLD_PORT"
  # -i: ignore unreadable state of an older run instead of refusing to start
  slurmctld -i -f "$CONF" </dev/null >>"$DIR/log/slurmctld.stdout" 2>&1 \
    || die "slurmctld failed; see $DIR/log/slurmctld.log"
  wait_for 20 scontrol ping || die "slurmctld not answering; see $DIR/log/slurmctld.log"
  # a slurmctld that lost the port race dies after daemonizing: check the pid too
  alive "$DIR/run/slurmctld.pid" slurmctld || die "slurmctld exited; see $DIR/log/slurmctld.log"
  log "slurmctld started (pid $(cat "$DIR/run/slurmctld.pid"), port $CTLD_PORT)"
fi

# ---------------------------------------------------------------- slurmd
if alive "$DIR/run/slurmd.pid" slurmd; then
  log "slurmd already running (pid $(cat "$DIR/run/slurmd.pid"))"
else
  rm -f "$DIR/run/slurmd.pid"
  port_busy "$SLURMD_PORT" && die "port $SLURMD_PORT busy (not our slurmd); set SISMA_SLURM_SLURMD_PORT"
  # -N localhost: node name independent of `hostname` (CI runners have random host names)
  slurmd -N localhost -f "$CONF" </dev/null >>"$DIR/log/slurmd.stdout" 2>&1 \
    || die "slurmd failed; see $DIR/log/slurmd.log"
  wait_for 10 alive "$DIR/run/slurmd.pid" slurmd || die "slurmd did not start; see $DIR/log/slurmd.log"
  log "slurmd started (pid $(cat "$DIR/run/slurmd.pid"), port $SLURMD_PORT)"
fi

# ---------------------------------------------------------------- wait for the node
end=$(( $(date +%s) + TIMEOUT ))
while :; do
  st=$(sinfo -h -n localhost -o '%T' 2>/dev/null | head -1)
  case "$st" in
    idle|mixed|allocated|completing) break ;;
    drain*|down*|inval*|fail*)
      log "node state '$st' ($(sinfo -h -R -o '%E' 2>/dev/null | head -1)); resuming"
      scontrol update NodeName=localhost State=RESUME >/dev/null 2>&1 || true ;;
  esac
  [ "$(date +%s)" -lt "$end" ] || die "node not idle after ${TIMEOUT}s (state '$st'); see $DIR/log/"
  sleep 0.5
done
log "up: $(sinfo -h -o '%P %a %D %T %c CPUs') (state in $DIR)"
echo "export SLURM_CONF=$CONF"
