/* Per-trace features against the NumPy reference of dev/golden_signal.py on real STEAD traces
 * (read from SISMA_DATA; reference values in tests/signal/golden/features.txt; 1e-6 relative), and the `features` stage
 * at 1-4 ranks: the table file.h5:/features has one row per trace, every catalog column plus the features, and is
 * bit-identical to the table a single rank writes; no temporary file is left behind. */
#include <dirent.h>
#include <hdf5.h>

#include "harness.h"
#include "sisma/job.h"
#include "sisma/signal.h"
#include "sisma/synth.h"

static const char *path_of(const char *name) {
  static char buf[8][1024];
  static int k;
  k = (k + 1) % 8;
  snprintf(buf[k], sizeof buf[k], "%s/%s", sm_test_dir(), name);
  return buf[k];
}

/* Rows [first, first + n) of the STEAD sample trace `name` ([6000][3] float32, E N Z) as x [3][n]
 * in Z N E order, demeaned; 0 on success. */
static int read_stead(const char *name, int first, int n, double *x) {
  const char *data = getenv("SISMA_DATA");
  char path[1024], dset[256];
  snprintf(path, sizeof path, "%s/eqtransformer/stead_sample_2020/waveforms.hdf5", data ? data : "../shared/data");
  snprintf(dset, sizeof dset, "/earthquake/local/%s", name);
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), d = f >= 0 ? H5Dopen2(f, dset, H5P_DEFAULT) : -1;
  float *buf = malloc(sizeof(float) * 6000 * 3);
  int rc = d >= 0 && buf && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0 ? 0 : -1;
  for (int c = 0; rc == 0 && c < 3; c++) {
    double mean = 0, *row = x + c * n;
    for (int i = 0; i < n; i++)
      mean += row[i] = buf[(first + i) * 3 + (2 - c)];
    mean /= n;
    for (int i = 0; i < n; i++)
      row[i] -= mean;
  }
  if (d >= 0) H5Dclose(d);
  if (f >= 0) H5Fclose(f);
  free(buf);
  return rc;
}

static void test_golden(sm_ctx *ctx) {
  char line[256], name[64];
  FILE *f = sm_test_open_source("tests/signal/golden/features.txt", "r");
  CHECK(f != NULL);
  if (!f) return;
  sm_feature_params fp = {.noise_s = 3,
                          .signal_s = 5,
                          .ps_window_s = 2,
                          .duration_factor = 2,
                          .envelope_s = 1,
                          .fmin_hz = 0.5,
                          .fmax_hz = 20,
                          .n_bands = 3,
                          .band_hz = {{1, 5}, {5, 10}, {10, 20}},
                          .velocity = 1,
                          .z = 0};
  int traces = 0;
  while (fgets(line, sizeof line, f)) {
    int first, n;
    double fs, p, s;
    if (sscanf(line, "trace %63s %d %d %lf %lf %lf", name, &first, &n, &fs, &p, &s) != 6) continue;
    double *x = malloc(sizeof(double) * (size_t)(3 * n)), *w = malloc(sizeof(double) * (size_t)sm_feature_work(n));
    int nf = sm_feature_count(&fp, 3), rc = read_stead(name, first, n, x);
    double got[64], want[64];
    for (int k = 0; k < nf; k++)
      rc |= fscanf(f, "%lf", &want[k]) != 1;
    CHECK(rc == 0);
    CHECK_OK(ctx, sm_trace_features(ctx, &fp, x, 3, n, n, fs, p, s, got, w));
    for (int k = 0; rc == 0 && k < nf; k++) {
      char fn[64];
      sm_feature_name(&fp, "ZNE", k, fn, sizeof fn);
      double e = fabs(got[k] - want[k]) / fmax(fabs(want[k]), 1e-300);
      if (!(e <= 1e-6)) fprintf(stderr, "  %s %s: %.17g, reference %.17g\n", name, fn, got[k], want[k]);
      CHECK(e <= 1e-6);
      if (ctx->rank == 0 && traces == 0) printf("  %-18s %14.6g (relative error %.1g)\n", fn, got[k], e);
    }
    traces++;
    free(x), free(w);
  }
  fclose(f);
  CHECK(traces == 2);
}

static sm_status run(sm_ctx *ctx, const char *stage, const char *const *kv) {
  const sm_stage *s = sm_stage_find(stage);
  if (!s) return SM_ERR_INTERNAL;
  sm_config cfg;
  sm_config_init(&cfg, stage, s->keys);
  sm_status st = SM_OK;
  for (int i = 0; st == SM_OK && kv[i]; i += 2)
    st = sm_config_set(ctx, &cfg, kv[i], kv[i + 1], "test");
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) st = sm_stage_run(ctx, s, &cfg);
  sm_config_fini(&cfg);
  return st;
}

