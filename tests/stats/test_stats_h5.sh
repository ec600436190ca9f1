#!/usr/bin/env bash
# HDF5 results of `sisma lm` and `sisma glm` at NP ranks (an output path ending in .h5), read back
# with h5dump: the coefficient table and every per-row value of /rows (fitted values, residuals,
# hat values, studentized residuals, Cook's distances; glm: linear predictor and probability)
# equal R's (golden files of dev/golden_rows.R and dev/golden_stats.R); the summary, metrics and
# diagnostics equal the JSON result of the same run digit for digit; /rows is bit-identical to a
# 1-rank run and reads back as a sisma table; a failed write leaves no file and fails every rank.
set -uo pipefail
NP=${1:-2}
RUN="timeout 120 $MPIEXEC -n $NP $SISMA_BIN"
G=$SISMA_SOURCE_DIR/tests/stats/golden
command -v h5dump >/dev/null || { echo "h5dump not found (hdf5-tools)"; exit 77; }
fails=0
check() { # check NAME COMMAND...: ok when the command succeeds
  local name=$1
  shift
  if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}
cp "$G/reg.csv" "$G/reg_split.csv" "$G/cls.csv" .
rm -rf res ref && mkdir -p res ref

failed() { # failed RC OUTPUT PATTERN: the run failed with a message matching PATTERN
  [ "$1" -ne 0 ] && grep -q "$3" <<<"$2" || { echo "rc $1: $2" | tail -5; return 1; }
}
# h5rows FILE DATASET [TYPE]: the rows of a numeric dataset, one line each, at full precision (od
# prints the shortest decimal that reads back as the same double); TYPE d8 for 64-bit integers
h5rows() {
  local k
  k=$(h5dump -H -d "$2" "$1" | sed -n 's/.*SIMPLE { ( [0-9]*, \([0-9]*\) ).*/\1/p')
  h5dump -d "$2" -b LE -o h5rows.bin "$1" >/dev/null && od -A n -v -t "${3:-f8}" -w$((8 * ${k:-1})) h5rows.bin
}
# h5strings FILE DATASET: a string dataset, one string per line (as h5dump quotes them, NUL padding
# removed)
h5strings() { h5dump -y -w 0 -d "$2" "$1" | awk '/DATA {/ { on = 1; next } on && /^ *}/ { exit } on' | grep -o '"[^"]*"' | tr -d '"' | sed 's/\\000//g'; }
# h5attr FILE OBJECT/NAME: an attribute's value (numbers as %.17g, as the JSON writes them)
h5attr() { h5dump -m %.17g -a "$2" "$1" | sed -n 's/^ *(0): //p' | tr -d '"'; }
# jsonval FILE KEY: the first value of "KEY" in a JSON result
jsonval() { grep -o "\"$2\": [^,}]*" "$1" | head -1 | sed 's/.*: //'; }
# near A B: files of numbers (space or comma separated; NA, nan and null are missing), line by line,
# equal within 1e-9 relative (1e-11 absolute); prints the first difference
near() {
  awk 'function miss(v) { return v == "NA" || v == "nan" || v == "-nan" || v == "null" }
       NR == FNR { a[FNR] = $0; na = FNR; next }
       { nb = FNR; gsub(/^[ ,]+|[ ,]+$/, "", a[FNR]); s = $0; gsub(/^[ ,]+|[ ,]+$/, "", s)
         n = split(a[FNR], x, /[ ,]+/); m = split(s, y, /[ ,]+/)
         if (n != m) { printf "line %d: %d vs %d values\n", FNR, n, m; bad = 1; exit 1 }
         for (i = 1; i <= n; i++) {
           if (miss(x[i]) || miss(y[i])) { if (miss(x[i]) != miss(y[i])) { bad = 1 } }
           else { d = x[i] - y[i]; if (d < 0) d = -d; t = y[i] < 0 ? -y[i] : y[i]; if (d > 1e-9 * t + 1e-11) bad = 1 }
           if (bad) { printf "line %d value %d: %s vs %s\n", FNR, i, x[i], y[i]; exit 1 } } }
       END { if (!bad && na != nb) { printf "%d vs %d lines\n", na, nb; exit 1 } exit bad }' "$1" "$2"
}
golden() { tail -n +2 "$G/$1" | cut -d, -f2-; } # a golden CSV without its header and first column
same_attrs() { # same_attrs H5 JSON [GROUP/]KEY...: the attributes equal the JSON's numbers as printed
  local h5=$1 js=$2 k a j
  shift 2
  for k in "$@"; do
    a=$(h5attr "$h5" "$k")
    j=$(jsonval "$js" "${k##*/}")
    [ "$j" = null ] && j=nan
    [ -n "$a" ] && [ "$a" = "$j" ] || { echo "$k: HDF5 $a, JSON $j"; return 1; }
  done
}
bitwise_as_1_rank() { # bitwise_as_1_rank FILE REF: /rows identical to a 1-rank run's
  h5dump -d /rows -b LE -o a.bin "$1" >/dev/null && h5dump -d /rows -b LE -o b.bin "$2" >/dev/null && cmp -s a.bin b.bin
}
RUN1="timeout 120 $MPIEXEC -n 1 $SISMA_BIN"

