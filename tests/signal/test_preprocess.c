/* The preprocess stage end to end at 1-4 ranks: a synthetic catalog with injected bad traces
 * (a NaN gap, an Inf sample, an all-NaN trace, a dead component, a disagreeing sampling rate)
 * goes through the EQTransformer-style chain. Checks: each bad trace gets its policy's status and
 * the counts; a kept trace equals the library chain applied by hand, bit for bit; the output of
 * all ranks equals the output of one rank (a sub-communicator of rank 0), bit for bit, streamed
 * (small memory budget, many rounds) or resident; picks and SNR columns are present and sane;
 * bad configurations fail on every rank with a clear message; fewer traces than ranks (empty
 * shards) work. */
#include <unistd.h>

#include "harness.h"
#include "signal/internal.h"
#include "sisma/job.h"
#include "sisma/signal.h"
#include "sisma/synth.h"

#define NTR 48
#define NS 2000

static const char *path_of(const char *name) {
  static char buf[8][1024];
  static int k;
  k = (k + 1) % 8;
  snprintf(buf[k], sizeof buf[k], "%s/%s", sm_test_dir(), name);
  return buf[k];
}

static sm_status run(sm_ctx *ctx, const char *const *kv, int64_t budget_mb) {
  const sm_stage *s = sm_stage_find("preprocess");
  if (!s) return SM_ERR_INTERNAL;
  sm_config cfg;
  sm_config_init(&cfg, "preprocess", s->keys);
  cfg.memory_budget_mb = budget_mb;
  sm_status st = SM_OK;
  for (int i = 0; st == SM_OK && kv[i]; i += 2)
    st = sm_config_set(ctx, &cfg, kv[i], kv[i + 1], "test");
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) st = sm_stage_run(ctx, s, &cfg);
  sm_config_fini(&cfg);
  return st;
}

/* synth.h5 (4-trace chunks), then bad.h5: the same with faults injected into traces 3..13. */
static void make_fixture(sm_ctx *ctx) {
  sm_synth_params p;
  sm_synth_params_default(&p);
  p.n_traces = NTR, p.n_samples = NS, p.rate_hz = 100, p.seed = 31;
  CHECK_OK(ctx, sm_synth_write(ctx, &p, path_of("synth.h5"), 4, 0, "test", NULL));
  sm_catalog *in = NULL, *out = NULL;
  CHECK_OK(ctx, sm_catalog_open(ctx, path_of("synth.h5"), &in));
  sm_catalog_info info = *sm_catalog_get_info(in);
  sm_range r = sm_catalog_shard(in, ctx->rank, ctx->size);
  float *w = malloc(sizeof(float) * (size_t)((r.count ? r.count : 1) * 3 * NS));
  double *rate = malloc(sizeof(double) * (size_t)(r.count ? r.count : 1));
  CHECK_OK(ctx, sm_catalog_read_traces(in, r.first, r.count, w));
  CHECK_OK(ctx, sm_catalog_read_f64(in, "trace_sampling_rate_hz", r.first, r.count, rate));
  for (int64_t i = r.first; i < r.first + r.count; i++) {
    float *t = w + (i - r.first) * 3 * NS;
    if (i == 3)
      for (int k = 900; k < 960; k++)
        t[NS + k] = NAN; /* a gap in N */
    if (i == 5) t[2 * NS + 10] = INFINITY;
    if (i == 7)
      for (int k = 0; k < 3 * NS; k++)
        t[k] = NAN;
    if (i == 11)
      for (int k = 0; k < NS; k++)
        t[2 * NS + k] = 0; /* dead E */
    if (i == 13) rate[i - r.first] = 50;
  }
  CHECK_OK(ctx, sm_catalog_create(ctx, path_of("bad.h5"), &info, &out));
  CHECK_OK(ctx, sm_catalog_write_traces(out, r.first, r.count, w));
  CHECK_OK(ctx,
           sm__copy_columns(in, out, r, 1, info.sampling_rate_hz, (const char *const[]){"trace_sampling_rate", NULL}));
  CHECK_OK(ctx, sm_catalog_column_create(out, "trace_sampling_rate_hz", SM_COL_F64, 0));
  CHECK_OK(ctx, sm_catalog_write_f64(out, "trace_sampling_rate_hz", r.first, r.count, rate));
  CHECK_OK(ctx, sm_catalog_commit(&out));
  sm_catalog_close(&in);
  free(w), free(rate);
}