/* Every dataset of group /features of `path` concatenated as bytes, in name order. */
static size_t table_bytes(const char *path, char **out, int *ncols, hsize_t *nrows) {
  hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), g = f >= 0 ? H5Gopen2(f, "features", H5P_DEFAULT) : -1;
  size_t len = 0;
  *out = NULL, *ncols = 0, *nrows = 0;
  if (g < 0) return 0;
  H5G_info_t gi;
  H5Gget_info(g, &gi);
  for (hsize_t i = 0; i < gi.nlinks; i++) {
    char name[128];
    H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT);
    hid_t d = H5Dopen2(g, name, H5P_DEFAULT), t = H5Dget_type(d), sp = H5Dget_space(d);
    hsize_t n = 0;
    H5Sget_simple_extent_dims(sp, &n, NULL);
    *nrows = n;
    size_t sz = H5Tget_size(t) * (size_t)n;
    *out = realloc(*out, len + sz + 1);
    H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out + len);
    len += sz, (*ncols)++;
    H5Sclose(sp), H5Tclose(t), H5Dclose(d);
  }
  H5Gclose(g), H5Fclose(f);
  return len;
}

static void test_stage_ranks(sm_ctx *ctx) {
  sm_synth_params p;
  sm_synth_params_default(&p);
  p.n_traces = 40, p.n_samples = 2000, p.rate_hz = 100, p.seed = 5;
  CHECK_OK(ctx, sm_synth_write(ctx, &p, path_of("syn.h5"), 4, 0, "test", NULL));
  const char *pre[] = {"input", path_of("syn.h5"), "output", path_of("pre.h5"), NULL};
  CHECK_OK(ctx, run(ctx, "preprocess", pre));
  const char *kv[] = {"catalog", path_of("pre.h5"), "output", path_of("all.h5"), "bands", "1-5,5-15", NULL};
  CHECK_OK(ctx, run(ctx, "features", kv));
  MPI_Comm one;
  MPI_Comm_split(ctx->comm, ctx->rank == 0 ? 0 : MPI_UNDEFINED, 0, &one);
  if (one != MPI_COMM_NULL) {
    sm_ctx *self = NULL;
    CHECK_OK(ctx, sm_ctx_create(one, &self));
    const char *kv1[] = {"catalog", path_of("pre.h5"), "output", path_of("one.h5"), "bands", "1-5,5-15", NULL};
    CHECK_OK(self, run(self, "features", kv1));
    char *a = NULL, *b = NULL;
    int na, nb;
    hsize_t ra, rb;
    size_t la = table_bytes(path_of("all.h5"), &a, &na, &ra), lb = table_bytes(path_of("one.h5"), &b, &nb, &rb);
    CHECK(la > 0 && la == lb && memcmp(a, b, la) == 0);
    CHECK_EQ_I64(ra, 40);
    /* catalog columns (>= 30 from synth + preprocess) and the 3 + 8 + 2 features */
    printf("  table: %d columns x %llu rows\n", na, (unsigned long long)ra);
    CHECK(na >= 30 + 13);
    hid_t f = H5Fopen(path_of("all.h5"), H5F_ACC_RDONLY, H5P_DEFAULT);
    CHECK(H5Lexists(f, "/features/corner_freq_hz", H5P_DEFAULT) > 0);
    CHECK(H5Lexists(f, "/features/trace_name", H5P_DEFAULT) > 0);
    CHECK(H5Lexists(f, "/features/spec_ratio_5_15", H5P_DEFAULT) > 0);
    H5Fclose(f);
    free(a), free(b);
    sm_ctx_destroy(&self);
    MPI_Comm_free(&one);
    DIR *d = opendir(sm_test_dir());
    int partial = 0;
    for (struct dirent *e; d && (e = readdir(d));)
      partial += strstr(e->d_name, ".partial-") != NULL;
    if (d) closedir(d);
    CHECK_EQ_I64(partial, 0);
  }
  MPI_Barrier(ctx->comm);
  const char *bad[] = {"catalog", path_of("pre.h5"), "output", path_of("x.h5"), "fmax_hz", "80", NULL};
  sm_ctx_clear_error(ctx);
  CHECK_STATUS(ctx, run(ctx, "features", bad), SM_ERR_CONFIG);
  CHECK(strstr(ctx->err_msg, "Nyquist") != NULL);
}

int main(int argc, char **argv) { return SM_TEST_MAIN(argc, argv, test_golden, test_stage_ranks); }