# ---- lm with a train/test/dev split and diagnostics (R: lm(..., subset = split == "train")) ----
args=(lm --data reg_split.csv 'y ~ x1 + x2' --split-column split --block-rows 5 --diagnostics true --id-column event)
$RUN "${args[@]}" --output res/split.h5 >split_h5.out 2>&1 || echo "exit $? for lm .h5"
$RUN "${args[@]}" --output res/split.json >split_json.out 2>&1 || echo "exit $? for lm .json"
check "lm .h5 written, nothing partial left" bash -c '[ -s res/split.h5 ] && ! ls -A res | grep -q partial'
check "lm prints the same with .h5 and .json output" diff <(grep -v INFO split_h5.out) split_json.out
check "lm /coefficients = R (lm_split_coef.csv)" near <(h5rows res/split.h5 /coefficients) <(golden lm_split_coef.csv)
check "lm /coefficient_names = R" diff <(h5strings res/split.h5 /coefficient_names) <(tail -n +2 "$G/lm_split_coef.csv" | cut -d, -f1)
check "lm /coefficients columns" test "$(h5attr res/split.h5 /coefficients/columns)" = \
  estimate,std_error,t_value,p_value,ci_lower,ci_upper
check "lm /rows (split, response, fitted, residual, hat, rstudent, Cook's) = R per row (lm_split_rows.csv)" \
  near <(h5rows res/split.h5 /rows) <(golden lm_split_rows.csv)
check "lm summary attributes = JSON" same_attrs res/split.h5 res/split.json n n_dropped sigma df_residual r_squared \
  adj_r_squared f_statistic f_numdf f_dendf f_p_value rss log_likelihood aic bic
sed -n '/heldout_metrics/p' res/split.json >heldout.json
sed -n '/dev_metrics/p' res/split.json >dev.json
check "lm held-out metrics = JSON" same_attrs res/split.h5 heldout.json \
  heldout_metrics/n heldout_metrics/rmse heldout_metrics/mae heldout_metrics/mean_error heldout_metrics/r_squared
check "lm dev metrics = JSON" same_attrs res/split.h5 dev.json dev_metrics/n \
  dev_metrics/rmse dev_metrics/mae dev_metrics/mean_error dev_metrics/r_squared
check "lm diagnostics = JSON" same_attrs res/split.h5 res/split.json diagnostics/breusch_pagan \
  diagnostics/breusch_pagan_p_value diagnostics/durbin_watson diagnostics/high_leverage diagnostics/influential
# the worst Cook's rows of the JSON: the same rows and values in /diagnostics/worst_rows and in /rows
grep -o '{"row": [^}]*}' res/split.json | sed -E 's/"[a-z_]+": //g; s/[{},]/ /g' >worst_json.txt
h5rows res/split.h5 /diagnostics/worst_rows >worst_h5.txt
check "lm /diagnostics/worst_rows = JSON worst_rows" near worst_h5.txt worst_json.txt
sort -n worst_h5.txt | awk '{ print $1, $2 }' >worst_a.txt
h5rows res/split.h5 /rows | awk 'NR == FNR { w[$1]; next } (FNR in w) { print FNR, $7 }' worst_h5.txt - >worst_b.txt
check "lm /rows Cook's distance at the JSON's worst rows" near worst_a.txt worst_b.txt
check "lm /row_id: the event of every table row" diff <(h5strings res/split.h5 /row_id) \
  <(tail -n +2 reg_split.csv | cut -d, -f1 | tr -d '"')
check "lm /row_id/column names the id column" test "$(h5attr res/split.h5 /row_id/column)" = event
check "lm /diagnostics/worst_labels name the rows' events" grep -qx 'ev[0-9][0-9]' <(h5strings res/split.h5 /diagnostics/worst_labels | head -1)
$RUN lm --data res/split.h5:/rows 'residual ~ fitted' >readback.out 2>&1
check "/rows reads back as a table (58 rows with values)" grep -q 'on 56 degrees of freedom' readback.out
if [ "$NP" -gt 1 ]; then
  $RUN1 "${args[@]}" --output ref/split.h5 >/dev/null 2>&1
  check "lm /rows bit-identical to 1 rank" bitwise_as_1_rank res/split.h5 ref/split.h5
