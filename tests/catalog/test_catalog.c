/* Catalog v1: collective create/write/read of traces and columns at any rank count, with and
 * without compression; temporary names and commit; clean errors for bad files and columns. */
#include <unistd.h>

#include "harness.h"

#define C 3
#define T 50

static float value(int64_t trace, int c, int64_t s) { return (float)trace * 1000.0f + (float)c * 100.0f + (float)s * 0.5f; }

/* Write n traces from the writer's shards; returns the committed path. */
static void make_catalog(sm_ctx *ctx, const char *path, int64_t n, int64_t chunk, int compression) {
  sm_catalog_info in = {.n_traces = n, .n_components = C, .n_samples = T, .sampling_rate_hz = 100,
                        .component_order = "ZNE", .chunk_traces = chunk, .compression = compression};
  sm_catalog *cat = NULL;
  CHECK_OK(ctx, sm_catalog_create(ctx, path, &in, &cat));
  if (!cat) return;
  sm_range r = sm_catalog_shard(cat, ctx->rank, ctx->size);
  float *buf = calloc((size_t)(r.count * C * T + 1), sizeof *buf);
  double *mag = calloc((size_t)r.count + 1, sizeof *mag);
  const char **names = calloc((size_t)r.count + 1, sizeof *names);
  char(*store)[32] = calloc((size_t)r.count + 1, sizeof *store);
  for (int64_t i = 0; i < r.count; i++) {
    int64_t g = r.first + i;
    for (int c = 0; c < C; c++)
      for (int s = 0; s < T; s++) buf[(i * C + c) * T + s] = value(g, c, s);
    mag[i] = g % 5 == 0 ? NAN : 0.1 * (double)g;
    snprintf(store[i], sizeof store[i], "trace_%lld", (long long)g);
    names[i] = store[i];
  }
  CHECK_OK(ctx, sm_catalog_write_traces(cat, r.first, r.count, buf));
  CHECK_OK(ctx, sm_catalog_column_create(cat, "source_magnitude", SM_COL_F64, 0));
  CHECK_OK(ctx, sm_catalog_write_f64(cat, "source_magnitude", r.first, r.count, mag));
  CHECK_OK(ctx, sm_catalog_put_strings(cat, "trace_name", r.first, r.count, names));
  CHECK_OK(ctx, sm_catalog_set_provenance(cat, "test_catalog", "job: test\n"));
  CHECK_OK(ctx, sm_catalog_commit(&cat));
  CHECK(cat == NULL);
  free(buf);
  free(mag);
  free(names);
  free(store);
}

/* Read back with a decomposition different from the writer's. */
static void verify_catalog(sm_ctx *ctx, const char *path, int64_t n) {
  sm_catalog *cat = NULL;
  CHECK_OK(ctx, sm_catalog_open(ctx, path, &cat));
  if (!cat) return;
  const sm_catalog_info *in = sm_catalog_get_info(cat);
  CHECK_EQ_I64(in->n_traces, n);
  CHECK_EQ_I64(in->n_components, C);
  CHECK_EQ_I64(in->n_samples, T);
  CHECK_STR(in->component_order, "ZNE");
  /* rank r reads every size-th trace block from the end: a different pattern from the writer */
  int64_t per = (n + ctx->size - 1) / ctx->size, first = n - (ctx->rank + 1) * per, count = per;
  if (first < 0) count += first, first = 0;
  if (count < 0) count = 0;
  float *buf = calloc((size_t)(count * C * T + 1), sizeof *buf);
  CHECK_OK(ctx, sm_catalog_read_traces(cat, first, count, buf));
  int64_t bad = 0;
  for (int64_t i = 0; i < count; i++)
    for (int c = 0; c < C; c++)
      for (int s = 0; s < T; s++) bad += buf[(i * C + c) * T + s] != value(first + i, c, s);
  CHECK_EQ_I64(bad, 0);
  double *mag = calloc((size_t)count + 1, sizeof *mag);
  CHECK_OK(ctx, sm_catalog_read_f64(cat, "source_magnitude", first, count, mag));
  for (int64_t i = 0; i < count; i++) {
    int64_t g = first + i;
    if (g % 5 == 0) CHECK(isnan(mag[i]));
    else CHECK_NEAR(mag[i], 0.1 * (double)g, 0);
  }
  int w = 0;
  CHECK_OK(ctx, sm_catalog_column_info(cat, "trace_name", NULL, &w));
  char *names = calloc((size_t)(count * w + 1), 1);
  CHECK_OK(ctx, sm_catalog_read_str(cat, "trace_name", first, count, names));
  for (int64_t i = 0; i < count; i++) {
    char want[32], got[64];
    snprintf(want, sizeof want, "trace_%lld", (long long)(first + i));
    sm_catalog_str_at(names, w, i, got, sizeof got);
    CHECK_STR(got, want);
  }
  /* a list read in scrambled order */
  int64_t idx[4] = {n - 1, 0, n / 2, n / 3};
  int64_t m = ctx->rank % 2 == 0 ? 4 : 0;
  float *lb = calloc(4 * C * T, sizeof *lb);
  CHECK_OK(ctx, sm_catalog_read_trace_list(cat, m, idx, lb));
  for (int64_t k = 0; k < m; k++) CHECK(lb[(k * C + 2) * T + 7] == value(idx[k], 2, 7));
  char attr[64];
  CHECK_OK(ctx, sm_catalog_get_attr(cat, "created_by", attr, sizeof attr));
  CHECK_STR(attr, "test_catalog");
  sm_catalog_close(&cat);
  free(buf);
  free(mag);
  free(names);
  free(lb);
}

