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
source "$(dirname "$0")/../lib.sh"
job() { tiny_job "$1" "$2" magnitude.yaml; }
field() { awk -v k="\"$1\": " 'index($0, k) == 3 { v = substr($0, length(k) + 3); sub(/,$/, "", v); print v }' "$2"; }
near() { # near LABEL ESTIMATE SE TRUTH: |estimate - truth| <= K se
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
near "attenuation (Intercept)" $(coef '(Intercept)' $A) -3.0
near "attenuation source_magnitude" $(coef source_magnitude $A) 1
near "attenuation $LOGR" $(coef "$LOGR" $A) -1.110
near "attenuation sigma" "$(field sigma $A)" "$(awk -v d="$(field df_residual $A)" 'BEGIN { print 0.15 / sqrt(2 * d) }')" 0.15

"$MPIEXEC" -n "$NP" "$SISMA_BIN" lm --data out/features.h5:/features --output ml_given_r.json \
  "source_magnitude ~ $LOGR + I(path_hyp_distance_km - 100)" >ml_given_r.out 2>&1
lambda=$(awk -v s="$(field sigma ml_given_r.json)" 'BEGIN { if (s == "") exit 1; printf "%.10g", s * s / (s * s + 0.0225) }') || {
  echo "FAIL lm of ML on distance"; cat ml_given_r.out; fails=$((fails + 1)); lambda=0; }
echo "     lambda = $lambda"
near "magnitude log10 peak H" $(coef "$PEAK" $M) "$lambda"
near "magnitude $LOGR" $(coef "$LOGR" $M) "$(awk -v l="$lambda" 'BEGIN { print l * 1.110 }')"
near "magnitude I(r - 100)" $(coef 'I(path_hyp_distance_km - 100)' $M) "$(awk -v l="$lambda" 'BEGIN { print l * 0.00189 }')"

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
