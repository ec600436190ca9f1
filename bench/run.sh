#!/usr/bin/env bash
# Catalog I/O benchmark for sisma.  Usage:  bash bench/run.sh [SIZE_GB]   (default 2.16 GB)
#
# Build choice: the benchmark stays out of the CMake build.  This script compiles
# bench/read_bench.c with mpicc against an existing build tree (BUILD, default "build"; e.g.
# BUILD=build-bench) and links $BUILD/libsisma.so with an rpath, so no CMake option is needed:
#   cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && make -C build -j2 && bash bench/run.sh
#
# What it does: writes a catalog of ~SIZE_GB (3 components x 6000 float32 samples = 72 KB per
# trace) under $BENCH_DIR (default /tmp/sisma-bench) once, timing the write on 2 ranks; warms the
# page cache; then runs REPS (default 5) repetitions of: cat, sisma read on 1 and 2 ranks, sisma
# stream (sm_reader, budget STREAM_MIB) on 2 ranks, h5py in one process; prints medians, the
# ratio to cat and the peak RSS per rank (/usr/bin/time -v).  Then times `$BUILD/sisma synth`
# (SYNTH_TRACES x 3 x 3000, SYNTH_REPS repetitions) on 1 and 2 ranks if it exists.
# Environment knobs: BUILD, BENCH_DIR, REPS, BLOCK_MIB (read block per rank, 256),
# STREAM_MIB (256), SYNTH_TRACES (100000), SYNTH_REPS (3), KEEP=1 (keep the files).
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_GB=${1:-2.16}
BUILD=${BUILD:-build}
BENCH_DIR=${BENCH_DIR:-/tmp/sisma-bench}
REPS=${REPS:-5}
BLOCK_MIB=${BLOCK_MIB:-256}
STREAM_MIB=${STREAM_MIB:-256}
SYNTH_TRACES=${SYNTH_TRACES:-100000}
SYNTH_REPS=${SYNTH_REPS:-3}
PY=/usr/bin/python3

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_pml=ob1
export OMPI_MCA_hwloc_base_binding_policy=none OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl_base_warn_component_unused=0 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
unset OMPI_MCA_btl_vader_single_copy_mechanism   # keep CMA single copy (the fast path here)

[ -f "$BUILD/libsisma.so" ] || { echo "run.sh: $BUILD/libsisma.so not found; build first (see top of this file)" >&2; exit 1; }
mkdir -p "$BENCH_DIR"
RB="$BENCH_DIR/read_bench"
mpicc -O2 -std=gnu11 -Wall -Wextra -Werror -I include -I/usr/include/hdf5/openmpi bench/read_bench.c \
  -o "$RB" -L"$BUILD" -lsisma -Wl,-rpath,"$(cd "$BUILD" && pwd)"

FILE="$BENCH_DIR/catalog.h5"
NTR=$($PY -c "print(max(1, int($SIZE_GB * 1e9 / 72000)))")
LOG="$BENCH_DIR/logs"; rm -rf "$LOG"; mkdir -p "$LOG"

echo "# load: $(cut -d" " -f1-3 /proc/loadavg)"
echo "# machine: nproc=$(nproc --all) cpu='$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)'" \
     "mem=$(free -g | awk '/Mem:/{print $2}')GiB  $(mpirun --version | head -1)"

# run_ranks NP TAG CMD...: run CMD on NP ranks, each under /usr/bin/time -v; prints the BENCH line
# and "rss_kib=r0,r1" (Maximum resident set size per rank).
run_ranks() {
  local np=$1 tag=$2; shift 2
  mpirun -n "$np" sh -c '/usr/bin/time -v -o "$0.$OMPI_COMM_WORLD_RANK" "$@"' "$LOG/$tag" "$@" > "$LOG/$tag.out" 2> "$LOG/$tag.err" \
    || { cat "$LOG/$tag.err" >&2; return 1; }
  local rss
  rss=$(for r in $(seq 0 $((np - 1))); do awk -F: '/Maximum resident/{gsub(/ /,"",$2); print $2}' "$LOG/$tag.$r"; done | paste -sd,)
  echo "$(grep '^BENCH' "$LOG/$tag.out") rss_kib=$rss"
}

if [ ! -f "$FILE" ]; then
  echo "# writing $FILE: $NTR traces x 3 x 6000 float32 on 2 ranks"
  run_ranks 2 write "$RB" write "$FILE" -n "$NTR" -c 3 -t 6000 -b "$BLOCK_MIB" | tee "$LOG/write.line"
  sync
