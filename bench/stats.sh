#!/usr/bin/env bash
# Statistics benchmark (one command): OLS with the full R-style summary and logistic regression on
# 1,000,000 x 16 float64, sisma at NP ranks against statsmodels OLS fit + summary,
# numpy.linalg.lstsq and scikit-learn LogisticRegression(lbfgs) with NP OpenBLAS threads, all in
# the same run on the same cores, and one read-only pass over the table at memory bandwidth;
# FITS fits on one frame, each paired with a pass (stats_fit), and the parts of a fit (stats_parts).
# Medians of REPS runs; peak RSS per rank from /usr/bin/time. Usage:
#   bash bench/stats.sh            (NP=2 REPS=5 FITS=21 ROWS=1000000 BUILD=build DIR=/tmp/sisma-bench-stats)
set -euo pipefail
cd "$(dirname "$0")/.."
NP=${NP:-2} REPS=${REPS:-5} ROWS=${ROWS:-1000000} BUILD=${BUILD:-build} DIR=${DIR:-/tmp/sisma-bench-stats}
BIN=$PWD/$BUILD/sisma
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_pml=ob1 OMPI_MCA_hwloc_base_binding_policy=none OMPI_MCA_btl_base_warn_component_unused=0
mkdir -p "$DIR"
[ -s "$DIR/t.h5" ] || /usr/bin/python3 bench/stats_data.py "$DIR/t.h5" "$ROWS"
mpicc -O2 -march=native bench/stats_bw.c -o "$DIR/stats_bw"
mpicc -O2 -std=gnu11 -Wall -Wextra -Werror -I include -I/usr/include/hdf5/openmpi bench/stats_fit.c \
  -o "$DIR/stats_fit" -L"$BUILD" -lsisma -Wl,-rpath,"$(cd "$BUILD" && pwd)" -lm
OPENBLAS_NUM_THREADS=1 mpirun -n "$NP" "$DIR/stats_bw" "$ROWS" 16 >"$DIR/bw.json"
# the fit alone, FITS times on one frame in one process, each paired with a pass over the frame
OPENBLAS_NUM_THREADS=1 mpirun -n "$NP" "$DIR/stats_fit" "$DIR/t.h5:/ols" 'y ~ .' "${FITS:-21}" >"$DIR/fit.json"
# where a fit's time goes: the pass, the Gram pass, the residual pass, the quantiles, the whole fit
mpicc -O2 -std=gnu11 -Wall -Wextra -Werror -I include -I src/stats -I/usr/include/hdf5/openmpi bench/stats_parts.c \
  -o "$DIR/stats_parts" -L"$BUILD" -lsisma -Wl,-rpath,"$(cd "$BUILD" && pwd)" -lm
OPENBLAS_NUM_THREADS=1 mpirun -n "$NP" "$DIR/stats_parts" "$DIR/t.h5:/ols" 'y ~ .' "${FITS:-21}" >"$DIR/parts.json"