fi

# ---- lm without a split: rows against R's fitted(), residuals(), hatvalues(), rstudent(),
# cooks.distance(); VIF, Breusch-Pagan and Durbin-Watson against car and lmtest ----
$RUN lm --data reg.csv 'y ~ x1 + g' --diagnostics true --block-rows 7 --output res/factor.h5 >factor.out 2>&1
check "lm y ~ x1 + g: /coefficients = R" near <(h5rows res/factor.h5 /coefficients) <(golden lm_factor_coef.csv)
check "lm y ~ x1 + g: /rows = R per row (lm_factor_rows.csv)" near <(h5rows res/factor.h5 /rows) <(golden lm_factor_rows.csv)
gd() { grep "^$1," "$G/lm_factor_diag.num" | cut -d, -f2; }
check "lm y ~ x1 + g: Breusch-Pagan, Durbin-Watson, GVIF = R" near \
  <(echo "$(h5attr res/factor.h5 /diagnostics/breusch_pagan) $(h5attr res/factor.h5 /diagnostics/durbin_watson)"; h5rows res/factor.h5 /diagnostics/vif | awk '{ print $1 }') \
  <(echo "$(gd bp) $(gd dw)"; gd gvif:x1; gd gvif:g)
check "lm y ~ x1 + g: no /row_id without an id column" test -z "$(h5dump -H res/factor.h5 | grep row_id)"

# ---- glm: R's coefficients, linear predictors and fitted probabilities ----
$RUN glm --data cls.csv --block-rows 13 'label ~ x1 + x2 + site' --output res/glm.h5 >glm.out 2>&1
check "glm /coefficients (z, Wald interval) = R" near <(h5rows res/glm.h5 /coefficients) <(golden glm_factor_coef.csv)
check "glm /rows (split, response, linear predictor, probability) = R per row" near <(h5rows res/glm.h5 /rows) \
  <(golden glm_factor_rows.csv)
gg() { grep "^$1," "$G/glm_factor.num" | cut -d, -f2; }
check "glm deviance, null deviance, AIC, iterations = R" near \
  <(for k in deviance null_deviance aic iterations; do h5attr res/glm.h5 $k; done) \
  <(for k in deviance null_deviance aic iter; do gg $k; done)
# held-out, dev and cross-validation metrics against the JSON of the same run
args=(glm --data cls.csv 'label ~ x1 + x2 + site' --test-fraction 0.3 --dev-fraction 0.2 --folds 3)
$RUN "${args[@]}" --output res/glms.h5 >glms.out 2>&1
$RUN "${args[@]}" --output res/glms.json >/dev/null 2>&1
for key in heldout_metrics dev_metrics cross_validation_pooled; do
  sed -n "/\"$key\"/p" res/glms.json >m.json
  check "glm $key = JSON" same_attrs res/glms.h5 m.json $key/n $key/accuracy $key/precision $key/recall $key/f1 $key/roc_auc
  check "glm $key/confusion = JSON" diff <(h5rows res/glms.h5 /$key/confusion d8 | tr -s ' ' | sed 's/^ //') \
    <(grep -o '"confusion": [^}]*' m.json | tr -d '[],' | cut -d' ' -f2- | xargs -n2)
done
# per-event metrics (event_column): recomputed here from /rows - each held-out event's mean
# probability against the threshold - must give the JSON's confusion counts; events of mixed class
# are an error on every rank
awk -F, 'NR == 1 { print $0 ",ev"; next } { print $0 "," $4 "_" (NR % 17) }' cls.csv >clsev.csv
evargs=(glm --data clsev.csv 'label ~ x1 + x2' --test-fraction 0.4 --group-column ev --event-column ev)
$RUN "${evargs[@]}" --output res/glmev.h5 >/dev/null 2>&1
$RUN "${evargs[@]}" --output res/glmev.json >/dev/null 2>&1
event_confusion() {
  paste -d' ' <(h5rows res/glmev.h5 /rows) <(tail -n +2 clsev.csv | cut -d, -f5) |
    awk '$1 == 2 { s[$5] += $4; n[$5]++; y[$5] = $2 }
         END { for (e in s) c[y[e] * 2 + (s[e] / n[e] >= 0.5)]++; print c[0] + 0, c[1] + 0; print c[2] + 0, c[3] + 0 }'
}
check "glm per-event confusion = its recount from /rows" diff <(event_confusion) \
  <(grep -o '"heldout_event_metrics": {.*' res/glmev.json | grep -o '"confusion": [^}]*' | tr -d '[],' | cut -d' ' -f2- | xargs -n2)