fi
BYTES=$(stat -c %s "$FILE")
echo "# file $FILE: $BYTES bytes"
cat "$FILE" > /dev/null; cat "$FILE" > /dev/null   # warm the page cache

RES="$BENCH_DIR/results.txt"; : > "$RES"
for rep in $(seq 1 "$REPS"); do
  t0=$(date +%s.%N); cat "$FILE" > /dev/null; t1=$(date +%s.%N)
  echo "BENCH mode=cat ranks=1 bytes=$BYTES gbps=$($PY -c "print(f'{$BYTES/($t1-$t0)/1e9:.4f}')")" | tee -a "$RES"
  run_ranks 1 "read1.$rep" "$RB" read "$FILE" -b "$BLOCK_MIB" | tee -a "$RES"
  run_ranks 2 "read2.$rep" "$RB" read "$FILE" -b "$BLOCK_MIB" | tee -a "$RES"
  run_ranks 2 "stream2.$rep" "$RB" stream "$FILE" -b "$STREAM_MIB" | tee -a "$RES"
  $PY bench/h5py_read.py "$FILE" "$BLOCK_MIB" | tee -a "$RES"
done

SYN="$BENCH_DIR/synth.txt"; : > "$SYN"
if [ -x "$BUILD/sisma" ] && "$BUILD/sisma" synth --help > /dev/null 2>&1; then
  SB=$((SYNTH_TRACES * 3 * 3000 * 4))
  for np in 1 2; do
    for rep in $(seq 1 "$SYNTH_REPS"); do
      out="$BENCH_DIR/synth.h5"; rm -f "$out"
      t0=$(date +%s.%N)
      mpirun -n "$np" sh -c '/usr/bin/time -v -o "$0.$OMPI_COMM_WORLD_RANK" "$@"' "$LOG/synth$np.$rep" \
        "$BUILD/sisma" synth --output "$out" --traces "$SYNTH_TRACES" --samples 3000 > "$LOG/synth$np.$rep.out" 2>&1 \
        || { cat "$LOG/synth$np.$rep.out" >&2; break; }
      t1=$(date +%s.%N)
      rss=$(for r in $(seq 0 $((np - 1))); do awk -F: '/Maximum resident/{gsub(/ /,"",$2); print $2}' "$LOG/synth$np.$rep.$r"; done | paste -sd,)
      echo "BENCH mode=synth ranks=$np bytes=$SB seconds=$($PY -c "print(f'{$t1-$t0:.4f}')") gbps=$($PY -c "print(f'{$SB/($t1-$t0)/1e9:.4f}')") rss_kib=$rss" | tee -a "$SYN"
      rm -f "$out"
    done
  done
else
  echo "# note: $BUILD/sisma synth not available; synth timing skipped" | tee -a "$SYN"
fi

echo
echo "# medians over $REPS repetitions (GB/s = 1e9 bytes/s of waveforms; rss = max over reps, per rank, MiB)"
cat "$RES" "$SYN" "$LOG/write.line" 2>/dev/null | $PY -c '
import sys, statistics as st, collections
runs = collections.OrderedDict()
for line in sys.stdin:
    if not line.startswith("BENCH"): continue
    kv = dict(x.split("=", 1) for x in line.split()[1:])
    runs.setdefault((kv["mode"], kv["ranks"]), []).append(kv)
cat = st.median(float(k["gbps"]) for k in runs.get(("cat", "1"), [{"gbps": "nan"}]))
print("%-12s%6s%4s%13s%9s%9s%8s   peak RSS/rank MiB" % ("run", "ranks", "n", "median GB/s", "min", "max", "vs cat"))
for (m, r), ks in runs.items():
    g = [float(k["gbps"]) for k in ks]
    rss = ""
    if "rss_kib" in ks[0]:
        per = zip(*[[int(x) for x in k["rss_kib"].split(",")] for k in ks])
        rss = ",".join(f"{max(p)/1024:.0f}" for p in per)
    print(f"{m:<12}{r:>6}{len(g):>4}{st.median(g):>13.3f}{min(g):>9.3f}{max(g):>9.3f}{st.median(g)/cat:>8.2f}   {rss}")
' | tee "$BENCH_DIR/summary.txt"

if [ "${KEEP:-0}" != 1 ]; then rm -f "$FILE" "$BENCH_DIR/synth.h5"; echo "# removed $FILE (KEEP=1 keeps it)"; fi
