#!/usr/bin/env bash
# jobs/preprocess.yaml end to end at NP ranks (synth -> preprocess -> features, shortened with
# --set): the run summary is printed, the processed catalog and the feature table are the same as
# a 1-rank run of the same job (waveforms, every metadata and feature column), --dry-run plans the
# chain, and a misspelt chain step is named; jobs/preprocess-stead.yaml on the real STEAD sample.
set -uo pipefail
NP=${1:-2}
RUN="$MPIEXEC -n $NP $SISMA_BIN"
JOB="$SISMA_SOURCE_DIR/jobs/preprocess.yaml"
source "$(dirname "$0")/../lib.sh"
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
before=$(stat -c %Y.%s out/np/processed.h5)
sleep 1
res=$($RUN run "$JOB" "${short[@]}" --set output_dir=out/np --resume 2>&1)
check "--resume skips a complete preprocess output" grep -q "processed.h5 is complete (same input and chain), not run again" <<<"$res"
check "--resume leaves it untouched" test "$before" = "$(stat -c %Y.%s out/np/processed.h5)"
res=$($RUN run "$JOB" "${short[@]}" --set output_dir=out/np --resume --set "preprocess.chain=demean" 2>&1)
check "--resume with another chain processes again" grep -q "made from another input or chain; processing again" <<<"$res"
dry=$($RUN run "$JOB" "${short[@]}" --set output_dir=out/dry --dry-run 2>&1)
check "dry run describes the chain" grep -q "chain: demean,taper type=cosine" <<<"$dry"
bad=$($RUN run "$JOB" "${short[@]}" --set output_dir=out/bad --set "preprocess.chain=demean,tapr" 2>&1); rc=$?
bad_named() { [ $rc -ne 0 ] && grep -q "preprocess.chain: unknown step 'tapr'; did you mean \"taper\"" <<<"$bad"; }
check "bad step fails and is named" bad_named
check "no processed catalog after the failure" test ! -e out/bad/processed.h5
# real data: the STEAD sample (50 traces) imported, processed, picked and evaluated against the
# analysts' picks; the same at NP ranks as at 1 rank, and the picker finds most P onsets
STEAD="$SISMA_SOURCE_DIR/jobs/preprocess-stead.yaml"
real=(--set "import.input=$SISMA_DATA/eqtransformer/stead_sample_2020/waveforms.hdf5"
      --set "import.metadata=$SISMA_DATA/eqtransformer/stead_sample_2020/metadata.csv")
sout=$($RUN run "$STEAD" "${real[@]}" --set output_dir=out/stead_np 2>&1); rc=$?
check "STEAD job runs at $NP rank(s)" test $rc -eq 0
$MPIEXEC -n 1 "$SISMA_BIN" run "$STEAD" "${real[@]}" --set output_dir=out/stead_one >/dev/null 2>&1
check "STEAD processed catalog equals 1 rank" h5diff -q out/stead_one/processed.h5 out/stead_np/processed.h5 /meta /meta
recall_ok() { # P recall within 0.5 s of the STEAD picks >= 0.7
  awk '/^P picks:/ {for (i = 1; i <= NF; i++) if ($i == "recall") r = $(i + 1)} END {exit !(r + 0 >= 0.7)}' <<<"$sout"
}
check "STEAD P picks: recall >= 0.7 within 0.5 s" recall_ok
[ $fails -eq 0 ] && echo "all passed" || echo "$fails failure(s)"
exit $((fails > 0))
