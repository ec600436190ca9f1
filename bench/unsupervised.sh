#!/usr/bin/env bash
# k-means and PCA against scikit-learn, same machine, same run.  Usage:  bash bench/unsupervised.sh
#
#   k-means: 1,000,000 x 32 float32 (uniform), k = 16, 50 Lloyd iterations from the first 16 rows,
#            tol 0: sisma on 1 and 2 ranks vs KMeans(algorithm="lloyd") with 1 and 2 threads.
#   PCA:     200,000 x 256 float32 (rank-16 signal + noise), 8 components: sisma exact (ScaLAPACK
#            pdsyevd of the Gram matrix), single (the same with float32 Gram products, summed in
#            float64), randomized and tsqr on 1 and 2 ranks vs PCA(svd_solver=
#            "full") and PCA(svd_solver="randomized") with 1 and 2 threads; accuracy = largest
#            relative error of the 8 explained variances against sisma exact (float64).
# sklearn runs one process with N threads (threadpoolctl), sisma N ranks with OPENBLAS_NUM_THREADS=1.
# Each measurement REPS times (default 3), interleaved; medians; peak RSS per rank from /usr/bin/time -v.
# Needs the library built (BUILD, default build), /usr/bin/python3 with sklearn, h5py, threadpoolctl.
# Data are written once under BENCH_DIR (default /tmp/sisma-bench-unsup, 330 MB). PCA_ONLY=1 skips k-means.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
DIR=${BENCH_DIR:-/tmp/sisma-bench-unsup}
REPS=${REPS:-3}
PCA_ONLY=${PCA_ONLY:-0}
PY=/usr/bin/python3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_pml=ob1
export OMPI_MCA_hwloc_base_binding_policy=none OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl_base_warn_component_unused=0 OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
export OMPI_MCA_mpi_yield_when_idle=1   # the machine is shared: waiting ranks must not spin
[ -f "$BUILD/libsisma.so" ] || { echo "build first: $BUILD/libsisma.so not found" >&2; exit 1; }
mkdir -p "$DIR/logs"
UB="$DIR/unsupervised_bench"
mpicc -O2 -std=gnu11 -Wall -Wextra -Werror -I include -I/usr/include/hdf5/openmpi bench/unsupervised_bench.c \
  -o "$UB" -L"$BUILD" -lsisma -Wl,-rpath,"$(cd "$BUILD" && pwd)"
[ -f "$DIR/kmeans.h5" ] && [ -f "$DIR/pca.h5" ] || $PY bench/unsupervised_peer.py gen "$DIR"
OUT="$DIR/results.txt"; : > "$OUT"
echo "# $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg); nproc=$(nproc --all); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"

# sisma NP TAG ARGS...: one run under mpirun, each rank under /usr/bin/time -v
sisma() {
  local np=$1 tag=$2; shift 2
  mpirun -n "$np" sh -c '/usr/bin/time -v -o "$0.$OMPI_COMM_WORLD_RANK" "$@"' "$DIR/logs/$tag" "$UB" "$@" \
    > "$DIR/logs/$tag.out" 2>&1 || { cat "$DIR/logs/$tag.out" >&2; return 1; }
  local rss; rss=$(for r in $(seq 0 $((np - 1))); do awk -F: '/Maximum resident/{gsub(/ /,"",$2); print $2}' "$DIR/logs/$tag.$r"; done | paste -sd,)
  echo "$(grep '^BENCH' "$DIR/logs/$tag.out") tool=sisma rss_kib=$rss" | tee -a "$OUT"
}
peer() {
  local tag=$1; shift
  /usr/bin/time -v -o "$DIR/logs/$tag.0" $PY bench/unsupervised_peer.py "$@" > "$DIR/logs/$tag.out" 2>&1 \
    || { cat "$DIR/logs/$tag.out" >&2; return 1; }
  echo "$(grep '^BENCH' "$DIR/logs/$tag.out") tool=sklearn rss_kib=$(awk -F: '/Maximum resident/{gsub(/ /,"",$2); print $2}' "$DIR/logs/$tag.0")" | tee -a "$OUT"
}
for rep in $(seq "$REPS"); do
  for n in 1 2; do
    if [ "$PCA_ONLY" != 1 ]; then
      sisma $n km$n-$rep kmeans "$DIR/kmeans.h5:/x" 16 50
      peer kmp$n-$rep kmeans "$DIR/kmeans.h5" 16 50 $n
    fi
    for m in exact single randomized tsqr; do sisma $n pca-$m$n-$rep pca "$DIR/pca.h5:/x" 8 $m; done
    for m in full randomized; do peer pcap-$m$n-$rep pca "$DIR/pca.h5" 8 $m $n; done
  done
done
$PY - "$OUT" <<'PYEOF'
import re, statistics, sys
rows = [dict(re.findall(r'(\w+)=("[^"]*"|\S+)', l)) for l in open(sys.argv[1]) if l.startswith("BENCH")]
med = lambda xs: statistics.median(xs)
def pick(**kv):
    return [r for r in rows if all(r.get(k) == v for k, v in kv.items())]
