/* Scalar model inputs (train.inputs) at 1-4 ranks: the spec parser and its errors; the
 * standardisation fitted on the train split equals the serial mean and standard deviation of
 * the known column values and component scales, at any rank count (chunks of 6 traces spread
 * unevenly over the ranks); a NaN in an input column stops training on every rank with a
 * message naming the trace. */
#include <unistd.h>

#include "harness.h"
#include "nn/internal.h"
#include "sisma/job.h"

#define N 40
#define C 3
#define T 200
#define NAN_TRACE 23

static double mag(int64_t g) { return 2 + 0.05 * (double)g; }
static double dist(int64_t g) { return 10 + 3 * (double)g; }
static float wave(int64_t g, int c, int64_t s) { return (float)((1 + g + c) * sin(0.1 * (double)s)); }
static int split_of(int64_t g) { return g % 5 < 3 ? 0 : g % 5 == 3 ? 1 : 2; }

/* A catalog of N traces: label a/b, split, P at sample 50, mag (NaN at NAN_TRACE if with_nan), dist. */
static void make_catalog(sm_ctx *ctx, const char *path, int with_nan) {
  sm_catalog_info in = {.n_traces = N,
                        .n_components = C,
                        .n_samples = T,
                        .sampling_rate_hz = 100,
                        .component_order = "ZNE",
                        .chunk_traces = 6};
  sm_catalog *cat = NULL;
  CHECK_OK(ctx, sm_catalog_create(ctx, path, &in, &cat));
  if (!cat) return;
  sm_range r = sm_catalog_shard(cat, ctx->rank, ctx->size);
  float *buf = calloc((size_t)(r.count * C * T + 1), sizeof *buf);
  double *m = calloc((size_t)r.count + 1, sizeof *m), *d = calloc((size_t)r.count + 1, sizeof *d);
  double *p = calloc((size_t)r.count + 1, sizeof *p);
  const char **lab = calloc((size_t)r.count + 1, sizeof *lab), **spl = calloc((size_t)r.count + 1, sizeof *spl);
  static const char *const splits[] = {"train", "dev", "test"};
  for (int64_t i = 0; i < r.count; i++) {
    int64_t g = r.first + i;
    for (int c = 0; c < C; c++)
      for (int64_t s = 0; s < T; s++)
        buf[(i * C + c) * T + s] = wave(g, c, s);
    m[i] = with_nan && g == NAN_TRACE ? NAN : mag(g), d[i] = dist(g), p[i] = 50;
    lab[i] = g % 2 ? "b" : "a", spl[i] = splits[split_of(g)];
  }
  CHECK_OK(ctx, sm_catalog_write_traces(cat, r.first, r.count, buf));
  const char *num[] = {"mag", "dist", "trace_p_arrival_sample"};
  const double *vals[] = {m, d, p};
  for (int k = 0; k < 3; k++) {
    CHECK_OK(ctx, sm_catalog_column_create(cat, num[k], SM_COL_F64, 0));
    CHECK_OK(ctx, sm_catalog_write_f64(cat, num[k], r.first, r.count, vals[k]));
  }
  CHECK_OK(ctx, sm_catalog_put_strings(cat, "label", r.first, r.count, lab));
  CHECK_OK(ctx, sm_catalog_put_strings(cat, "split", r.first, r.count, spl));
  CHECK_OK(ctx, sm_catalog_commit(&cat));
  free(buf), free(m), free(d), free(p), free(lab), free(spl);
}

static void test_parse(sm_ctx *ctx) {
  sm__nn_inputs in;
  CHECK_OK(ctx, sm__nn_inputs_parse(ctx, "meta=mag log10(dist), amp=log10_scale", C, SM_NN_NORM_MAX, &in));
  CHECK_EQ_I64(in.n, 2);
  CHECK_EQ_I64(in.width[0], 2);
  CHECK_EQ_I64(in.width[1], C);
  CHECK_EQ_I64(in.total, 2 + C);
  CHECK_EQ_I64(in.ncol, 2);
  CHECK_STR(in.feat[1].column, "dist");
  CHECK(in.feat[1].log10 && !in.feat[0].log10 && sm__nn_inputs_scales(&in));
  const char *bad[][2] = {{"mag", "expected NAME=FEATURE"},
                          {"meta=", "group meta has no features"},
                          {"a=mag, a=dist", "two groups are named a"},
                          {"m=log10(dist", "expected COLUMN, log10(COLUMN) or log10_scale"},
                          {"m=log10()", "expected COLUMN, log10(COLUMN) or log10_scale"},
                          {"two words=mag", "is not a name"}};
  for (int i = 0; i < 6; i++) {
    CHECK_STATUS(ctx, sm__nn_inputs_parse(ctx, bad[i][0], C, SM_NN_NORM_MAX, &in), SM_ERR_CONFIG);
    CHECK(strstr(ctx->err_msg, bad[i][1]) != NULL);
  }
}