out=$($RUN glm --data cls.csv 'label ~ x1 + x2' --test-fraction 0.4 --group-column site --event-column site 2>&1)
check "glm events of mixed class: every rank fails, the error says so" failed $? "$out" 'differ in class'
split_codes() { h5rows res/glms.h5 /rows | awk '{ n[$1]++; if ($4 < 0 || $4 > 1) bad = 1 } END { exit !(n[1] && n[2] && n[3] && !bad) }'; }
check "glm /rows: split codes 1, 2, 3 and probabilities in [0, 1]" split_codes
if [ "$NP" -gt 1 ]; then
  $RUN1 "${args[@]}" --output ref/glms.h5 >/dev/null 2>&1
  check "glm /rows bit-identical to 1 rank" bitwise_as_1_rank res/glms.h5 ref/glms.h5
fi

# ---- gradient descent: the coefficients of the JSON result ----
$RUN lm --data reg.csv 'y ~ x1 + g' --solver gd --output res/gd.h5 >/dev/null 2>&1
$RUN lm --data reg.csv 'y ~ x1 + g' --solver gd --output res/gd.json >/dev/null 2>&1
check "lm --solver gd: /coefficients = JSON" near <(h5rows res/gd.h5 /coefficients) \
  <(grep -o '"coefficients": {.*}' res/gd.json | sed 's/.*{//' | grep -o ': [^,}]*' | cut -c3-)
args=(glm --data cls.csv 'label ~ x1 + x2' --solver gd --lr 0.5 --max-iter 5000 --test-fraction 0.25)
$RUN "${args[@]}" --output res/glmgd.h5 >glmgd.out 2>&1
$RUN "${args[@]}" --output res/glmgd.json >/dev/null 2>&1
check "glm --solver gd: /coefficients = JSON" near <(h5rows res/glmgd.h5 /coefficients) \
  <(grep -o '"coefficients": {.*}' res/glmgd.json | sed 's/.*{//' | grep -o ': [^,}]*' | cut -c3-)
sed -n '/"heldout_metrics"/p' res/glmgd.json >m.json
check "glm --solver gd: held-out metrics = JSON" same_attrs res/glmgd.h5 m.json heldout_metrics/n \
  heldout_metrics/accuracy heldout_metrics/f1 heldout_metrics/roc_auc
check "glm --solver gd: JSON says converged, cost and iterations as the HDF5" same_attrs res/glmgd.h5 res/glmgd.json \
  cost iterations n n_heldout
check "glm --solver gd: converged (JSON true)" grep -q '"converged": true' res/glmgd.json
$RUN glm --data cls.csv 'label ~ x1 + x2' --id-column site --output res/glmid.h5 >/dev/null 2>&1
check "glm --id-column: /row_id is the column, row by row" diff <(h5strings res/glmid.h5 /row_id) \
  <(tail -n +2 cls.csv | cut -d, -f3 | tr -d '"')
gdrows() { h5rows res/glmgd.h5 /rows | awk '{ n[$1]++; if ($4 < 0 || $4 > 1) bad = 1 } END { exit !(n[1] && n[2] && !bad) }'; }
check "glm --solver gd: /rows split codes 1, 2 and probabilities in [0, 1]" gdrows

# ---- failures: every rank fails with a message naming the file, nothing is left behind ----
touch notadir
out=$($RUN lm --data reg.csv 'y ~ x1' --output notadir/r.h5 2>&1)
check "unwritable output: every rank fails, the error names the file" failed $? "$out" 'cannot write notadir/r.h5'
mkdir -p fault
out=$(SISMA_FAULT=catalog_write:$((NP - 1)) $RUN lm --data reg.csv 'y ~ x1' --diagnostics true --output fault/r.h5 2>&1)
check "lm: a write failing on rank $((NP - 1)) fails every rank" failed $? "$out" 'injected fault at catalog_write'
check "lm: no file, no partial file left" test -z "$(ls -A fault)"
out=$(SISMA_FAULT=catalog_write:$((NP - 1)) $RUN glm --data cls.csv 'label ~ x1' --output fault/g.h5 2>&1)
check "glm: a write failing on rank $((NP - 1)) fails every rank" failed $? "$out" 'injected fault at catalog_write'
check "glm: no file, no partial file left" test -z "$(ls -A fault)"

echo "$fails failure(s)"
[ $fails -eq 0 ]