def cores(r): return r.get("ranks") or r.get("threads")
print("\n## k-means 1e6 x 32, k = 16, 50 iterations (median of %d runs)" % len(pick(kind="kmeans", tool="sisma", ranks="1")))
print("| cores | sisma ms/iter (Lloyd) | sisma ms/iter (whole fit) | sklearn ms/iter (whole fit) | ratio (whole fit) | ratio (Lloyd) | sisma RSS/rank MiB | sklearn RSS MiB |")
print("|---|---|---|---|---|---|---|---|")
base = {}
for n in ("1", "2"):
    s = pick(kind="kmeans", tool="sisma", ranks=n); p = pick(kind="kmeans", tool="sklearn", threads=n)
    if not s or not p: continue
    lm = med(float(r["lloyd_ms"]) for r in s); fm = med(float(r["per_iter_ms"]) for r in s)
    pm = med(float(r["per_iter_ms"]) for r in p)
    base.setdefault("km", (lm, pm))
    rs = max(int(x) for r in s for x in r["rss_kib"].split(",")) / 1024; rp = med(int(r["rss_kib"]) for r in p) / 1024
    print("| %s | %.1f | %.1f | %.1f | %.2fx | %.2fx | %.0f | %.0f |" % (n, lm, fm, pm, pm / fm, pm / lm, rs, rp))
    if n == "1":
        cs = med(float(r["cpu_s"]) for r in s); cp = med(float(r["cpu_s"]) for r in p)
        cpu_line = "k-means 1 core, CPU time of the whole fit: sisma %.3f s, sklearn %.3f s, ratio %.2fx" % (cs, cp, cp / cs)
if "km" in base: print("\n" + cpu_line)
s2 = pick(kind="kmeans", tool="sisma", ranks="2")
if s2 and "km" in base:
    print("\nk-means strong scaling 1 -> 2 ranks (Lloyd ms/iter): %.2fx" % (base["km"][0] / med(float(r["lloyd_ms"]) for r in s2)))
ref = [float(v) for v in pick(kind="pca", tool="sisma", method="exact", ranks="1")[0]["ev"].split(",")]
def err(r): return max(abs(float(v) - w) / w for v, w in zip(r["ev"].split(","), ref))
print("\n## PCA 200,000 x 256, 8 components (median fit seconds of %d runs)" % len(pick(kind="pca", tool="sisma", method="exact", ranks="1")))
print("| cores | tool | method | fit s | CPU s | max rel. error of explained variance | RSS/rank MiB |")
print("|---|---|---|---|---|---|---|")
t, cpu = {}, {}
for n in ("1", "2"):
    for tool, meths in (("sisma", ("exact", "single", "randomized", "tsqr")), ("sklearn", ("full", "randomized"))):
        for m in meths:
            rs = [r for r in pick(kind="pca", tool=tool, method=m) if cores(r) == n]
            if not rs: continue
            f = med(float(r["fit_s"]) for r in rs); t[(n, tool, m)] = f
            cpu[(n, tool, m)] = med(float(r["cpu_s"]) for r in rs)
            rss = max(int(x) for r in rs for x in r["rss_kib"].split(",")) / 1024
            print("| %s | %s | %s | %.3f | %.3f | %.1e | %.0f |" % (n, tool, m, f, cpu[(n, tool, m)], max(err(r) for r in rs), rss))
errs = {}
for (tool, m) in (("sisma", "single"), ("sklearn", "randomized")):
    rs = pick(kind="pca", tool=tool, method=m)
    if rs: errs[(tool, m)] = max(err(r) for r in rs)
for n in ("1", "2"):
    if (n, "sisma", "exact") in t:
        print("\n%s core(s): sklearn full / sisma exact = %.2fx; sklearn randomized / sisma exact = %.2fx; "
              "sklearn randomized / sisma randomized = %.2fx" % (n, t[(n, "sklearn", "full")] / t[(n, "sisma", "exact")],
              t[(n, "sklearn", "randomized")] / t[(n, "sisma", "exact")], t[(n, "sklearn", "randomized")] / t[(n, "sisma", "randomized")]))
    if (n, "sisma", "single") in t:
        print("%s core(s): sklearn randomized / sisma single = %.2fx at explained-variance error %.1e (sisma single) vs "
              "%.1e (sklearn randomized), both against sisma exact" % (n, t[(n, "sklearn", "randomized")] / t[(n, "sisma", "single")],
              errs[("sisma", "single")], errs[("sklearn", "randomized")]))
if ("1", "sisma", "single") in cpu:
    print("1 core, CPU time of the fit (steadier on a shared machine): sklearn randomized / sisma single = %.2fx, "
          "sklearn randomized / sisma exact = %.2fx, sklearn full / sisma exact = %.2fx" % (
          cpu[("1", "sklearn", "randomized")] / cpu[("1", "sisma", "single")],
          cpu[("1", "sklearn", "randomized")] / cpu[("1", "sisma", "exact")], cpu[("1", "sklearn", "full")] / cpu[("1", "sisma", "exact")]))
for m in ("exact", "single", "randomized", "tsqr"):
    if ("1", "sisma", m) in t and ("2", "sisma", m) in t:
        print("PCA %s strong scaling 1 -> 2 ranks: %.2fx" % (m, t[("1", "sisma", m)] / t[("2", "sisma", m)]))
PYEOF
echo "# done $(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg); raw lines in $OUT"
