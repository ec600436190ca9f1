#!/usr/bin/env bash
# `sisma lm` and `sisma glm` at NP ranks print exactly R's print(summary(fit)) (and confint) for
# every golden model, with the default and with tiny reduction blocks; JSON results; job-file
# stages; and errors that name the column and its near matches.
set -uo pipefail
NP=${1:-2}
RUN="$MPIEXEC -n $NP $SISMA_BIN"
G=$SISMA_SOURCE_DIR/tests/stats/golden
fails=0
same() { # same NAME GOLDEN_FILE OUTPUT_FILE: the first lines of the output equal the golden text
  local n
  n=$(wc -l <"$2")
  if diff <(head -n "$n" "$3") "$2" >diff.txt; then echo "ok   $1"; else
    echo "FAIL $1"; cat diff.txt; fails=$((fails + 1)); fi
}
cp "$G/reg.csv" "$G/reg_split.csv" "$G/reg_other.csv" "$G/cls.csv" "$G/small.csv" .
lm_case() { # lm_case BLOCK_ROWS NAME FORMULA [--weights w]: tiny blocks exercise deep TSQR trees
  local b=$1 name=$2 formula=$3
  shift 3
  {
    $RUN lm --data reg.csv --block-rows $b "$formula" "$@" >"$name.out" 2>&1 || echo "exit $? for $name"
    same "$name (block_rows $b)" "$G/$name.txt" "$name.out"
    sed -n '/2\.5 %/,$p' "$name.out" | head -n "$(wc -l <"$G/${name}_confint.txt")" >"$name.ci"
    same "$name confint" "$G/${name}_confint.txt" "$name.ci"
  }
}
lm_case 7 lm_basic 'y ~ x1 + x2'
lm_case 4096 lm_weighted 'y ~ x1 + x2' --weights w
lm_case 5 lm_factor 'y ~ x1 + g' --method tsqr
lm_case 11 lm_poly 'y ~ poly(x1, 3) + x2'
lm_case 4096 lm_transform 'y ~ log(x3) + I(x1^2) + sqrt(x3) + x1:x2'
lm_case 7 lm_interact 'y ~ x1 * g'
lm_case 4096 lm_noint 'y ~ x1 + x2 - 1'
lm_case 3 lm_log10 'log10(x3) ~ x1 + log10(w)' --method tsqr
lm_case 9 lm_factor_num 'y ~ x1 + factor(k)'
$RUN lm --data small.csv --block-rows 2 'y ~ x1 + x2' >lm_small.out 2>&1 # rdf 3: every residual printed
same "lm_small (rdf <= 5)" "$G/lm_small.txt" lm_small.out
$RUN glm --family binomial --data cls.csv 'label ~ x1 + x2' >glm_basic.out 2>&1
same "glm_basic" "$G/glm_basic.txt" glm_basic.out
$RUN glm --family binomial --data cls.csv --block-rows 13 --method tsqr 'label ~ x1 + x2 + site' >glm_factor.out 2>&1
same "glm_factor (block_rows 13, TSQR)" "$G/glm_factor.txt" glm_factor.out

# a held-out split (dev/golden_lm_split.R): R's summary of lm(..., subset = split == "train"), call
# line wrapped as R wraps it, and the prediction errors on the test and dev rows to 6 digits
$RUN lm --data reg_split.csv 'y ~ x1 + x2' --split-column split --block-rows 5 --output res/split.json >lm_split.out 2>&1
same "lm_split (subset = split == \"train\")" "$G/lm_split.txt" lm_split.out
g() { printf '%.6g' "$(grep "^$1," "$G/lm_split.num" | cut -d, -f2)"; }
want_test="Prediction on the held-out split ($(g test.n) rows): RMSE $(g test.rmse), MAE $(g test.mae), mean error $(g test.mean_error), R-squared $(g test.r_squared)"
want_dev="Prediction on the dev split ($(g dev.n) rows): RMSE $(g dev.rmse), MAE $(g dev.mae), mean error $(g dev.mean_error), R-squared $(g dev.r_squared)"
if grep -qF "$want_test" lm_split.out && grep -qF "$want_dev" lm_split.out && grep -q '"heldout_metrics": {"n": 15, ' res/split.json &&
  grep -q '"dev_metrics": {"n": 9, ' res/split.json; then echo "ok   lm held-out and dev prediction errors (R)"; else
  echo "FAIL lm held-out metrics: want"; echo "$want_test"; echo "$want_dev"; cat lm_split.out; fails=$((fails + 1)); fi
# rows in no split still count in poly()'s basis, as R evaluates poly() before subset
$RUN lm --data reg_other.csv 'y ~ poly(x1, 2) + x2' --split-column split --block-rows 5 >lm_split_poly.out 2>&1
same "lm_split_poly (rows outside every split in the poly basis)" "$G/lm_split_poly.txt" lm_split_poly.out
$RUN lm --data reg.csv 'y ~ x1 + g' --test-fraction 0.25 --group-column event --folds 4 --output res/cv.json >lm_cv.out 2>&1
if grep -q 'Prediction on the held-out folds of a 4-fold cross-validation (5[0-9] rows)' lm_cv.out &&
  grep -q '"cross_validation_pooled": {"n": ' res/cv.json && grep -q 'Prediction on the held-out split' lm_cv.out; then
  echo "ok   lm grouped test split and k-fold"; else echo "FAIL lm k-fold"; cat lm_cv.out; fails=$((fails + 1)); fi
