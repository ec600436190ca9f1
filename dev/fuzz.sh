#!/usr/bin/env bash
# Fuzzes sisma's input parsers with libFuzzer (tests/fuzz): builds the targets with clang, ASan,
# UBSan and coverage into ${BUILD:-build-fuzz}, then runs each target for SECS seconds (default
# 300) on a copy of its corpus in ${WORK:-/tmp/sisma-fuzz}. Crashes, sanitizer reports and failed
# invariants are written there as crash-*; replay one with `build-fuzz/tests/fuzz/fuzz_T FILE`,
# fix the cause and add the file to tests/fuzz/corpus/T (CTest replays the corpora at 1-4 ranks).
#   bash dev/fuzz.sh [TARGET...]        (targets: table lm stage job mseed; default all)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-fuzz} WORK=${WORK:-/tmp/sisma-fuzz} SECS=${SECS:-300}
CC=clang BUILD=$BUILD bash dev/build.sh -DSISMA_FUZZ=ON -DSISMA_WERROR=OFF >/dev/null
. dev/mpi-env.sh
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
for t1 in ${@:-table lm stage job mseed}; do
  {
    mkdir -p "$WORK/$t1/corpus" "$WORK/$t1/crashes"
    cp -n tests/fuzz/corpus/$t1/* "$WORK/$t1/corpus/" 2>/dev/null || true
    echo "fuzz_$t1: $SECS s"
    (cd "$WORK/$t1" && SISMA_TEST_TMP="$WORK/$t1" nice -n 19 "$OLDPWD/$BUILD/tests/fuzz/fuzz_$t1" corpus \
      -max_total_time="$SECS" -max_len=4096 -timeout=20 -rss_limit_mb=4096 -artifact_prefix=crashes/ \
      -close_fd_mask=2 >"$WORK/$t1/log" 2>&1) || status=1
    tail -3 "$WORK/$t1/log"
    ls "$WORK/$t1/crashes" | sed "s|^|$WORK/$t1/crashes/|"
  }
done
exit $status
