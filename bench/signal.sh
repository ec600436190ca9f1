#!/usr/bin/env bash
# Signal-processing benchmark for sisma.  Usage:  bash bench/signal.sh [TRACES] [SAMPLES]
#   (default 100000 three-component traces x 1000 samples at 100 Hz = 1.2 GB of float32)
#
# 1. Zero-phase order-4 1-45 Hz Butterworth band-pass (sosfiltfilt semantics) over every component
#    of every trace: sisma's batched filter (bench/signal_bench.c, 4 series per vector) on 1 and 2
#    ranks, its one-series-at-a-time filter on 1 rank, and scipy.signal.sosfiltfilt on the same
#    catalog in one process (bench/scipy_filtfilt.py, whole blocks per call). Reported: filter time
#    only, and samples per second per core; the checksums must agree (same results).
# 2. Is the whole `preprocess` stage I/O-bound on 2 ranks? The EQTransformer chain with picks and
#    SNR (jobs/preprocess.yaml's settings) against the same stage with chain=demean, picker=none
#    (the same reads and writes, almost no compute), and against a read-only scan (info --waveforms).
# Medians of REPS (3) runs, page cache warm; peak RSS per rank from /usr/bin/time -v.
# Like bench/run.sh it compiles its driver with mpicc against $BUILD/libsisma.so (no CMake option):
#   cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && make -C build -j2 && bash bench/signal.sh
# Knobs: BUILD (build), BENCH_DIR (/tmp/sisma-signal-bench), REPS (3), KEEP=1 keeps the catalogs,
# PARTS ("filter pre": the band-pass comparison and/or the preprocess stage runs).
set -euo pipefail
cd "$(dirname "$0")/.."
TRACES=${1:-100000}
SAMPLES=${2:-1000}
BUILD=${BUILD:-build}
BENCH_DIR=${BENCH_DIR:-/tmp/sisma-signal-bench}
REPS=${REPS:-3}
PARTS=${PARTS:-filter pre}
PY=/usr/bin/python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_pml=ob1
export OMPI_MCA_hwloc_base_binding_policy=none OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl_base_warn_component_unused=0 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 SISMA_LOG=warn

[ -f "$BUILD/libsisma.so" ] || { echo "signal.sh: $BUILD/libsisma.so not found; build first" >&2; exit 1; }
mkdir -p "$BENCH_DIR/logs"
SB="$BENCH_DIR/signal_bench"
mpicc -O2 -std=gnu11 -Wall -Wextra -Werror -I include -I/usr/include/hdf5/openmpi bench/signal_bench.c \
  -o "$SB" -L"$BUILD" -lsisma -Wl,-rpath,"$(cd "$BUILD" && pwd)" -lm
CAT="$BENCH_DIR/catalog.h5"
if [ ! -f "$CAT" ]; then
  echo "writing $TRACES x 3 x $SAMPLES catalog to $CAT"
  mpirun -n 2 "$BUILD/sisma" synth --output "$CAT" --traces "$TRACES" --samples "$SAMPLES" --rate 100 --seed 3 >/dev/null
fi
cat "$CAT" >/dev/null # warm the page cache
RES="$BENCH_DIR/results.txt"
: >"$RES"

# run NAME NP CMD...: one timed run, peak RSS per rank (max over ranks) appended to the BENCH line
run() {
  local name=$1 np=$2 log="$BENCH_DIR/logs/$1.$3.log"
  shift 3
  local t0 t1 out
  t0=$(date +%s.%N)
  out=$(mpirun -n "$np" /usr/bin/time -v -o "$log.%q{OMPI_COMM_WORLD_RANK}" "$@" 2>&1) || { echo "$out" >&2; exit 1; }
  t1=$(date +%s.%N)
  local rss
  rss=$(cat "$log".* 2>/dev/null | awk '/Maximum resident/ {if ($6 > m) m = $6} END {printf "%.0f", m / 1024}')
  rm -f "$log".*
  local line
  line=$(grep '^BENCH' <<<"$out" || true)
  [ -n "$line" ] || line="BENCH $name ranks=$np"
  echo "$line name=$name wall_s=$(echo "$t1 - $t0" | bc) rss_mib=$rss" | tee -a "$RES"
}

PRE_EQT=(--set "preprocess.input=$CAT" --set "preprocess.output=$BENCH_DIR/pre.h5")
for r in $(seq "$REPS"); do
  if [[ " $PARTS " == *" filter "* ]]; then
  run batch1 1 "$r" "$SB" "$CAT" batch
  run batch2 2 "$r" "$SB" "$CAT" batch
  run scalar1 1 "$r" "$SB" "$CAT" scalar
  run scipy 1 "$r" $PY bench/scipy_filtfilt.py "$CAT"
  fi
  [[ " $PARTS " == *" pre "* ]] || continue
  run pre_eqt2 2 "$r" "$BUILD/sisma" preprocess --input "$CAT" --output "$BENCH_DIR/pre.h5" \
    --chain "demean,taper max_percentage=0.05,bandpass freqmin=1 freqmax=45 corners=4 zerophase=true,resample rate=100,normalize type=peak" \
    --nan_policy interpolate --memory-budget-mb 512
  run pre_copy2 2 "$r" "$BUILD/sisma" preprocess --input "$CAT" --output "$BENCH_DIR/pre_copy.h5" --chain demean --picker none --memory-budget-mb 512
  run read2 2 "$r" "$BUILD/sisma" info --catalog "$CAT" --waveforms true --memory-budget-mb 512
done

# medians
med() { # med NAME FIELD
  grep " name=$1 " "$RES" | sed -n "s/.* $2=\([0-9.e+-]*\).*/\1/p" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'
}
{
  echo "## signal benchmark: $TRACES traces x 3 x $SAMPLES samples, medians of $REPS"
  printf "%-10s %10s %10s %14s %9s\n" run compute_s wall_s "Msamp/s/core" rss_MiB
  for n in batch1 batch2 scalar1 scipy; do
    grep -q " name=$n " "$RES" || continue
    printf "%-10s %10s %10s %14s %9s\n" $n "$(med $n compute_s)" "$(med $n wall_s)" "$(med $n msamples_per_s_per_core)" "$(med $n rss_mib)"
  done
  for n in pre_eqt2 pre_copy2 read2; do
    grep -q " name=$n " "$RES" || continue
    printf "%-10s %10s %10s %14s %9s\n" $n - "$(med $n wall_s)" - "$(med $n rss_mib)"
  done
  echo "checksums: $(grep -o 'checksum=[^ ]*' "$RES" | sort -u | tr '\n' ' ')"
  echo "per-run ratios sisma batch (1 rank) / scipy, Msamples/s/core:"
  paste <(grep ' name=batch1 ' "$RES" | sed -n 's/.*msamples_per_s_per_core=\([0-9.]*\).*/\1/p') \
    <(grep ' name=scipy ' "$RES" | sed -n 's/.*msamples_per_s_per_core=\([0-9.]*\).*/\1/p') |
    awk 'NF == 2 {printf "  %.2f / %.2f = %.2fx\n", $1, $2, $1 / $2}'
  echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$BENCH_DIR/summary.txt"
[ "${KEEP:-0}" = 1 ] || rm -f "$CAT" "$BENCH_DIR/pre.h5" "$BENCH_DIR/pre_copy.h5"