run_sisma() { # run_sisma TAG ARGS...: one run, SISMA_LOG=debug timings, per-rank peak RSS
  local tag=$1 t0 t1
  shift
  t0=$(date +%s.%N)
  OPENBLAS_NUM_THREADS=1 SISMA_LOG=debug mpirun -n "$NP" sh -c \
    "/usr/bin/time -f '%M' -o $DIR/$tag.rss.\$OMPI_COMM_WORLD_RANK $BIN $*" >"$DIR/$tag.out" 2>"$DIR/$tag.err"
  t1=$(date +%s.%N)
  echo "wall $(echo "$t1 - $t0" | bc) $(grep -ho "timing: .*" "$DIR/$tag.out" "$DIR/$tag.err" | tr -d ',')" >>"$DIR/$tag.log"
  cat "$DIR"/$tag.rss.* >>"$DIR/$tag.rssall"
}
# Interleaved: each repetition runs sisma lm, sisma glm and the Python peers once, so that the
# load of a shared machine falls on all of them alike.
rm -f "$DIR"/*.log "$DIR"/*.rssall "$DIR/peers.jsonl"
uptime | sed 's/^/load before: /' >"$DIR/load.txt"
for r in $(seq "$REPS"); do
  run_sisma lm "lm --data $DIR/t.h5:/ols 'y ~ .' --output $DIR/lm.json"
  run_sisma glm "glm --family binomial --data $DIR/t.h5:/logit 'label ~ .' --output $DIR/glm.json"
  OPENBLAS_NUM_THREADS=$NP /usr/bin/time -f '%M' -a -o "$DIR/peers.rssall" /usr/bin/python3 bench/stats_peers.py "$DIR/t.h5" 1 1e-8 >>"$DIR/peers.jsonl"
done
uptime | sed 's/^/load after: /' >>"$DIR/load.txt"
for t in lm glm peers; do sort -n "$DIR/$t.rssall" | tail -1 >"$DIR/$t.rss"; done

/usr/bin/python3 - "$DIR" "$NP" "$REPS" <<'PY'
import json, re, statistics, sys
d, np_, reps = sys.argv[1], sys.argv[2], sys.argv[3]
def med(tag, key, fn=statistics.median):
    vals = []
    for line in open(f"{d}/{tag}.log"):
        m = re.search(key + r" ([0-9.]+) s", line) if key != "wall" else re.match(r"wall ([0-9.]+)", line)
        if m: vals.append(float(m.group(1)))
    return fn(vals)
bw = json.load(open(f"{d}/bw.json"))
runs = [json.loads(l) for l in open(f"{d}/peers.jsonl")]
keys = ("statsmodels_ols_fit_summary_s", "numpy_lstsq_s", "sklearn_lbfgs_s", "sklearn_iterations")
pe = {k: statistics.median(r[k] for r in runs) for k in keys}
pmin = {k: min(r[k] for r in runs) for k in keys}
lm_coef_diff = None
lm_fit, lm_frame, lm_read, lm_wall = med("lm", "fit \\+ summary"), med("lm", "model frame"), med("lm", "read table"), med("lm", "wall")
glm_fit, glm_wall = med("glm", "fit \\+ summary"), med("glm", "wall")
rss = lambda t: int(open(f"{d}/{t}").read().split()[0]) / 1024
lm_min, glm_min = med("lm", "fit \\+ summary", min), med("glm", "fit \\+ summary", min)
print(f"| what | time (median of {reps}) | ratio of medians | best run | ratio of best runs |")
print("|---|---|---|---|---|")
fit = json.load(open(f"{d}/fit.json"))
print(f"| one read-only pass over the 1e6 x 16 float64 table ({np_} ranks, {bw['gb_per_s']} GB/s; stats_bw) | {bw['one_pass_s']*1e3:.1f} ms | 1 | | |")
print(f"| one read-only pass over the model frame's X and y ({fit['pass_bytes']/1e6:.0f} MB, {np_} ranks, {fit['pass_bytes']/fit['pass_median_s']/1e9:.1f} GB/s), each paired with a fit below | {fit['pass_median_s']*1e3:.1f} ms | 1 | {fit['pass_best_s']*1e3:.1f} ms | |")
print(f"| sisma lm: fit + full summary ({np_} ranks) | {lm_fit*1e3:.0f} ms | {lm_fit/bw['one_pass_s']:.1f}x the table pass | {lm_min*1e3:.0f} ms | {lm_min/bw['one_pass_s']:.1f}x the table pass |")
print(f"| sisma lm: fit + full summary, {fit['fits']} fits on one frame in one process ({np_} ranks) | {fit['fit_median_s']*1e3:.1f} ms | {fit['fit_median_s']/bw['one_pass_s']:.1f}x the table pass; median of the per-pair ratios to the frame pass {fit['ratio_median']:.2f}x | {fit['fit_best_s']*1e3:.1f} ms | {fit['fit_best_s']/bw['one_pass_s']:.1f}x the table pass, {fit['fit_best_s']/fit['pass_best_s']:.2f}x the best frame pass |")
print(f"| the same: thread CPU time of a fit, busiest rank (median) | {fit['fit_cpu_median_s']*1e3:.1f} ms | | | |")
print(f"| sisma lm: model frame (formula, na.omit, X) | {lm_frame*1e3:.0f} ms | | | |")
print(f"| sisma lm: table read (HDF5, 128 MB) | {lm_read*1e3:.0f} ms | | | |")
print(f"| sisma lm end to end (mpirun wall) | {lm_wall:.2f} s | | | |")
print(f"| statsmodels OLS fit + summary ({np_} threads) | {pe['statsmodels_ols_fit_summary_s']*1e3:.0f} ms | sisma fit+summary {pe['statsmodels_ols_fit_summary_s']/lm_fit:.1f}x faster | {pmin['statsmodels_ols_fit_summary_s']*1e3:.0f} ms | {pmin['statsmodels_ols_fit_summary_s']/lm_min:.1f}x |")
print(f"| numpy.linalg.lstsq ({np_} threads) | {pe['numpy_lstsq_s']*1e3:.0f} ms | sisma fit+summary {pe['numpy_lstsq_s']/lm_fit:.1f}x faster | {pmin['numpy_lstsq_s']*1e3:.0f} ms | {pmin['numpy_lstsq_s']/lm_min:.1f}x |")
print(f"| sisma glm binomial: IRLS fit + summary ({np_} ranks) | {glm_fit*1e3:.0f} ms | | {glm_min*1e3:.0f} ms | |")
print(f"| sisma glm end to end (mpirun wall) | {glm_wall:.2f} s | | | |")
print(f"| scikit-learn LogisticRegression lbfgs, tol 1e-8 ({np_} threads, {pe['sklearn_iterations']:.0f} iterations) | {pe['sklearn_lbfgs_s']*1e3:.0f} ms | sisma IRLS {pe['sklearn_lbfgs_s']/glm_fit:.2f}x faster | {pmin['sklearn_lbfgs_s']*1e3:.0f} ms | {pmin['sklearn_lbfgs_s']/glm_min:.2f}x |")
lmj, glj = json.load(open(f"{d}/lm.json")), json.load(open(f"{d}/glm.json"))
dl = max(abs(c["estimate"] - v) for c, v in zip(lmj["coefficients"], runs[-1]["ols_coef"]))
dg = max(abs(c["estimate"] - v) for c, v in zip(glj["coefficients"], runs[-1]["logit_coef"]))
print(f"\nAgreement: max |coefficient difference| sisma lm vs statsmodels {dl:.1e}; sisma glm vs scikit-learn {dg:.1e}.")
pt = json.load(open(f"{d}/parts.json"))
print("\nParts of a fit (stats_parts, medians / best of " + str(pt["fits"]) + ", ms): " + ", ".join(
    f"{k} {pt[k + '_median_s']*1e3:.2f} / {pt[k + '_best_s']*1e3:.2f}" for k in ("pass", "gram", "residuals", "quantiles", "fit")) + ".")
print(open(f"{d}/load.txt").read().strip().replace("\n", "; "))
print(f"\nPeak RSS: sisma lm {rss('lm.rss'):.0f} MiB per rank, glm {rss('glm.rss'):.0f} MiB per rank; Python peers process {rss('peers.rss'):.0f} MiB.")
PY