static const char *CHAIN = "demean,taper max_percentage=0.05,bandpass freqmin=1 freqmax=45 corners=4 zerophase=true,"
                           "resample rate=50,normalize type=peak";

static sm_status run_to(sm_ctx *ctx, const char *out, int64_t budget_mb) {
  const char *kv[] = {"input", path_of("bad.h5"), "output",      path_of(out), "chain",
                      CHAIN,   "nan_policy",      "interpolate", NULL};
  return run(ctx, kv, budget_mb);
}

/* Everything of catalog `path` read on this rank: waveforms and every column as bytes. */
typedef struct {
  sm_catalog_info info;
  float *w;
  int ncol;
  char names[64][SM_COLUMN_NAME_MAX];
  char *col[64];
  size_t col_bytes[64];
} whole;

static void read_whole(sm_ctx *self, const char *path, whole *h) {
  sm_catalog *c = NULL;
  memset(h, 0, sizeof *h);
  CHECK_OK(self, sm_catalog_open(self, path, &c));
  if (!c) return;
  h->info = *sm_catalog_get_info(c);
  int64_t n = h->info.n_traces;
  h->w = malloc(sizeof(float) * (size_t)(n * h->info.n_components * h->info.n_samples));
  CHECK_OK(self, sm_catalog_read_traces(c, 0, n, h->w));
  h->ncol = sm_catalog_column_count(c);
  for (int i = 0; i < h->ncol && i < 64; i++) {
    sm_col_type t;
    int width;
    snprintf(h->names[i], SM_COLUMN_NAME_MAX, "%s", sm_catalog_column_name(c, i));
    CHECK_OK(self, sm_catalog_column_info(c, h->names[i], &t, &width));
    h->col_bytes[i] = (size_t)n * (t == SM_COL_STR ? (size_t)width : 8);
    h->col[i] = malloc(h->col_bytes[i]);
    if (t == SM_COL_STR)
      CHECK_OK(self, sm_catalog_read_str(c, h->names[i], 0, n, h->col[i]));
    else if (t == SM_COL_F64)
      CHECK_OK(self, sm_catalog_read_f64(c, h->names[i], 0, n, (double *)h->col[i]));
    else
      CHECK_OK(self, sm_catalog_read_i64(c, h->names[i], 0, n, (int64_t *)h->col[i]));
  }
  sm_catalog_close(&c);
}

static void free_whole(whole *h) {
  free(h->w);
  for (int i = 0; i < h->ncol && i < 64; i++)
    free(h->col[i]);
}

static const char *col(const whole *h, const char *name) {
  for (int i = 0; i < h->ncol; i++)
    if (!strcmp(h->names[i], name)) return h->col[i];
  return NULL;
}

/* a and b identical: shape, waveform bits, every column's bytes. */
static void check_same(const whole *a, const whole *b) {
  CHECK_EQ_I64(a->info.n_traces, b->info.n_traces);
  CHECK_EQ_I64(a->info.n_samples, b->info.n_samples);
  CHECK_EQ_I64(a->ncol, b->ncol);
  size_t wb = sizeof(float) * (size_t)(a->info.n_traces * a->info.n_components * a->info.n_samples);
  CHECK(a->w && b->w && memcmp(a->w, b->w, wb) == 0);
  for (int i = 0; i < a->ncol && i < b->ncol; i++) {
    CHECK_STR(a->names[i], b->names[i]);
    CHECK(a->col_bytes[i] == b->col_bytes[i] && memcmp(a->col[i], b->col[i], a->col_bytes[i]) == 0);
  }
}

static sm_ctx *g_self; /* rank 0 alone (NULL on the other ranks) */

