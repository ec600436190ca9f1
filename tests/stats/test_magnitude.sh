#!/usr/bin/env bash
# jobs/magnitude.yaml at NP ranks on a tiny catalog (1,500 traces): synth -> features -> lm.
#  - the attenuation fit recovers the synthetic's Hutton-Boore relation (docs/synthetic.md):
#    ML 1, log10(r/100) -1.110, intercept -3.0, each within K standard errors (as printed), and the
#    residual standard error recovers the scatter 0.15 within K of its standard error 0.15/sqrt(2 df);
#  - the inverse (magnitude) fit shows regression dilution: the log10 A slope and the distance terms
#    equal lambda (1, 1.110, 0.00189), lambda = s^2 / (s^2 + 0.15^2) with s the residual standard
#    deviation of ML given the distance terms (an lm on the same table), within K standard errors;
#  - both JSON results equal a 1-rank run but for the "ranks" field, the feature table bit for bit.
set -uo pipefail
NP=${1:-2}
K=4
fails=0
job() { # job NP DIR
  $MPIEXEC -n "$1" "$SISMA_BIN" run "$SISMA_SOURCE_DIR/jobs/magnitude.yaml" --set output_dir="$2" \
    --set synth.traces=1500 >"$2.out" 2>&1
}
coef() { # coef NAME FILE: "estimate std_error" of a coefficient of a JSON result
  awk -v n="\"name\": \"$1\"" 'index($0, n) {
    match($0, /"estimate": [^,]*/); e = substr($0, RSTART + 12, RLENGTH - 12)
    match($0, /"std_error": [^,]*/); s = substr($0, RSTART + 13, RLENGTH - 13); print e, s }' "$2"
}
field() { awk -v k="\"$1\": " 'index($0, k) == 3 { v = substr($0, length(k) + 3); sub(/,$/, "", v); print v }' "$2"; }
check() { # check LABEL ESTIMATE SE TRUTH: |estimate - truth| <= K se
  if awk -v e="$2" -v s="$3" -v t="$4" -v k=$K 'BEGIN { d = e - t; exit !(e != "" && (d < 0 ? -d : d) <= k * s) }'; then
    printf 'ok   %-28s %.6g (se %.3g), truth %.6g\n' "$1" "$2" "$3" "$4"
  else
    printf 'FAIL %-28s %s (se %s), truth %s: more than %d se apart\n' "$1" "$2" "$3" "$4" $K; fails=$((fails + 1))
  fi
}

if ! job "$NP" out; then echo "FAIL jobs/magnitude.yaml at $NP ranks"; tail -30 out.out; exit 1; fi
A=out/attenuation.json M=out/magnitude.json
LOGR='log10(path_hyp_distance_km/100)'
PEAK='I((log10_peak_N + log10_peak_E + abs(log10_peak_N - log10_peak_E))/2)'
check "attenuation (Intercept)" $(coef '(Intercept)' $A) -3.0
check "attenuation source_magnitude" $(coef source_magnitude $A) 1
check "attenuation $LOGR" $(coef "$LOGR" $A) -1.110
check "attenuation sigma" "$(field sigma $A)" "$(awk -v d="$(field df_residual $A)" 'BEGIN { print 0.15 / sqrt(2 * d) }')" 0.15

"$MPIEXEC" -n "$NP" "$SISMA_BIN" lm --data out/features.h5:/features --output ml_given_r.json \
  "source_magnitude ~ $LOGR + I(path_hyp_distance_km - 100)" >ml_given_r.out 2>&1
lambda=$(awk -v s="$(field sigma ml_given_r.json)" 'BEGIN { if (s == "") exit 1; printf "%.10g", s * s / (s * s + 0.0225) }') || {
  echo "FAIL lm of ML on distance"; cat ml_given_r.out; fails=$((fails + 1)); lambda=0; }
echo "     lambda = $lambda"
check "magnitude log10 peak H" $(coef "$PEAK" $M) "$lambda"
check "magnitude $LOGR" $(coef "$LOGR" $M) "$(awk -v l="$lambda" 'BEGIN { print l * 1.110 }')"
check "magnitude I(r - 100)" $(coef 'I(path_hyp_distance_km - 100)' $M) "$(awk -v l="$lambda" 'BEGIN { print l * 0.00189 }')"

if [ "$NP" -gt 1 ]; then
  # in its own directory with the same relative output_dir, so that the recorded paths match too
  mkdir -p np1 && (cd np1 && job 1 out) || { echo "FAIL jobs/magnitude.yaml at 1 rank"; tail -30 np1/out.out; fails=$((fails + 1)); }
  for f in attenuation.json magnitude.json; do
    if diff <(grep -v '"ranks":' np1/out/$f) <(grep -v '"ranks":' out/$f) >diff.txt; then echo "ok   $f equals the 1-rank one"; else
      echo "FAIL $f differs from the 1-rank one"; cat diff.txt; fails=$((fails + 1)); fi
  done
  if h5diff np1/out/features.h5 out/features.h5 >diff.txt 2>&1; then echo "ok   features.h5 equals the 1-rank one"; else
    echo "FAIL features.h5 differs from the 1-rank one"; head -20 diff.txt; fails=$((fails + 1)); fi
fi
echo "$fails failure(s)"
[ $fails -eq 0 ]
