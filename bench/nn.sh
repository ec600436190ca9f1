#!/usr/bin/env bash
# Neural-network training throughput, sisma against PyTorch on the same machine in the same run,
# one thread / rank each (OPENBLAS_NUM_THREADS=1, torch.set_num_threads(1)).  Usage:
#   bash bench/nn.sh            (after building: BUILD=build bash dev/build.sh)
# Cases (bench/nn_bench.c and bench/nn_torch.py implement the same models and optimisers):
#   mlp  16-64-64-1, MSE, SGD momentum 0.9, batch 256, one epoch over MLP_ROWS (1,000,000) rows
#   cnn  conv(3-16,k7) relu maxpool4 conv(16-32,k7) relu maxpool4 conv(32-64,k7) relu gap
#        dense(64-2), CE, Adam 1e-3, batch 64, CNN_SAMPLES (1024) windows of 3 x 3000
#   and sisma at 2 ranks against 1 (global batch split over ranks, bucketed Iallreduce).
# Prints per run and the median over REPS (3) runs of samples/s by wall clock and by CPU time
# (the machine is shared: CPU time is the steadier clock), the ratios, two shares of the wall
# time at 2 ranks: allreduce% (the gradient reduction still running after the last rank finished
# its backward pass) and wait% (all the time blocked in the final wait, including the wait for a
# slower rank), and the peak RSS per process (/usr/bin/time -v).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
REPS=${REPS:-3}
MLP_ROWS=${MLP_ROWS:-1000000}
CNN_SAMPLES=${CNN_SAMPLES:-1024}
DIR=${BENCH_DIR:-/tmp/sisma-nnbench}
PY=/usr/bin/python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_hwloc_base_binding_policy=none OMPI_MCA_btl_base_warn_component_unused=0
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
[ -f "$BUILD/libsisma.so" ] || { echo "nn.sh: $BUILD/libsisma.so not found; build first" >&2; exit 1; }
mkdir -p "$DIR"
mpicc -O2 -std=gnu11 -Wall -Wextra -Werror -I include -I src -I/usr/include/hdf5/openmpi bench/nn_bench.c \
  -o "$DIR/nn_bench" -L"$BUILD" -lsisma -Wl,-rpath,"$(cd "$BUILD" && pwd)" -lm
LOG="$DIR/nn.log"
: >"$LOG"
run() { # run LABEL COMMAND...: one line "LABEL samples/s cpu_samples/s allreduce% rss_kb wait%"
  local out
  out=$(/usr/bin/time -v "${@:2}" 2>&1)
  echo "$out" >>"$LOG"
  local sps cps ar rss wt
  sps=$(grep -o 'samples/s=[0-9]*' <<<"$out" | head -1 | cut -d= -f2)
  cps=$(grep -o 'cpu_samples/s=[0-9]*' <<<"$out" | head -1 | cut -d= -f2)
  ar=$(grep -o 'allreduce=[0-9.]*' <<<"$out" | head -1 | cut -d= -f2 || true); ar=${ar:-0}
  wt=$(grep -o 'wait=[0-9.]*' <<<"$out" | head -1 | cut -d= -f2 || true); wt=${wt:-0}
  rss=$(grep 'Maximum resident' <<<"$out" | awk '{print $NF}' | sort -n | tail -1)
  echo "$1 $sps $cps $ar $rss $wt"
}
results="$DIR/nn.results"
: >"$results"
for rep in $(seq "$REPS"); do
  run sisma_mlp "$DIR/nn_bench" mlp "$MLP_ROWS" 256 | tee -a "$results"
  run torch_mlp $PY bench/nn_torch.py mlp "$MLP_ROWS" 256 1 | tee -a "$results"
  run sisma_cnn "$DIR/nn_bench" cnn "$CNN_SAMPLES" 64 | tee -a "$results"
  run torch_cnn $PY bench/nn_torch.py cnn "$CNN_SAMPLES" 64 1 | tee -a "$results"
  run sisma_cnn_2ranks mpirun -n 2 "$DIR/nn_bench" cnn "$CNN_SAMPLES" 64 | tee -a "$results"
  run sisma_mlp_2ranks mpirun -n 2 "$DIR/nn_bench" mlp "$MLP_ROWS" 256 | tee -a "$results"
done
median() { grep "^$1 " "$results" | awk -v c="$2" '{print $c}' | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
echo
echo "medians over $REPS runs (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
printf "%-18s %12s %14s %10s %8s %10s\n" case samples/s cpu_samples/s allreduce% wait% rss_MiB
for c in sisma_mlp torch_mlp sisma_mlp_2ranks sisma_cnn torch_cnn sisma_cnn_2ranks; do
  printf "%-18s %12s %14s %10s %8s %10.0f\n" $c "$(median $c 2)" "$(median $c 3)" "$(median $c 4)" "$(median $c 6)" \
    "$(echo "$(median $c 5) / 1024" | bc -l)"
done
ratio() { echo "scale=2; $(median "$1" "$3") / $(median "$2" "$3")" | bc -l; }
echo "mlp sisma/torch: wall $(ratio sisma_mlp torch_mlp 2)x, cpu $(ratio sisma_mlp torch_mlp 3)x"
echo "cnn sisma/torch: wall $(ratio sisma_cnn torch_cnn 2)x, cpu $(ratio sisma_cnn torch_cnn 3)x"
echo "cnn 2 ranks/1:   wall $(ratio sisma_cnn_2ranks sisma_cnn 2)x; mlp 2 ranks/1: wall $(ratio sisma_mlp_2ranks sisma_mlp 2)x"