static void test_rank_counts(sm_ctx *ctx) {
  make_fixture(ctx);
  CHECK_OK(ctx, run_to(ctx, "all_streamed.h5", 1)); /* 1 MiB: several rounds per rank */
  CHECK_OK(ctx, run_to(ctx, "all_resident.h5", 0));
  MPI_Barrier(ctx->comm);
  if (g_self) CHECK_OK(g_self, run_to(g_self, "one.h5", 0));
  MPI_Barrier(ctx->comm);
  if (!g_self) return;
  whole one, st, rs;
  read_whole(g_self, path_of("one.h5"), &one);
  read_whole(g_self, path_of("all_streamed.h5"), &st);
  read_whole(g_self, path_of("all_resident.h5"), &rs);
  check_same(&one, &st);
  check_same(&one, &rs);
  CHECK_EQ_I64(one.info.n_samples, NS / 2);
  CHECK_NEAR(one.info.sampling_rate_hz, 50, 0);
  /* statuses by policy: NaN gap interpolated (kept), Inf rejected, all-NaN empty, dead E flat, rate */
  const char *s = col(&one, "preprocess_status");
  int sw = 1;
  for (int i = 0; i < one.ncol; i++)
    if (!strcmp(one.names[i], "preprocess_status")) sw = (int)(one.col_bytes[i] / NTR);
  const char *want[NTR];
  for (int i = 0; i < NTR; i++)
    want[i] = "ok";
  want[5] = "inf", want[7] = "empty", want[11] = "flat", want[13] = "rate";
  for (int i = 0; s && i < NTR; i++) {
    char v[32];
    sm_catalog_str_at(s, sw, i, v, sizeof v);
    CHECK_STR(v, want[i]);
  }
  /* picks rescaled to 50 Hz, P picks mostly near the catalog's, SNR present */
  const double *cp = (const double *)col(&one, "trace_p_arrival_sample"),
               *pp = (const double *)col(&one, "pick_p_sample");
  const double *snr = (const double *)col(&one, "snr_db_Z");
  int near = 0, made = 0, snr_ok = 0;
  for (int i = 0; cp && pp && snr && i < NTR; i++) {
    made += isfinite(pp[i]), near += isfinite(pp[i]) && fabs(pp[i] - cp[i]) <= 25;
    snr_ok += isfinite(snr[i]);
    if (!strcmp(want[i], "ok")) CHECK(cp[i] < NS / 2);
  }
  printf("  P picks: %d made, %d within 0.5 s of the catalog; %d finite SNR(Z)\n", made, near, snr_ok);
  CHECK(made >= NTR / 2 && near >= made / 2 && snr_ok >= NTR / 2);
  free_whole(&one), free_whole(&st), free_whole(&rs);
}

/* Trace 0 of the output equals the chain applied by hand to trace 0 of the input. */
static void test_matches_library(sm_ctx *ctx) {
  (void)ctx;
  if (!g_self) return;
  sm_catalog *in = NULL, *out = NULL;
  CHECK_OK(g_self, sm_catalog_open(g_self, path_of("bad.h5"), &in));
  CHECK_OK(g_self, sm_catalog_open(g_self, path_of("one.h5"), &out));
  if (!in || !out) return;
  float t[3 * NS], o[3 * NS / 2];
  CHECK_OK(g_self, sm_catalog_read_traces(in, 0, 1, t));
  CHECK_OK(g_self, sm_catalog_read_traces(out, 0, 1, o));
  sm_chain ch;
  CHECK_OK(g_self, sm_chain_parse(g_self, "test", CHAIN, NS, 100, &ch));
  double *a = malloc(sizeof(double) * (size_t)(3 * ch.max_len)), *b = malloc(sizeof(double) * (size_t)(3 * ch.max_len));
  double *w = malloc(sizeof(double) * (size_t)ch.work), *y = NULL;
  for (int c = 0; c < 3; c++)
    for (int i = 0; i < NS; i++)
      a[c * ch.max_len + i] = t[c * NS + i];
  CHECK_OK(g_self, sm_chain_apply(g_self, &ch, 1, 3, a, b, w, &y, NULL));
  int bad = 0;
  for (int c = 0; y && c < 3; c++)
    for (int i = 0; i < NS / 2; i++)
      bad += (float)y[c * ch.max_len + i] != o[c * NS / 2 + i];
  CHECK_EQ_I64(bad, 0);
  free(a), free(b), free(w);
  sm_catalog_close(&in);
  sm_catalog_close(&out);
}