# a call longer than R's deparse cutoff (60) breaks where R breaks it
$RUN lm --data reg_split.csv 'y ~ x1 + x2 + x3 + log(x3) + sqrt(x3) + I(x1^2) + x1:x2' --split-column split --weights w >wrap.out 2>&1
printf '%s\n' 'lm(formula = y ~ x1 + x2 + x3 + log(x3) + sqrt(x3) + I(x1^2) + ' \
  '    x1:x2, data = reg_split, subset = split == "train", weights = w)' >wrap.want
if diff <(sed -n 3,4p wrap.out) wrap.want >/dev/null; then echo "ok   long call wrapped as R deparses it"; else
  echo "FAIL long call"; head -5 wrap.out; fails=$((fails + 1)); fi

# JSON results and diagnostics
$RUN lm --data reg.csv 'y ~ x1 + g' --diagnostics true --id-column event --output res/lm.json >diag.out 2>&1
if grep -q '"name": "gsouth", "estimate": -1.38' res/lm.json && grep -q '"durbin_watson": 1.77868' res/lm.json &&
  grep -q "Breusch-Pagan (studentized): BP = 0.95537, df = 3, p-value = 0.812" diag.out &&
  grep -qE '^  ev[0-9]+ +D = ' diag.out && [ ! -e res/lm.json.tmp ]; then echo "ok   lm JSON and diagnostics"; else
  echo "FAIL lm JSON and diagnostics"; cat diag.out; fails=$((fails + 1)); fi
$RUN glm --data cls.csv 'label ~ x1 + x2 + site' --test-fraction 0.3 --dev-fraction 0.2 --folds 3 --class-weights balanced \
  --output res/glm.json >glm_split.out 2>&1
if grep -q '"heldout_metrics": {"n": ' res/glm.json && grep -q 'cross_validation_pooled' res/glm.json &&
  grep -q '"dev_metrics": {"n": ' res/glm.json && grep -q 'Classification on the dev split' glm_split.out &&
  grep -q 'Classification on the held-out split' glm_split.out; then echo "ok   glm held-out split, k-fold, JSON"; else
  echo "FAIL glm held-out split"; cat glm_split.out; fails=$((fails + 1)); fi

# gradient descent from the command line, with a cost log
$RUN lm --data reg.csv 'y ~ x1 + g' --solver gd --cost-log res/cost.csv --output res/gd.json >gd.out 2>&1
if grep -q 'converged' gd.out && grep -qE '^gsouth +-1\.38273' gd.out && head -1 res/cost.csv | grep -q 'iteration,cost' &&
  [ "$(wc -l <res/cost.csv)" -gt 10 ] && grep -q '"solver": "gd"' res/gd.json; then echo "ok   lm --solver gd"; else
  echo "FAIL lm --solver gd"; cat gd.out; fails=$((fails + 1)); fi
$RUN glm --data cls.csv 'label ~ x1 + x2' --solver sgd --max-iter 20 --l2 0.01 >sgd.out 2>&1
if grep -q 'minibatch SGD' sgd.out && grep -q 'ROC AUC' sgd.out; then echo "ok   glm --solver sgd"; else
  echo "FAIL glm --solver sgd"; cat sgd.out; fails=$((fails + 1)); fi

# a job file with both stages
cat >stats.yaml <<'YAML'
output_dir: out
stages:
  - lm: {data: reg.csv, formula: "y ~ poly(x1, 3) + x2", output: lm.json}
  - logistic: {data: cls.csv, formula: "label ~ x1 + x2 + site", output: logistic.json}
YAML
if $RUN run stats.yaml >job.out 2>&1 && [ -s out/lm.json ] && [ -s out/logistic.json ]; then echo "ok   job with lm and logistic"; else
  echo "FAIL job"; cat job.out; fails=$((fails + 1)); fi

# the example job (tiny twin): the S-P regression recovers (sqrt(3) - 1)/6 = 0.12201 s/km
if $RUN run "$SISMA_SOURCE_DIR/jobs/regression-tiny.yaml" >example.out 2>&1 &&
  grep -qE '"name": "path_hyp_distance_km", "estimate": 0\.1220[01]' out/regression-tiny/s_minus_p.json &&
  grep -q '"heldout_metrics"' out/regression-tiny/foreshock_baseline.json; then echo "ok   jobs/regression-tiny.yaml"; else
  echo "FAIL jobs/regression-tiny.yaml"; tail -30 example.out; fails=$((fails + 1)); fi

# errors
out=$($RUN lm --data reg.csv 'y ~ x1 + xx2' 2>&1)
if [ $? -ne 0 ] && grep -q 'reg.csv: no column "xx2"; did you mean "x2"' <<<"$out"; then echo "ok   unknown column"; else
  echo "FAIL unknown column: $out"; fails=$((fails + 1)); fi
printf 'y,x\n1,2\n3\n' >bad.csv
out=$($RUN lm --data bad.csv 'y ~ x' 2>&1)
if [ $? -ne 0 ] && grep -q 'bad.csv:3: column 2 (x) is missing' <<<"$out"; then echo "ok   malformed CSV"; else
  echo "FAIL malformed CSV: $out"; fails=$((fails + 1)); fi
echo "$fails failure(s)"
[ $fails -eq 0 ]
