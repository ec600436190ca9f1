/* Reductions for data-parallel training.
 *
 * Deterministic mode: the ordered fold. Every rank holds partial sums for consecutive segments
 * (fixed blocks of catalog traces; rank r's blocks all precede rank r+1's because shards are
 * contiguous and chunk-aligned). The total is the left fold acc = (((0 + p0) + p1) + ...) over
 * the global segment order: rank r receives acc from r-1, adds its segments in order, passes it
 * on; the last rank broadcasts. The sequence of float additions is the same for any rank count,
 * so the result is bit-identical at 1, 2, 3 or 4 ranks. Cost: size-1 sequential hops of the
 * whole vector plus a broadcast, and no overlap with compute (docs/nn.md).
 *
 * Fast mode: gradients are summed by MPI_Iallreduce in buckets started while the backward pass
 * is still running (sm__nn_buckets), batch-norm statistics by one MPI_Allreduce. */
#include <string.h>

#include "internal.h"

#define FOLD_TAG 4242

static sm_status fold(sm_ctx *ctx, const void *part, int nseg, int64_t n, void *out, MPI_Datatype type) {
  int dbl = type == MPI_DOUBLE;
  size_t es = dbl ? sizeof(double) : sizeof(float);
  SM_CHECK(ctx, n <= INT32_MAX, SM_ERR_UNSUPPORTED, "ordered fold of %lld values: more than 2^31", (long long)n);
  if (ctx->rank > 0)
    SM_MPI(ctx, MPI_Recv(out, (int)n, type, ctx->rank - 1, FOLD_TAG, ctx->comm, MPI_STATUS_IGNORE));
  else
    memset(out, 0, (size_t)n * es);
  for (int g = 0; g < nseg; g++) {
    if (dbl) {
      double *o = out;
      const double *p = (const double *)part + (int64_t)g * n;
      for (int64_t i = 0; i < n; i++)
        o[i] += p[i];
    } else {
      float *o = out;
      const float *p = (const float *)part + (int64_t)g * n;
      for (int64_t i = 0; i < n; i++)
        o[i] += p[i];
    }
  }
  if (ctx->rank + 1 < ctx->size) SM_MPI(ctx, MPI_Send(out, (int)n, type, ctx->rank + 1, FOLD_TAG, ctx->comm));
  SM_MPI(ctx, MPI_Bcast(out, (int)n, type, ctx->size - 1, ctx->comm));
  return SM_OK;
}

sm_status sm__nn_fold_f32(sm_ctx *ctx, const float *part, int nseg, int64_t n, float *out) {
  return fold(ctx, part, nseg, n, out, MPI_FLOAT);
}
sm_status sm__nn_fold_f64(sm_ctx *ctx, const double *part, int nseg, int64_t n, double *out) {
  return fold(ctx, part, nseg, n, out, MPI_DOUBLE);
}

/* Reducers for sm_nn_batch.reduce: ud is the sm_ctx. */
sm_status sm__nn_reduce_ordered(void *ud, const double *part, int nseg, int64_t n, double *out) {
  return sm__nn_fold_f64(ud, part, nseg, n, out);
}

sm_status sm__nn_reduce_allreduce(void *ud, const double *part, int nseg, int64_t n, double *out) {
  sm_ctx *ctx = ud;
  memset(out, 0, (size_t)n * sizeof *out);
  for (int g = 0; g < nseg; g++)
    for (int64_t i = 0; i < n; i++)
      out[i] += part[(int64_t)g * n + i];
  SM_MPI(ctx, MPI_Allreduce(MPI_IN_PLACE, out, (int)n, MPI_DOUBLE, MPI_SUM, ctx->comm));
  return SM_OK;
}

/* ---- buckets: the gradient slab is final from the end backwards; each time `bucket` floats
 * have become final an MPI_Iallreduce of that range starts. A bucket holds at most a quarter of
 * the slab (but 64 KiB at least: below that a reduction costs its latency, not its bytes), so a
 * small model still overlaps its first buckets with the rest of the backward pass and only the
 * last one is left to wait for. Every layer's callback also tests the
 * reductions in flight: Open MPI progresses a non-blocking collective (its rendezvous, its
 * reduction rounds) only inside MPI calls. ---- */
void sm__nn_buckets_begin(sm__nn_buckets *bk, sm_ctx *ctx, float *grad, int64_t n, int64_t bucket) {
  int64_t most = n / 4 > 16384 ? n / 4 : 16384;
  bk->ctx = ctx, bk->grad = grad, bk->n = n, bk->bucket = bucket > 0 && bucket < most ? bucket : most;
  bk->ready = n, bk->sent = n, bk->nreq = 0, bk->status = SM_OK, bk->t_wait = 0;
}

static void launch(sm__nn_buckets *bk) {
  int64_t lo = bk->ready, len = bk->sent - lo;
  if (len <= 0 || bk->status != SM_OK) return;
  if (bk->nreq == SM_NN_MAX_BUCKETS) { /* too many in flight: finish them first */
    MPI_Waitall(bk->nreq, bk->req, MPI_STATUSES_IGNORE);
    bk->nreq = 0;
  }
  int rc = MPI_Iallreduce(MPI_IN_PLACE, bk->grad + lo, (int)len, MPI_FLOAT, MPI_SUM, bk->ctx->comm, &bk->req[bk->nreq]);
  if (rc != MPI_SUCCESS)
    bk->status = SM_ERR(bk->ctx, SM_ERR_MPI, "MPI_Iallreduce of gradient bucket failed (%d)", rc);
  else
    bk->nreq++;
  bk->sent = lo;
}

void sm__nn_buckets_ready(void *ud, int64_t off, int64_t n) {
  sm__nn_buckets *bk = ud;
  (void)n;
  bk->ready = off; /* layers finish in reverse order: [off, n_param) is final */
  if (bk->sent - bk->ready >= bk->bucket)
    launch(bk);
  else if (bk->nreq) { /* let MPI progress the buckets in flight */
    int flag;
    MPI_Testall(bk->nreq, bk->req, &flag, MPI_STATUSES_IGNORE);
    if (flag) bk->nreq = 0;
  }
}

sm_status sm__nn_buckets_end(sm__nn_buckets *bk) {
  bk->ready = 0;
  launch(bk);
  double t0 = sm_wtime();
  if (bk->nreq) MPI_Waitall(bk->nreq, bk->req, MPI_STATUSES_IGNORE);
  bk->t_wait += sm_wtime() - t0;
  bk->nreq = 0;
  return bk->status;
}