static void test_bad_config(sm_ctx *ctx) {
  const char *same[] = {"input", path_of("bad.h5"), "output", path_of("bad.h5"), NULL};
  sm_ctx_clear_error(ctx);
  CHECK_STATUS(ctx, run(ctx, same, 0), SM_ERR_CONFIG);
  CHECK(strstr(ctx->err_msg, "never modified") != NULL);
  const char *step[] = {"input", path_of("bad.h5"),          "output", path_of("x.h5"),
                        "chain", "demean,bandpas freqmin=1", NULL};
  sm_ctx_clear_error(ctx);
  CHECK_STATUS(ctx, run(ctx, step, 0), SM_ERR_CONFIG);
  CHECK(strstr(ctx->err_msg, "test: preprocess.chain: unknown step 'bandpas'; did you mean \"bandpass\"") != NULL);
  const char *win[] = {"input", path_of("bad.h5"), "output", path_of("x.h5"), "sta_s", "5", "lta_s", "2", NULL};
  sm_ctx_clear_error(ctx);
  CHECK_STATUS(ctx, run(ctx, win, 0), SM_ERR_CONFIG);
  /* an injected failure on the last rank is agreed: every rank fails, no output is left */
  char fault[64];
  snprintf(fault, sizeof fault, "preprocess:%d", ctx->size - 1);
  setenv("SISMA_FAULT", fault, 1);
  sm_ctx_clear_error(ctx);
  CHECK_STATUS(ctx, run_to(ctx, "fault.h5", 0), SM_ERR_INTERNAL);
  unsetenv("SISMA_FAULT");
  MPI_Barrier(ctx->comm);
  CHECK(access(path_of("fault.h5"), F_OK) != 0);
}

/* Fewer traces than ranks: a 3-trace catalog in one chunk leaves ranks 1.. with empty shards; the
 * preprocess and features stages still succeed everywhere and cover every trace. */
static void test_empty_shards(sm_ctx *ctx) {
  sm_synth_params p;
  sm_synth_params_default(&p);
  p.n_traces = 3, p.n_samples = NS, p.rate_hz = 100, p.seed = 9;
  CHECK_OK(ctx, sm_synth_write(ctx, &p, path_of("tiny.h5"), 0, 0, "test", NULL));
  const char *kv[] = {"input", path_of("tiny.h5"), "output", path_of("tiny_pre.h5"), NULL};
  CHECK_OK(ctx, run(ctx, kv, 0));
  const sm_stage *fs = sm_stage_find("features");
  sm_config cfg;
  sm_config_init(&cfg, "features", fs->keys);
  CHECK_OK(ctx, sm_config_set(ctx, &cfg, "catalog", path_of("tiny_pre.h5"), "test"));
  CHECK_OK(ctx, sm_config_set(ctx, &cfg, "output", path_of("tiny_features.h5"), "test"));
  CHECK_OK(ctx, sm_stage_run(ctx, fs, &cfg));
  sm_config_fini(&cfg);
  sm_catalog *c = NULL;
  CHECK_OK(ctx, sm_catalog_open(ctx, path_of("tiny_pre.h5"), &c));
  if (!c) return;
  CHECK_EQ_I64(sm_catalog_get_info(c)->n_traces, 3);
  double v[3];
  CHECK_OK(ctx, sm_catalog_read_f64(c, "norm_scale_Z", 0, 3, v));
  for (int i = 0; i < 3; i++)
    CHECK(v[i] > 0); /* every trace processed (ok status, a peak scale) */
  sm_catalog_close(&c);
}

static void test_setup(sm_ctx *ctx) {
  MPI_Comm one;
  MPI_Comm_split(ctx->comm, ctx->rank == 0 ? 0 : MPI_UNDEFINED, 0, &one);
  if (one != MPI_COMM_NULL) {
    CHECK_OK(ctx, sm_ctx_create(one, &g_self));
    MPI_Comm_free(&one);
  }
}

static void test_teardown(sm_ctx *ctx) {
  (void)ctx;
  sm_ctx_destroy(&g_self);
}

int main(int argc, char **argv) {
  return SM_TEST_MAIN(argc, argv, test_setup, test_rank_counts, test_matches_library, test_bad_config, test_empty_shards, test_teardown);
}
