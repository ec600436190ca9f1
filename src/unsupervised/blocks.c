/* Fixed row blocks (see internal.h), reduced by the fixed tree of src/core/blocktree.c: the reason
 * k-means and PCA give bit-identical results at 1, 2, 3 or 4 ranks. Everything here is arithmetic
 * on the global row ranges, which every rank knows after one allgather. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Rows per block: a power of two near n / 256, within [16, 512], and at least min_rows. Depends
 * on the shape only, never on the rank count. */
static int64_t block_rows(int64_t n, int64_t min_rows) {
  int64_t b = 16;
  while (b < 512 && b * 256 < n) b *= 2;
  while (b < min_rows) b *= 2;
  return b;
}

static int64_t overlap(int64_t a0, int64_t a1, int64_t b0, int64_t b1) {
  int64_t lo = a0 > b0 ? a0 : b0, hi = a1 < b1 ? a1 : b1;
  return hi > lo ? hi - lo : 0;
}

sm_status sm__exchange_rows(sm_ctx *ctx, const int64_t *have, const int64_t *need, const void *src, void *dst,
                            size_t width) {
  int p = ctx->size, me = ctx->rank;
  int *sc = calloc((size_t)p * 4, sizeof *sc);
  if (!sc) return SM_ERR(ctx, SM_ERR_NOMEM, "out of memory");
  int *sd = sc + p, *rc = sc + 2 * p, *rd = sc + 3 * p;
  int64_t soff = 0, roff = 0;
  for (int r = 0; r < p; r++) {
    /* what I send to r: need[r] ∩ have[me], in row order */
    int64_t lo = need[2 * r] > have[2 * me] ? need[2 * r] : have[2 * me];
    int64_t cnt = overlap(need[2 * r], need[2 * r] + need[2 * r + 1], have[2 * me], have[2 * me] + have[2 * me + 1]);
    sd[r] = (int)((cnt ? lo - have[2 * me] : 0) * (int64_t)width);
    sc[r] = (int)(cnt * (int64_t)width);
    int64_t rcnt = overlap(need[2 * me], need[2 * me] + need[2 * me + 1], have[2 * r], have[2 * r] + have[2 * r + 1]);
    rc[r] = (int)(rcnt * (int64_t)width);
    rd[r] = (int)roff;
    roff += rc[r];
    (void)soff;
  }
  int rc_ = MPI_Alltoallv(src, sc, sd, MPI_BYTE, dst, rc, rd, MPI_BYTE, ctx->comm);
  free(sc);
  if (rc_ != MPI_SUCCESS) return sm__mpi_error(ctx, rc_, "MPI_Alltoallv", __FILE__, __LINE__);
  return SM_OK;
}

sm_status sm__blocks_init(sm_ctx *ctx, const sm_rows *x, int64_t min_rows, sm__blocks *bk) {
  memset(bk, 0, sizeof *bk);
  bk->x = x;
  int p = ctx->size;
  SM_TRY(ctx, SM_ALLOC(ctx, bk->ranges, 4 * (size_t)p));
  bk->aligned = bk->ranges + 2 * p;
  int64_t mine[2] = {x->first, x->count};
  SM_MPI(ctx, MPI_Allgather(mine, 2, MPI_INT64_T, bk->ranges, 2, MPI_INT64_T, ctx->comm));
  int64_t at = 0;
  for (int r = 0; r < p; r++) {
    SM_CHECK(ctx, bk->ranges[2 * r] == at || bk->ranges[2 * r + 1] == 0, SM_ERR_ARG,
             "rank %d holds rows from %lld, expected %lld: rows must be split in rank order", r,
             (long long)bk->ranges[2 * r], (long long)at);
    bk->ranges[2 * r] = at;
    at += bk->ranges[2 * r + 1];
  }
  SM_CHECK(ctx, at == x->n, SM_ERR_ARG, "the ranks hold %lld rows in all, expected %lld", (long long)at,
           (long long)x->n);
  bk->B = block_rows(x->n, min_rows);
  bk->nb = (x->n + bk->B - 1) / bk->B;
  for (int r = 0; r < p; r++) {
    int64_t f = bk->ranges[2 * r], e = f + bk->ranges[2 * r + 1];
    int64_t b0 = (f + bk->B - 1) / bk->B, b1 = (e + bk->B - 1) / bk->B;
    if (b1 < b0) b1 = b0;
    int64_t a0 = b0 * bk->B, a1 = b1 * bk->B < x->n ? b1 * bk->B : x->n;
    if (b1 == b0) a0 = a1 = f;
    bk->aligned[2 * r] = a0;
    bk->aligned[2 * r + 1] = a1 - a0;
    if (r == ctx->rank) bk->b0 = b0, bk->b1 = b1, bk->a0 = a0, bk->a1 = a1;
  }
  /* the edge: the last block, when it runs past this rank's rows */
  int64_t end = x->first + x->count;
  bk->edge_first = bk->a1;
  int64_t *need = NULL;
  SM_TRY(ctx, SM_ALLOC(ctx, need, 2 * (size_t)p));
  for (int r = 0; r < p; r++) {
    int64_t e = bk->ranges[2 * r] + bk->ranges[2 * r + 1], a1 = bk->aligned[2 * r] + bk->aligned[2 * r + 1];
    need[2 * r] = e;
    need[2 * r + 1] = a1 > e ? a1 - e : 0;
  }
  size_t w = (size_t)x->d * sizeof(double);
  sm_status st = SM_OK;
  if (bk->a1 > end) {
    bk->edge_first = (bk->b1 - 1) * bk->B;
    st = SM_ALLOC(ctx, bk->edge, (bk->a1 - bk->edge_first) * x->d);
    if (st == SM_OK) memcpy(bk->edge, x->x + (bk->edge_first - x->first) * x->d, (size_t)(end - bk->edge_first) * w);
  }
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK)
    st = sm__exchange_rows(ctx, bk->ranges, need, (const char *)x->x,
                       bk->edge ? (char *)(bk->edge + (end - bk->edge_first) * x->d) : NULL, w);
  free(need);
  return st;
}

