/* Shards cover the traces exactly, chunk-aligned; global batches do not depend on the rank
 * count; the streaming reader returns the same traces as a resident read. */
#include "harness.h"

static void test_shard_cover(sm_ctx *ctx) {
  for (int64_t n = 0; n < 40; n += 3)
    for (int64_t chunk = 1; chunk < 6; chunk++)
      for (int size = 1; size <= 6; size++) {
        int64_t next = 0, maxc = 0, minc = INT64_MAX;
        for (int r = 0; r < size; r++) {
          sm_range g = sm_shard_range(n, chunk, r, size);
          CHECK_EQ_I64(g.first, next);
          if (g.count > 0 && g.first + g.count < n) CHECK_EQ_I64(g.count % chunk, 0);
          next = g.first + g.count;
          int64_t nch = (g.count + chunk - 1) / chunk;
          maxc = nch > maxc ? nch : maxc;
          minc = nch < minc ? nch : minc;
        }
        CHECK_EQ_I64(next, n);
        CHECK(maxc - minc <= 1);
      }
}

/* Sum of global batch checksums (sum of index * (k+1)) over this rank's members, reduced:
 * equal to the value computed on one rank alone. */
static void test_batches_rank_independent(sm_ctx *ctx) {
  const int64_t n = 1001, bs = 64, chunk = 7;
  sm_range mine = sm_shard_range(n, chunk, ctx->rank, ctx->size), all = {0, n};
  for (int shuffle = 0; shuffle < 2; shuffle++) {
    sm_batches *b = NULL, *ref = NULL;
    CHECK_OK(ctx, sm_batches_create(ctx, n, bs, 99, 3, shuffle, mine, &b));
    CHECK_OK(ctx, sm_batches_create(ctx, n, bs, 99, 3, shuffle, all, &ref));
    CHECK_EQ_I64(sm_batches_count(b), (n + bs - 1) / bs);
    int64_t seen = 0;
    for (int64_t k = 0; k < sm_batches_count(b); k++) {
      const int64_t *idx, *ridx;
      int64_t nl, ng, rnl, rng;
      sm_batches_get(b, k, &idx, &nl, &ng);
      int64_t sum = 0, total = 0, cnt = 0;
      for (int64_t i = 0; i < nl; i++) sum += idx[i];
      MPI_Allreduce(&sum, &total, 1, MPI_INT64_T, MPI_SUM, ctx->comm);
      MPI_Allreduce(&nl, &cnt, 1, MPI_INT64_T, MPI_SUM, ctx->comm);
      sm_batches_get(ref, k, &ridx, &rnl, &rng);
      int64_t rsum = 0;
      for (int64_t i = 0; i < rnl; i++) rsum += ridx[i];
      CHECK_EQ_I64(total, rsum);
      CHECK_EQ_I64(cnt, ng);
      CHECK_EQ_I64(ng, rng);
      seen += ng;
    }
    CHECK_EQ_I64(seen, n);
    sm_batches_destroy(&b);
    sm_batches_destroy(&ref);
  }
}

static void write_cat(sm_ctx *ctx, const char *path, int compression) {
  sm_catalog_info in = {.n_traces = 77, .n_components = 2, .n_samples = 33, .sampling_rate_hz = 10,
                        .component_order = "NZ", .chunk_traces = 4, .compression = compression};
  sm_catalog *cat = NULL;
  CHECK_OK(ctx, sm_catalog_create(ctx, path, &in, &cat));
  sm_range r = sm_catalog_shard(cat, ctx->rank, ctx->size);
  float *buf = calloc((size_t)(r.count * 66 + 1), sizeof *buf);
  for (int64_t i = 0; i < r.count * 66; i++) buf[i] = (float)((r.first * 66 + i) % 9973) * 0.25f - 7.0f;
  CHECK_OK(ctx, sm_catalog_write_traces(cat, r.first, r.count, buf));
  CHECK_OK(ctx, sm_catalog_commit(&cat));
  free(buf);
}

static void check_reader(sm_ctx *ctx, const char *path, int64_t budget) {
  sm_catalog *cat = NULL;
  CHECK_OK(ctx, sm_catalog_open(ctx, path, &cat));
  sm_range r = sm_catalog_shard(cat, ctx->rank, ctx->size);
  sm_reader *rd = NULL;
  CHECK_OK(ctx, sm_reader_create(cat, r, budget, &rd));
  if (!rd) return;
  CHECK_EQ_I64(sm_reader_resident(rd), budget == 0);
  for (int pass = 0; pass < 2; pass++) {
    int64_t first, count, expect = r.first, bad = 0;
    const float *t;
    CHECK_OK(ctx, sm_reader_rewind(rd));
    while (sm_reader_next(rd, &first, &count, &t) == SM_OK && count > 0) {
      CHECK_EQ_I64(first, expect);
      for (int64_t i = 0; i < count * 66; i++) bad += t[i] != (float)((first * 66 + i) % 9973) * 0.25f - 7.0f;
      expect = first + count;
    }
    CHECK_EQ_I64(expect, r.first + r.count);
    CHECK_EQ_I64(bad, 0);
  }
  sm_reader_destroy(&rd);
  sm_catalog_close(&cat);
}

static void test_reader(sm_ctx *ctx) {
  write_cat(ctx, "r_plain.h5", 0);
  write_cat(ctx, "r_deflate.h5", 6);
  check_reader(ctx, "r_plain.h5", 0);
  check_reader(ctx, "r_plain.h5", 4 * 66 * 4 * 2);   /* two chunks: one per buffer */
  check_reader(ctx, "r_deflate.h5", 4 * 66 * 4 * 3); /* streamed, inflated and unshuffled */
}

int main(int argc, char **argv) {
  return SM_TEST_MAIN(argc, argv, test_shard_cover, test_batches_rank_independent, test_reader);
}
