# Shared helpers of the script tests (sourced): a failure counter and two assertions.
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