static void test_roundtrip_plain(sm_ctx *ctx) {
  make_catalog(ctx, "plain.h5", 103, 4, 0);
  verify_catalog(ctx, "plain.h5", 103);
}

static void test_roundtrip_deflate(sm_ctx *ctx) {
  make_catalog(ctx, "deflate.h5", 57, 5, 4);
  verify_catalog(ctx, "deflate.h5", 57);
}

/* More ranks than traces (and than chunks): empty shards still take part. */
static void test_tiny(sm_ctx *ctx) {
  make_catalog(ctx, "tiny.h5", 2, 1, 0);
  verify_catalog(ctx, "tiny.h5", 2);
}

static void test_errors(sm_ctx *ctx) {
  sm_catalog *cat = NULL;
  CHECK_STATUS(ctx, sm_catalog_open(ctx, "does-not-exist.h5", &cat), SM_ERR_IO);
  CHECK(strstr(ctx->err_msg, "does-not-exist.h5") != NULL);
  if (ctx->rank == 0) {
    FILE *f = fopen("not-hdf5.h5", "w");
    fputs("hello\n", f);
    fclose(f);
  }
  MPI_Barrier(ctx->comm);
  CHECK_STATUS(ctx, sm_catalog_open(ctx, "not-hdf5.h5", &cat), SM_ERR_FORMAT);
  CHECK(cat == NULL);
  make_catalog(ctx, "ok.h5", 10, 3, 0);
  CHECK_OK(ctx, sm_catalog_open(ctx, "ok.h5", &cat));
  double v[10];
  CHECK_STATUS(ctx, sm_catalog_read_f64(cat, "source_magnitud", 0, 0, v), SM_ERR_ARG);
  CHECK(strstr(ctx->err_msg, "did you mean \"source_magnitude\"") != NULL);
  float f[3 * 50];
  CHECK_STATUS(ctx, sm_catalog_write_traces(cat, 0, 1, f), SM_ERR_ARG); /* read-only */
  sm_catalog_close(&cat);
}

/* A failure on one rank while writing: every rank gets the error, no file is left behind. */
static void test_abandon(sm_ctx *ctx) {
  sm_catalog_info in = {.n_traces = 9, .n_components = 1, .n_samples = 4, .sampling_rate_hz = 1,
                        .component_order = "Z", .chunk_traces = 2};
  sm_catalog *cat = NULL;
  if (ctx->rank == 0) unlink("abandoned.h5");
  CHECK_OK(ctx, sm_catalog_create(ctx, "abandoned.h5", &in, &cat));
  sm_status st = ctx->rank == ctx->size - 1 ? SM_ERR(ctx, SM_ERR_DATA, "injected: NaN in trace 3") : SM_OK;
  CHECK_STATUS(ctx, sm_ctx_agree(ctx, st), SM_ERR_DATA);
  sm_catalog_close(&cat);
  MPI_Barrier(ctx->comm);
  CHECK(access("abandoned.h5", F_OK) != 0);
  CHECK(system("ls -a | grep -q 'abandoned.h5.partial'") != 0);
}

int main(int argc, char **argv) {
  return SM_TEST_MAIN(argc, argv, test_roundtrip_plain, test_roundtrip_deflate, test_tiny, test_errors, test_abandon);
}
