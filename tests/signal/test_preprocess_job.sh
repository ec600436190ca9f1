#!/usr/bin/env bash
# jobs/preprocess.yaml end to end at NP ranks (synth -> preprocess -> features, shortened with
# --set): the run summary is printed, the processed catalog and the feature table are the same as
# a 1-rank run of the same job (waveforms, every metadata and feature column), --dry-run plans the
# chain, and a misspelt chain step is named with its line and column.
set -uo pipefail
NP=${1:-2}
RUN="$MPIEXEC -n $NP $SISMA_BIN"
JOB="$SISMA_SOURCE_DIR/jobs/preprocess.yaml"
fails=0
check() { if "${@:2}"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); fi; }
rm -rf out && mkdir -p out
short=(--set synth.traces=96 --set synth.samples=2000)
out=$($RUN run "$JOB" "${short[@]}" --set output_dir=out/np 2>&1); rc=$?
check "job runs at $NP rank(s)" test $rc -eq 0
check "summary has SNR quantiles" grep -q "SNR Z: n [0-9]*, mean" <<<"$out"
check "summary has pick precision/recall" grep -q "P picks: .* precision .* recall" <<<"$out"
check "summary counts rejected traces" grep -q "rejected (nan)" <<<"$out"
$MPIEXEC -n 1 "$SISMA_BIN" run "$JOB" "${short[@]}" --set output_dir=out/one >/dev/null 2>&1
for obj in /waveforms /meta; do
  check "processed.h5 $obj equals 1 rank" h5diff -q out/one/processed.h5 out/np/processed.h5 $obj $obj
done
same_table() { # every column; the group's attributes (job_config, paths) differ by design
  local n=0
  for d in $(h5ls out/one/features.h5/features | awk '{print $1}'); do
    h5diff -q out/one/features.h5 out/np/features.h5 "/features/$d" "/features/$d" || return 1
    n=$((n + 1))
  done
  [ $n -gt 40 ]
}
check "features.h5 equals 1 rank (every column)" same_table
dry=$($RUN run "$JOB" "${short[@]}" --set output_dir=out/dry --dry-run 2>&1)
check "dry run describes the chain" grep -q "chain: demean,taper type=cosine" <<<"$dry"
bad=$($RUN run "$JOB" "${short[@]}" --set output_dir=out/bad --set "preprocess.chain=demean,tapr" 2>&1); rc=$?
bad_named() { [ $rc -ne 0 ] && grep -q "preprocess.chain: unknown step 'tapr'; did you mean \"taper\"" <<<"$bad"; }
check "bad step fails and is named" bad_named
check "no processed catalog after the failure" test ! -e out/bad/processed.h5
[ $fails -eq 0 ] && echo "all passed" || echo "$fails failure(s)"
exit $((fails > 0))
