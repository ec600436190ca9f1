#!/usr/bin/env bash
# The `sisma` command end to end at NP ranks: job files (errors with file:line:column, --set,
# --dry-run), a synth -> info -> export -> import pipeline that gives identical catalogs at every
# rank count, an injected failure on one rank that every rank survives with no output left behind,
# and docs/job-reference.md matching the registry.
set -uo pipefail
NP=${1:-2}
RUN="$MPIEXEC -n $NP $SISMA_BIN"
source "$(dirname "$0")/../lib.sh"
rm -rf out && mkdir -p out

cat > bad-key.yaml <<'YAML'
output_dir: out
stages:
  - synth:
      output: a.h5
      tracse: 10
YAML
expect_fail "unknown key names file:line:column and the near match" \
  'bad-key.yaml:5:7: unknown key "tracse" in stage synth; did you mean "traces"' $RUN run bad-key.yaml
cat > bad-value.yaml <<'YAML'
stages:
  - synth: {output: a.h5, traces: -3}
YAML
expect_fail "out-of-range value names line:column" 'bad-value.yaml:2:35: synth.traces = -3 is outside' \
  $RUN run bad-value.yaml
printf 'stages:\n  - synth: {output: a.h5\n' > bad-syntax.yaml
expect_fail "YAML syntax error names the position" 'bad-syntax.yaml:[0-9]+:[0-9]+: YAML syntax error' \
  $RUN run bad-syntax.yaml
printf 'stages:\n  - sinth: {}\n' > bad-stage.yaml
expect_fail "unknown stage suggests the right one" 'unknown stage "sinth"; did you mean "synth"' $RUN run bad-stage.yaml
expect_fail "--set of an unknown stage is refused" 'the job has no stage "nope"' \
  $RUN run "$SISMA_SOURCE_DIR/jobs/demo-tiny.yaml" --set nope.x=1

out=$($RUN run "$SISMA_SOURCE_DIR/jobs/demo-tiny.yaml" --set output_dir=out/dry --dry-run 2>&1)
check "dry run lists every rank's share" grep -q "rank $((NP - 1))/$NP:" <<<"$out"
check "dry run shows the resolved configuration" grep -q 'traces: 200' <<<"$out"
check "dry run touches no data" test ! -e out/dry/demo.h5

check "job runs: synth, info" $RUN run "$SISMA_SOURCE_DIR/jobs/demo-tiny.yaml" --set output_dir=out/job --set synth.traces=57
check "catalog written" test -s out/job/demo.h5
check "no partial files" bash -c '! ls -a out/job | grep -q partial'
check "job configuration recorded" bash -c "h5dump -a job_config out/job/demo.h5 | grep -q 'traces: 57'"
check "rank count recorded" bash -c "h5dump -a n_ranks out/job/demo.h5 | grep -q '(0): $NP'"

# The same catalog at every rank count: compare the data with a reference written by 1 rank.
check "reference on one rank" $MPIEXEC -n 1 $SISMA_BIN synth -o out/ref.h5 --traces 57 --samples 1000 --seed 2016
for d in /waveforms /meta/source_magnitude /meta/trace_name /meta/label /meta/split /meta/trace_p_arrival_sample; do
  check "synth $d identical to the 1-rank catalog" bash -c \
    "diff <(h5dump -d $d out/ref.h5 | tail -n +3) <(h5dump -d $d out/job/demo.h5 | tail -n +3) > /dev/null"
done

check "export to SeisBench" $RUN export out/job/demo.h5 --format seisbench -o out/sb/waveforms.hdf5
check "import it back" $RUN import --format seisbench --input out/sb/waveforms.hdf5 \
  --metadata out/sb/metadata.csv -o out/back.h5
check "waveforms survive the round trip exactly" bash -c \
  "diff <(h5dump -d /waveforms out/job/demo.h5 | tail -n +3) <(h5dump -d /waveforms out/back.h5 | tail -n +3) > /dev/null"
check "info on the imported catalog" bash -c "$RUN info out/back.h5 | grep -q 'traces       57'"

# An injected failure on the last rank while writing: all ranks exit with the error, no hang,
# and the previous catalog is still intact (the new one was never committed).
cp out/job/demo.h5 out/before.h5
start=$(date +%s)
expect_fail "failure on rank $((NP - 1)) is reported by every rank" "injected fault at catalog_write" \
  env SISMA_FAULT=catalog_write:$((NP - 1)) $RUN run "$SISMA_SOURCE_DIR/jobs/demo-tiny.yaml" --set output_dir=out/job
check "failed run ends promptly" test $(($(date +%s) - start)) -lt 60
check "previous output untouched" cmp -s out/before.h5 out/job/demo.h5
check "no partial files after the failure" bash -c '! ls -a out/job | grep -q partial'

out=$($RUN info out/job/demo.h5 --waveforms true --memory-budget-mb 1 2>&1)
check "info scans the waveforms: none bad" grep -q "0 trace(s) with NaN/Inf, 0 all-zero" <<<"$out"

expect_fail "missing input catalog" "cannot read catalog out/none.h5" $RUN info out/none.h5
check "docs/job-reference.md is generated from the registry" bash -c \
  "$MPIEXEC -n 1 $SISMA_BIN run --help-config --markdown | diff - '$SISMA_SOURCE_DIR/docs/job-reference.md'"

echo "$fails failed"
[ $fails -eq 0 ]