/* Load the shard with inputs and fit; compare with the serial statistics over the train rows. */
static void test_fit(sm_ctx *ctx) {
  char path[4096];
  snprintf(path, sizeof path, "%s/inputs.h5", sm_test_dir());
  make_catalog(ctx, path, 0);
  sm__nn_inputs in;
  CHECK_OK(ctx, sm__nn_inputs_parse(ctx, "meta=mag log10(dist), amp=log10_scale", C, SM_NN_NORM_MAX, &in));
  sm__nn_data_conf dc = {.target = "label",
                         .classify = 1,
                         .classes = "a,b",
                         .split_column = "split",
                         .window = 100,
                         .p_offset = 20,
                         .inputs = &in};
  sm__nn_aug aug = {.normalize = SM_NN_NORM_MAX};
  sm_catalog *cat = NULL;
  sm__nn_data d;
  CHECK_OK(ctx, sm_catalog_open(ctx, path, &cat));
  CHECK_OK(ctx, sm__nn_data_load(ctx, cat, &dc, 0, &d));
  sm_catalog_close(&cat);
  CHECK_OK(ctx, sm__nn_inputs_fit(ctx, &d, &aug, &in));
  double sum[2 + C] = {0}, ss[2 + C] = {0}, n = 0, v[N][2 + C];
  for (int64_t g = 0; g < N; g++) {
    double peak = 0; /* the window is samples [30, 130) */
    for (int64_t s = 30; s < 130; s++)
      peak = fmax(peak, fabs(sin(0.1 * (double)s)));
    v[g][0] = mag(g), v[g][1] = log10(dist(g));
    for (int c = 0; c < C; c++)
      v[g][2 + c] = log10((double)(float)((1 + g + c) * peak));
    for (int k = 0; split_of(g) == 0 && k < 2 + C; k++)
      sum[k] += v[g][k];
    n += split_of(g) == 0;
  }
  for (int64_t g = 0; g < N; g++)
    for (int k = 0; split_of(g) == 0 && k < 2 + C; k++)
      ss[k] += (v[g][k] - sum[k] / n) * (v[g][k] - sum[k] / n);
  for (int k = 0; k < 2 + C; k++) {
    CHECK_NEAR(in.mean[k], sum[k] / n, 1e-6);
    CHECK_NEAR(in.sd[k], sqrt(ss[k] / n), 1e-6);
  }
  sm__nn_data_free(&d);
}

/* A NaN in an input column: training stops on every rank, naming the trace. */
static void test_nan(sm_ctx *ctx) {
  char path[4096], job[4096];
  snprintf(path, sizeof path, "%s/inputs-nan.h5", sm_test_dir());
  snprintf(job, sizeof job, "%s/inputs-nan.yaml", sm_test_dir());
  make_catalog(ctx, path, 1);
  if (ctx->rank == 0) {
    FILE *f = fopen(job, "w");
    fprintf(f,
            "job: inputs-nan\nstages:\n  - train:\n      catalog: %s\n      output: %s.model\n"
            "      classes: a,b\n      window: 100\n      p_offset: 20\n"
            "      inputs: [meta=mag log10(dist)]\n      model: [gap, concat from=meta, dense 2]\n",
            path, path);
    fclose(f);
  }
  MPI_Barrier(ctx->comm);
  sm_job *j = NULL;
  CHECK_OK(ctx, sm_job_load(ctx, job, 0, NULL, &j));
  if (!j) return;
  CHECK_STATUS(ctx, sm_job_run(ctx, j, 0, 0), SM_ERR_DATA);
  CHECK(strstr(ctx->err_msg, "trace 23: input meta: mag is missing (NaN)") != NULL);
  sm_job_destroy(&j);
}

int main(int argc, char **argv) { return SM_TEST_MAIN(argc, argv, test_parse, test_fit, test_nan); }
