#!/usr/bin/env bash
# The pca and kmeans stages end to end at NP ranks: jobs/norcia.yaml (fault plane of the Norcia
# hypocentres, k-means of the day's events) and a tiny twin of jobs/waveforms-pca-kmeans.yaml
# (plus mini-batch k-means streaming the catalog),
# with results identical to a 1-rank run; errors that name the column; an injected failure on one
# rank that every rank survives with no result file left behind.
set -uo pipefail
NP=${1:-2}
RUN="$MPIEXEC -n $NP $SISMA_BIN"
ONE="$MPIEXEC -n 1 $SISMA_BIN"
source "$(dirname "$0")/../lib.sh"
same() { # same FILE_A FILE_B DATASET: identical values
  cmp -s <(h5dump -d "$3" -y -w 0 "$1" | sed 1,6d) <(h5dump -d "$3" -y -w 0 "$2" | sed 1,6d)
}
CSV=$SISMA_DATA/epos_egu2025_norcia/seismic_catalog_with_latlon_2016_instance.csv
[ -f "$CSV" ] || { echo "no test data at $SISMA_DATA"; exit 77; }
rm -rf out out1 && mkdir -p out
JOB=$SISMA_SOURCE_DIR/jobs/norcia.yaml
log=$($RUN run $JOB --set output_dir=out --set pca.data=$CSV --set kmeans.data=$CSV 2>&1)
check "norcia job runs" test $? -eq 0
check "fault plane strikes NNW-SSE and dips WSW" \
  grep -qE "strike 1[5-7][0-9]\.[0-9] deg, dip [0-9.]+ deg towards 2[3-6][0-9]\.[0-9] deg \((WSW|SW|W)\)" <<<"$log"
check "one progress line per Lloyd iteration" grep -qE "^iteration 01 \(inertia: [0-9]+\.[0-9]{2}\)$" <<<"$log"
$ONE run $JOB --set output_dir=out1 --set pca.data=$CSV --set kmeans.data=$CSV >/dev/null 2>&1
for d in components explained_variance scores; do
  check "pca /$d identical to 1 rank" same out/hypocentres-pca.h5 out1/hypocentres-pca.h5 /$d
done
for d in centers labels distance sizes; do
  check "kmeans /$d identical to 1 rank" same out/hypocentres-kmeans.h5 out1/hypocentres-kmeans.h5 /$d
done

# whole waveforms -> randomized PCA -> k-means of the scores (the scores read back as a table)
cat > wf.yaml <<'YAML'
output_dir: out
stages:
  - synth: {output: wf.h5, traces: 60, samples: 400, rate: 100, seed: 3}
  - pca: {data: wf.h5, normalize_rows: peak, components: 4, method: randomized, output: wf-pca.h5}
  - kmeans: {data: wf-pca.h5:/scores, k: 3, init: "k-means||", n_init: 2, output: wf-km.h5}
  - kmeans: {data: wf.h5, normalize_rows: peak, k: 3, batch_size: 16, max_iter: 4, output: wf-mb.h5}
YAML
check "waveform pipeline runs" $RUN run wf.yaml
sed 's/output_dir: out/output_dir: out1/' wf.yaml > wf1.yaml
$ONE run wf1.yaml >/dev/null 2>&1
check "waveform scores identical to 1 rank" same out/wf-pca.h5 out1/wf-pca.h5 /scores
check "waveform labels identical to 1 rank" same out/wf-km.h5 out1/wf-km.h5 /labels
check "streamed mini-batch centres identical to 1 rank" same out/wf-mb.h5 out1/wf-mb.h5 /centers
check "streamed mini-batch labels identical to 1 rank" same out/wf-mb.h5 out1/wf-mb.h5 /labels

# sub-commands with bare flags, exact PCA on a grid, initial centres from a file
check "sisma pca --whiten on a 1x1 grid" $RUN pca --data "$CSV" --columns "latitude,longitude,z(km)" \
  --filter "z(km):0.001:30" --components 2 --method exact --grid 1x1 --whiten -o out/w.h5
printf 'e,n,z\n0,0,8\n5,5,8\n-5,20,8\n5,-12,8\n' > c0.csv
check "sisma kmeans --init FILE" $RUN kmeans --data "$CSV" --columns "latitude,longitude,z(km)" --geographic \
  --filter "latitude:42.33:43.33,longitude:12.61:13.61,z(km):0.001:30" --k 4 --init c0.csv -o out/k.h5

expect_fail "unknown column names the near match" 'did you mean.*latitude' \
  $RUN pca --data "$CSV" --columns "latitud,longitude" -o out/x.h5
expect_fail "missing values name the row and column" 'row [0-9]+, column magnitude|no rows|missing' \
  $RUN pca --data "$CSV" --columns "magnitude,latitude" --filter "magnitude:1000:" -o out/x.h5
expect_fail "grid larger than the job" 'grid 5x5 needs 25 ranks' \
  $RUN pca --data "$CSV" --columns "latitude,longitude" --method exact --grid 5x5 -o out/x.h5
last=$((NP - 1))
expect_fail "failure on one rank reaches every rank" "injected fault at unsupervised_load" \
  env SISMA_FAULT=unsupervised_load:$last $RUN kmeans --data "$CSV" --columns "latitude,longitude" --k 2 -o out/f.h5
check "no result left after the failure" test ! -e out/f.h5 -a -z "$(ls -A out | grep partial)"
echo "$fails failure(s)"
exit $((fails > 0))
