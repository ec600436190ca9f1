/* Data-parallel reductions at 1-4 ranks: the ordered fold equals the serial left fold bit for bit
 * whatever the rank count; a model step on a batch split over ranks (synchronised batch norm,
 * per-segment gradients folded in order) gives outputs and gradients bit-identical to one process
 * running the whole batch; the bucketed MPI_Iallreduce gives the same gradient to rounding. */
#include "harness.h"
#include "nn/internal.h"
#include "sisma/rng.h"

#define NSEG 10

static void test_fold(sm_ctx *ctx) {
  enum { N = 257 };
  static float part[NSEG][N], want[N], got[N];
  sm_rng r;
  sm_rng_init(&r, 4, 4);
  for (int g = 0; g < NSEG; g++) /* wide magnitudes so that the order of additions matters */
    for (int i = 0; i < N; i++)
      part[g][i] = (float)(sm_rng_normal(&r) * pow(10.0, (double)(i % 7) - 3 + g % 3));
  memset(want, 0, sizeof want);
  for (int g = 0; g < NSEG; g++)
    for (int i = 0; i < N; i++)
      want[i] += part[g][i];
  int g0 = NSEG * ctx->rank / ctx->size, g1 = NSEG * (ctx->rank + 1) / ctx->size;
  CHECK_OK(ctx, sm__nn_fold_f32(ctx, part[g0], g1 - g0, N, got));
  CHECK(memcmp(got, want, sizeof want) == 0);
  double dp[NSEG][3], dw[3] = {0, 0, 0}, dg[3];
  for (int g = 0; g < NSEG; g++)
    for (int i = 0; i < 3; i++)
      dp[g][i] = part[g][i] * 1e-3 + 1.0 / (g + 1), dw[i] += dp[g][i];
  CHECK_OK(ctx, sm__nn_fold_f64(ctx, dp[g0], g1 - g0, 3, dg));
  CHECK(memcmp(dg, dw, sizeof dw) == 0);
}

#define BATCH 12
#define BLOCK 3 /* samples per segment: 4 segments, split over ranks by whole segments */

static const char *desc = "conv 4 k=3, batchnorm, relu, maxpool 2, dense 6, layernorm, gelu, dense 2";

static void test_model_step(sm_ctx *ctx) {
  const int64_t C = 2, T = 16, nseg_all = BATCH / BLOCK;
  sm_model *ref = NULL, *m = NULL;
  CHECK_OK(ctx, sm_model_parse(ctx, desc, (sm_shape){C, T}, &ref));
  CHECK_OK(ctx, sm_model_parse(ctx, desc, (sm_shape){C, T}, &m));
  if (!ref || !m) return;
  CHECK_OK(ctx, sm_model_init(ctx, ref, "he", 3));
  CHECK_OK(ctx, sm_model_init(ctx, m, "he", 3));
  CHECK_OK(ctx, sm_model_reserve(ctx, ref, BATCH, (int)nseg_all));
  CHECK_OK(ctx, sm_model_reserve(ctx, m, BATCH, (int)nseg_all));
  float x[BATCH * 2 * 16], dy[BATCH * 2];
  sm_rng r;
  sm_rng_init(&r, 8, 1);
  for (int i = 0; i < BATCH * C * T; i++)
    x[i] = (float)sm_rng_normal(&r);
  for (int i = 0; i < BATCH * 2; i++)
    dy[i] = (float)sm_rng_normal(&r);
  int64_t np = sm_model_param_count(m);
  /* reference: one process, all segments */
  int64_t seg_all[BATCH / BLOCK + 1];
  for (int g = 0; g <= nseg_all; g++)
    seg_all[g] = g * BLOCK;
  sm_nn_batch b = {.n = BATCH, .nseg = (int)nseg_all, .seg = seg_all, .train = 1};
  const float *yref = NULL, *y = NULL;
  CHECK_OK(ctx, sm_model_forward(ctx, ref, &b, x, &yref));
  CHECK_OK(ctx, sm_model_backward(ctx, ref, &b, dy, NULL, NULL, NULL));
  float *gref = calloc((size_t)np, sizeof *gref), *g = calloc((size_t)np, sizeof *g);
  for (int s = 0; s < nseg_all; s++)
    for (int64_t i = 0; i < np; i++)
      gref[i] += sm_model_grads(ref, s)[i];
  /* this rank's whole segments */
  int s0 = (int)(nseg_all * ctx->rank / ctx->size), s1 = (int)(nseg_all * (ctx->rank + 1) / ctx->size);
  int64_t seg[BATCH / BLOCK + 1];
  for (int s = s0; s <= s1; s++)
    seg[s - s0] = (s - s0) * BLOCK;
  sm_nn_batch bl = {.n = (s1 - s0) * BLOCK,
                    .nseg = s1 - s0,
                    .seg = seg,
                    .train = 1,
                    .reduce = sm__nn_reduce_ordered,
                    .reduce_ud = ctx};
  CHECK_OK(ctx, sm_model_forward(ctx, m, &bl, x + s0 * BLOCK * C * T, &y));
  CHECK(bl.n == 0 || memcmp(y, yref + s0 * BLOCK * 2, (size_t)bl.n * 2 * sizeof *y) == 0);
  CHECK_OK(ctx, sm_model_backward(ctx, m, &bl, dy + s0 * BLOCK * 2, NULL, NULL, NULL));
  CHECK_OK(ctx, sm__nn_fold_f32(ctx, sm_model_grads(m, 0), s1 - s0, np, g));
  CHECK(memcmp(g, gref, (size_t)np * sizeof *g) == 0);
  CHECK(memcmp(sm_model_buffers(m), sm_model_buffers(ref), (size_t)sm_model_buffer_count(m) * 4) == 0);

  /* fast mode: one segment per rank, batch norm by allreduce, gradients by bucketed Iallreduce */
  sm_model *f = NULL;
  CHECK_OK(ctx, sm_model_parse(ctx, desc, (sm_shape){C, T}, &f));
  CHECK_OK(ctx, sm_model_init(ctx, f, "he", 3));
  CHECK_OK(ctx, sm_model_reserve(ctx, f, BATCH, 1));
  sm_nn_batch bf = {.n = bl.n, .train = 1, .reduce = sm__nn_reduce_allreduce, .reduce_ud = ctx};
  CHECK_OK(ctx, sm_model_forward(ctx, f, &bf, x + s0 * BLOCK * C * T, &y));
  sm__nn_buckets bk;
  sm__nn_buckets_begin(&bk, ctx, sm_model_grads(f, 0), np, 7); /* tiny buckets: many in flight */
  CHECK_OK(ctx, sm_model_backward(ctx, f, &bf, dy + s0 * BLOCK * 2, NULL, sm__nn_buckets_ready, &bk));
  CHECK_OK(ctx, sm__nn_buckets_end(&bk));
  double worst = 0, scale = 0;
  for (int64_t i = 0; i < np; i++)
    worst = fmax(worst, fabs(sm_model_grads(f, 0)[i] - gref[i])), scale = fmax(scale, fabs(gref[i]));
  CHECK(worst <= 1e-5 * fmax(1, scale));
  free(gref), free(g);
  sm_model_destroy(&ref), sm_model_destroy(&m), sm_model_destroy(&f);
}

int main(int argc, char **argv) { return SM_TEST_MAIN(argc, argv, test_fold, test_model_step); }
