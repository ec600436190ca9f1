#!/usr/bin/env bash
# The train and predict stages end to end at NP ranks, with scalar model inputs (catalog columns
# and log10_scale): deterministic weights bit-identical to a 1-rank run; a run stopped by max_steps and resumed on another rank count ends bit-identical to
# the uninterrupted one; fast mode (bucketed allreduce) trains; predictions identical to 1 rank
# and their metrics consistent with the written labels; load-time model errors name the layer;
# an injected failure on one rank stops every rank with no model left behind.
set -uo pipefail
NP=${1:-2}
RUN="$MPIEXEC -n $NP $SISMA_BIN"
ONE="$MPIEXEC -n 1 $SISMA_BIN"
OTHER=$(( NP % 4 + 1 ))
RUN_OTHER="$MPIEXEC -n $OTHER $SISMA_BIN"
source "$(dirname "$0")/../lib.sh"
params() { h5dump -d /params -b LE -o "$2" "$1" >/dev/null && md5sum <"$2" | cut -d' ' -f1; }
rm -rf out && mkdir -p out
cat > job.yaml <<'YAML'
job: train-test
output_dir: out
stages:
  - synth: {output: cat.h5, traces: 400, samples: 3000, seed: 2016}  # 7 chunks of 58 traces
  - train:
      catalog: cat.h5
      output: cnn.h5
      classes: aftershock,foreshock
      window: 256
      p_offset: 64
      inputs: [meta=source_magnitude log10(path_hyp_distance_km), amp=log10_scale]
      model: [conv 6 k=7, relu, maxpool 4, conv 8 k=5 dil=2, batchnorm, relu, dropout 0.1, gap, concat from=meta,
              concat from=amp, dense 2]
      epochs: 3
      batch_size: 24
      lr: 0.003
      augment: true
      aug_shift: 8
      aug_amplitude: 0.3
      aug_noise: 0.05
      aug_channel_dropout: 0.1
      aug_polarity: 0.5
      aug_noise_traces: split=test   # stand-ins for noise traces (the synthetic catalog has none)
      aug_noise_snr_min: 5
      aug_noise_snr_max: 15
      checkpoint_every: 7
  - predict: {catalog: cat.h5, model: cnn.h5, output: pred.h5, split: test}
YAML
check "dry run describes each rank's share" \
  bash -c "$RUN run job.yaml --dry-run | grep -c 'trains on its shard of the train-split traces' | grep -qx $NP"
check "reference run at 1 rank" $ONE run job.yaml
ref=$(params out/cnn.h5 ref.bin)
h5dump -d /prob -b LE -o refprob.bin out/pred.h5 >/dev/null
if [ "$NP" != 1 ]; then # at 1 rank the reference run is the run under test
  rm -f out/cnn.h5 out/cnn.h5.ckpt out/pred.h5
  check "train + predict at $NP ranks, shard streamed (memory_budget_mb 1)" $RUN run job.yaml --set memory_budget_mb=1
fi
check "deterministic weights at $NP ranks are bit-identical to 1 rank" test "$(params out/cnn.h5 np.bin)" = "$ref"
h5dump -d /prob -b LE -o prob.bin out/pred.h5 >/dev/null
check "predictions at $NP ranks are identical to 1 rank" cmp -s prob.bin refprob.bin
check "learning curves: 3 epochs with train and dev loss" bash -c "h5dump -d /curves out/cnn.h5 | grep -q '(2,0): 3,'"
check "no temporary files left" bash -c "! ls out | grep -q tmp"
# metrics recomputed from the written labels and predictions
acc=$(h5dump -a /accuracy out/pred.h5 | awk '/\(0\)/{print $2}')
mine=$(paste <(h5dump -y -w 1 -d /label out/pred.h5 | grep -E '^ *[0-9]' | tr -d ' ,') \
             <(h5dump -y -w 1 -d /predicted out/pred.h5 | grep -E '^ *[0-9]' | tr -d ' ,') |
       awk '{n++; c += ($1 == $2)} END {printf "%.6f", c / n}')
nev=$(h5dump -a /event_n out/pred.h5 | awk '/\(0\)/{print $2}')
check "event-level metrics over the test events ($nev)" bash -c "[ \"$nev\" -gt 1 ] && h5dump -a /event_roc_auc out/pred.h5 >/dev/null"
check "accuracy attribute ($acc) matches labels vs predictions ($mine)" \
  awk -v a="$acc" -v b="$mine" 'BEGIN {exit !((a - b) ^ 2 < 1e-12)}'

# the model file holds the best epoch's weights *and* batch-norm statistics: predicting the dev
# split reproduces the dev accuracy of that epoch in the learning curve
check "predict on the dev split at $NP ranks" $RUN run job.yaml --set predict.split=dev --set predict.output=dev.h5
best=$(h5dump -a /best_epoch out/cnn.h5 | awk '/\(0\)/{print $2}')
curve_acc=$(h5dump -y -w 200 -d /curves out/cnn.h5 | grep -E '^ *[0-9]' | sed -n "${best}p" | tr -d ',' | awk '{print $5}')
dev_acc=$(h5dump -a /accuracy out/dev.h5 | awk '/\(0\)/{print $2}')
check "dev accuracy of the saved model ($dev_acc) = best epoch's curve ($curve_acc)" \
  awk -v a="$dev_acc" -v b="$curve_acc" 'BEGIN {exit !((a - b) ^ 2 < 1e-10)}'