void sm__blocks_fini(sm__blocks *bk) {
  free(bk->edge);
  free(bk->ranges);
  memset(bk, 0, sizeof *bk);
}

const double *sm__block_rows(const sm__blocks *bk, int64_t b, int64_t *rows) {
  int64_t f = b * bk->B, e = f + bk->B < bk->x->n ? f + bk->B : bk->x->n;
  *rows = e - f;
  if (f >= bk->edge_first) return bk->edge + (f - bk->edge_first) * bk->x->d;
  return bk->x->x + (f - bk->x->first) * bk->x->d;
}

sm_status sm__blocks_return(sm_ctx *ctx, const sm__blocks *bk, const void *aligned, void *mine, size_t width) {
  return sm__exchange_rows(ctx, bk->aligned, bk->ranges, aligned, mine, width);
}

sm_status sm__blocks_fetch(sm_ctx *ctx, const sm__blocks *bk, int m, const int64_t *idx, double *out) {
  int64_t d = bk->x->d;
  memset(out, 0, (size_t)m * (size_t)d * sizeof *out);
  for (int i = 0; i < m; i++) {
    if (idx[i] < bk->a0 || idx[i] >= bk->a1) continue;
    int64_t rows, b = idx[i] / bk->B;
    const double *r = sm__block_rows(bk, b, &rows);
    memcpy(out + (size_t)i * d, r + (idx[i] - b * bk->B) * d, (size_t)d * sizeof *out);
  }
  SM_MPI(ctx, MPI_Allreduce(MPI_IN_PLACE, out, (int)((int64_t)m * d), MPI_DOUBLE, MPI_SUM, ctx->comm));
  return SM_OK;
}

/* ---- column moments ---- */

typedef struct {
  int64_t len; /* = d */
  const sm__blocks *bk;
  const double *mean; /* NULL: plain sums; else sums of squared deviations */
} moments;

static sm_status moments_leaf(void *u, int64_t b, double *out) {
  moments *m = u;
  int64_t rows, d = m->len;
  const double *x = sm__block_rows(m->bk, b, &rows);
  memset(out, 0, (size_t)d * sizeof *out);
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < d; j++) {
      double v = m->mean ? x[i * d + j] - m->mean[j] : x[i * d + j];
      out[j] += m->mean ? v * v : v;
    }
  return SM_OK;
}

sm_status sm__column_moments(sm_ctx *ctx, const sm__blocks *bk, double *mean, double *var) {
  moments m = {bk->x->d, bk, NULL};
  sm__tree_op op = {bk->x->d, moments_leaf, sm__tree_add, &m};
  SM_TRY(ctx, sm__tree_reduce(ctx, bk->nb, bk->b0, bk->b1, &op, mean));
  for (int64_t j = 0; j < bk->x->d; j++) mean[j] /= (double)bk->x->n;
  if (!var) return SM_OK;
  m.mean = mean;
  SM_TRY(ctx, sm__tree_reduce(ctx, bk->nb, bk->b0, bk->b1, &op, var));
  for (int64_t j = 0; j < bk->x->d; j++) var[j] /= (double)bk->x->n;
  return SM_OK;
}

/* 1 when some value of v [m] is NaN or infinite. The exponent field plus one carries into the
 * sign bit exactly when it is all ones (0x7ff): an OR of integers without an early exit, which
 * the compiler vectorises; the slow search for the culprit runs only on failure. */
static int any_nonfinite(const double *v, int64_t m) {
  const uint64_t exponent = 0x7ff0000000000000u, one = 0x0010000000000000u;
  uint64_t bad = 0;
  for (int64_t t = 0; t < m; t++) {
    uint64_t u;
    memcpy(&u, v + t, sizeof u);
    bad |= (u & exponent) + one;
  }
  return (bad >> 63) != 0;
}

sm_status sm__check_finite(sm_ctx *ctx, const sm_rows *x) {
  sm_status st = SM_OK;
  int64_t d = x->d, t = -1;
  for (int64_t i0 = 0; i0 < x->count && t < 0; i0 += 1024) {
    int64_t m = (x->count - i0 < 1024 ? x->count - i0 : 1024) * d;
    if (any_nonfinite(x->x + i0 * d, m))
      for (t = i0 * d; isfinite(x->x[t]); t++) continue;
  }
  if (t >= 0)
    st = SM_ERR(ctx, SM_ERR_DATA, "row %lld, column %lld: value %g is not finite (drop or fill missing values first)",
                (long long)(x->first + t / d), (long long)(t % d) + 1, x->x[t]);
  return sm_ctx_agree(ctx, st);
}
