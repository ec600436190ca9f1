# Shared helpers of the script tests (sourced): a failure counter, two assertions, and readers for
# the job tests.
#   check DESCRIPTION COMMAND...              the command succeeds
#   expect_fail DESCRIPTION PATTERN COMMAND...  the command fails and its output matches PATTERN
# End a script with `exit $((fails > 0))`.
fails=0
check() {
  if "${@:2}"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); fi
}
expect_fail() {
  local out rc
  out=$("${@:3}" 2>&1); rc=$?
  if [ $rc -ne 0 ] && grep -qE -- "$2" <<<"$out"; then echo "ok   $1"; else
    echo "FAIL $1 (rc=$rc)"; echo "$out" | tail -5; fails=$((fails + 1)); fi
}

# tiny_job NP DIR JOB: jobs/JOB at NP ranks on a 1,500-trace synthetic catalog, output in DIR, log in DIR.out
tiny_job() {
  $MPIEXEC -n "$1" "$SISMA_BIN" run "$SISMA_SOURCE_DIR/jobs/$3" --set output_dir="$2" --set synth.traces=1500 >"$2.out" 2>&1
}
# coef NAME FILE: "estimate std_error" of a coefficient of an lm/glm JSON result
coef() {
  awk -v n="\"name\": \"$1\"" 'index($0, n) {
    match($0, /"estimate": [^,]*/); e = substr($0, RSTART + 12, RLENGTH - 12)
    match($0, /"std_error": [^,]*/); s = substr($0, RSTART + 13, RLENGTH - 13); print e, s }' "$2"
}