# stop after 10 steps at NP ranks, resume at another rank count: same weights as uninterrupted
rm -f out/cnn.h5 out/cnn.h5.ckpt
expect_fail "run stopped by max_steps at $NP ranks asks for --resume" 'stopped after max_steps = 10; checkpoint written' \
  $RUN run job.yaml --set train.max_steps=10
check "no model written by a stopped run" test ! -e out/cnn.h5
step_of() { h5dump -y -w 400 -d /position out/cnn.h5.ckpt | grep -E '^ *[0-9]' | tr -d ',' | awk '{print $3}'; }
check "the checkpoint holds step 10" test "$(step_of)" = 10
expect_fail "a checkpoint write that fails stops the job" 'injected fault at checkpoint_write' \
  env SISMA_FAULT=checkpoint_write:0 $RUN run job.yaml --resume
check "the previous checkpoint survives a failed write, no temporary left" \
  bash -c "test \"\$(h5dump -y -w 400 -d /position out/cnn.h5.ckpt | grep -E '^ *[0-9]' | tr -d ',' | awk '{print \$3}')\" = 10 && ! ls out | grep -q tmp"
check "resume at $OTHER ranks" $RUN_OTHER run job.yaml --resume
check "resumed weights bit-identical to the uninterrupted run" test "$(params out/cnn.h5 res.bin)" = "$ref"
expect_fail "resume refuses a checkpoint of another model" 'was written for model' \
  $RUN run job.yaml --resume --set "train.model=conv 6 k=7, relu, gap, concat from=meta, concat from=amp, dense 2"
expect_fail "resume refuses a checkpoint with other inputs" 'was written for inputs' \
  $RUN run job.yaml --resume --set "train.inputs=meta=source_magnitude, amp=log10_scale"

# fast mode: bucketed allreduce with small buckets; trains and predicts
check "fast mode (class weights, AdamW, cosine) at $NP ranks" $RUN run job.yaml --set train.deterministic=false \
  --set train.bucket_mb=0.001 --set train.class_weights=1,2 --set train.optimizer=adamw --set train.schedule=cosine \
  --set train.output=fast.h5 --set predict.model=fast.h5 --set predict.output=fastpred.h5
check "fast mode wrote a model" test -s out/fast.h5

# errors at load time name the layer, the key or the trace
expect_fail "shape error names the layer" 'model layer 3 \(conv 8 k=99\)' \
  $RUN run job.yaml --set "train.model=conv 6 k=7, maxpool 4, conv 8 k=99, gap, concat from=meta, concat from=amp, dense 2"
expect_fail "an input column that does not exist names the near match" \
  'no metadata column "source_magnitud"; did you mean .*source_magnitude' \
  $RUN run job.yaml --set "train.inputs=meta=source_magnitud log10(path_hyp_distance_km), amp=log10_scale"
expect_fail "log10 of a non-positive input names the trace" 'trace [0-9]+: input meta: log10\(trace_snr_db\) of -' \
  $RUN run job.yaml --set "train.inputs=meta=log10(trace_snr_db) source_magnitude, amp=log10_scale"
expect_fail "an input no layer reads" 'model input `amp` is not read by any layer' \
  $RUN run job.yaml --set "train.model=conv 6 k=7, gap, concat from=meta, dense 2"
expect_fail "a scalar input before pooling names the layer" \
  'model layer 2 \(concat from=meta\): input has 250 time samples but model input meta gives 1' \
  $RUN run job.yaml --set "train.model=conv 6 k=7, concat from=meta, gap, concat from=amp, dense 2"
expect_fail "unknown layer kind suggests the right one" 'unknown layer kind; did you mean: .*batchnorm' \
  $RUN run job.yaml --set "train.model=conv 6 k=7, batchnrom, gap, concat from=meta, concat from=amp, dense 2"
expect_fail "class outside the list names the trace" 'trace [0-9]+: label = "(foreshock|aftershock)" is not one of the classes' \
  $RUN run job.yaml --set train.classes=foreshock,other
expect_fail "model outputs must match the classes" 'classes names 2 classes but the model has 3 outputs' \
  $RUN run job.yaml --set "train.model=conv 6 k=7, gap, concat from=meta, concat from=amp, dense 3"
expect_fail "a diverging run stops with the step" 'the loss is not finite at step [0-9]+' \
  $RUN run job.yaml --set train.task=regress --set train.target=source_magnitude --set train.classes= \
  --set train.inputs= --set "train.model=dense 1" --set train.optimizer=sgd --set train.lr=1000 --set train.augment=false
rm -f out/cnn.h5 out/cnn.h5.ckpt
expect_fail "a failure on the last rank stops every rank" 'injected fault at train_step' \
  env SISMA_FAULT=train_step:$(( NP - 1 )) $RUN run job.yaml
check "no model after the failure" test ! -e out/cnn.h5
# the ready-made jobs of jobs/ run (tiny: 150 traces of 24 s, one epoch) at one odd rank count
if [ "$NP" = 3 ]; then
  for job in "$SISMA_SOURCE_DIR"/jobs/nn-*.yaml; do
    check "$(basename "$job") runs (tiny)" $RUN run "$job" --set output_dir=out/jobs --set synth.traces=150 \
      --set synth.samples=2400 --set train.epochs=1
  done
fi
echo "$fails failure(s)"
exit $(( fails > 0 ))
