#!/usr/bin/env bash
# scaling.sh - strong-scaling study: submit the same sisma job once per rank count, each through
# slurm/sisma.sbatch with its own output directory, and print the job ids.
#
# Usage:  slurm/scaling.sh JOB.yaml N1 [N2 ...] [-- more sisma run args]
#   e.g.  SISMA=$PWD/build/sisma slurm/scaling.sh jobs/demo-tiny.yaml 1 2 4 8
# Run N writes to $SCALING_OUT/npN (--set output_dir=...), its log to $SCALING_OUT/npN-JOBID.out.
#   SCALING_OUT          base output directory                         [scaling/<job file name>]
#   SCALING_SBATCH_ARGS  extra sbatch options (word-split), e.g. "-t 30 -p long"; "-O" (overcommit)
#                        runs more ranks than the node has CPUs (local test cluster only)
# Prints "npN JOBID" per submission on stdout; exits non-zero if a submission failed.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [ $# -lt 2 ]; then sed -n '2,11p' "$0" >&2; exit 2; fi
JOB=$1; shift
[ -r "$JOB" ] || { echo "scaling.sh: job file '$JOB' not readable" >&2; exit 2; }
COUNTS=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
  [[ $1 =~ ^[1-9][0-9]*$ ]] || { echo "scaling.sh: '$1' is not a rank count" >&2; exit 2; }
  COUNTS+=("$1"); shift
done
[ $# -gt 0 ] && shift                          # drop "--"
[ ${#COUNTS[@]} -gt 0 ] || { echo "scaling.sh: no rank counts given" >&2; exit 2; }
name=$(basename "$JOB"); name=${name%.*}
OUT=${SCALING_OUT:-scaling/$name}
mkdir -p "$OUT"

rc=0
for n in "${COUNTS[@]}"; do
  # shellcheck disable=SC2086
  if jid=$(sbatch --parsable -n "$n" -J "sisma-np$n" -o "$OUT/np$n-%j.out" ${SCALING_SBATCH_ARGS:-} \
             "$HERE/sisma.sbatch" "$JOB" --set "output_dir=$OUT/np$n" "$@"); then
    jid=${jid%%;*}
    echo "np$n $jid"
    # a request larger than the partition is accepted but pends forever: say so
    if [ "$(squeue -h -j "$jid" -o %r 2>/dev/null)" = PartitionConfig ]; then
      echo "scaling.sh: job $jid ($n ranks) can never start here (PartitionConfig): scancel $jid; retry with SCALING_SBATCH_ARGS=-O" >&2
    fi
  else
    echo "scaling.sh: submission for $n ranks failed" >&2; rc=1
  fi
done
exit $rc
