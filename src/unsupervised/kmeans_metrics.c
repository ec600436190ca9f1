/* Cluster quality, as scikit-learn's metrics compute them:
 *   Davies-Bouldin (Davies & Bouldin 1979): S_j = mean distance of cluster j's rows to its
 *     centroid (the mean of its rows), M_ij = |centroid_i - centroid_j|,
 *     DB = mean_i max_{j != i} (S_i + S_j) / M_ij;
 *   silhouette (Rousseeuw 1987) over a sample of rows (all rows when the sample is >= n):
 *     s_i = (b_i - a_i) / max(a_i, b_i), a_i = mean distance to the other rows of its cluster,
 *     b_i = lowest mean distance to the rows of another cluster, s_i = 0 in a singleton cluster.
 * The sample is the first rows of a seeded permutation; its pairwise distances are split over
 * the ranks and the s_i summed in sample order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kmeans_internal.h"
#include "sisma/rng.h"
#include "sisma/shard.h"

typedef struct {
  const sm__blocks *bk;
  const int32_t *label;
  const double *centroid;
} intra;

/* Per-cluster sum of distances to the centroid: len k, zeroed by the leaf. */
typedef struct {
  intra in;
  int k;
} intra_op;

static sm_status intra_sum_leaf(void *u, int64_t b, double *out) {
  intra_op *t = u;
  int64_t rows, d = t->in.bk->x->d, f = b * t->in.bk->B - t->in.bk->a0;
  const double *x = sm__block_rows(t->in.bk, b, &rows);
  memset(out, 0, (size_t)t->k * sizeof *out);
  for (int64_t i = 0; i < rows; i++) {
    int j = t->in.label[f + i];
    out[j] += sqrt(sm__sqdist(x + i * d, t->in.centroid + j * d, d));
  }
  return SM_OK;
}

double sm__kmeans_davies_bouldin(int k, int64_t d, const double *centroid, const double *s) {
  if (k < 2) return NAN;
  double total = 0;
  int all_s_zero = 1, all_m_zero = 1;
  for (int i = 0; i < k; i++) all_s_zero &= fabs(s[i]) < 1e-8;
  for (int i = 0; i < k; i++) {
    double worst = 0;
    for (int j = 0; j < k; j++) {
      if (j == i) continue;
      double m = sqrt(sm__sqdist(centroid + i * d, centroid + j * d, d));
      all_m_zero &= m < 1e-8;
      double r = m > 0 ? (s[i] + s[j]) / m : 0;
      worst = fmax(worst, r);
    }
    total += worst;
  }
  return all_s_zero || all_m_zero ? 0 : total / k;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

int64_t sm__kmeans_sample(int64_t n, const sm_kmeans_opts *o, int64_t *idx) {
  int64_t m = o->silhouette_sample < n ? o->silhouette_sample : n;
  if (!idx) return m;
  sm_perm perm;
  sm_perm_init(&perm, n, o->seed, SM_RNG_STREAM_SPLIT);
  for (int64_t i = 0; i < m; i++) idx[i] = m == n ? i : sm_perm_at(&perm, i);
  qsort(idx, (size_t)m, sizeof *idx, cmp_i64);
  return m;
}

sm_status sm__kmeans_silhouette(sm_ctx *ctx, int64_t m, int64_t d, int k, const double *x, const int64_t *lab,
                                double *out) {
  int64_t *cnt = NULL;
  double *s = NULL, *dsum = NULL;
  int *rc = NULL;
  sm_status st = SM_ALLOC(ctx, s, m);
  if (st == SM_OK) st = SM_ALLOC(ctx, cnt, k);
  if (st == SM_OK) st = SM_ALLOC(ctx, dsum, k);
  if (st == SM_OK) st = SM_ALLOC(ctx, rc, 2 * (size_t)ctx->size);
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) {
    memset(cnt, 0, (size_t)k * sizeof *cnt);
    for (int64_t i = 0; i < m; i++) cnt[lab[i]]++;
    int64_t lo = m * ctx->rank / ctx->size, hi = m * (ctx->rank + 1) / ctx->size;
    for (int64_t i = lo; i < hi; i++) {
      memset(dsum, 0, (size_t)k * sizeof *dsum);
      for (int64_t j = 0; j < m; j++) dsum[lab[j]] += sqrt(sm__sqdist(x + i * d, x + j * d, d));
      int own = (int)lab[i];
      if (cnt[own] < 2) {
        s[i] = 0;
        continue;
      }
      double a = dsum[own] / (double)(cnt[own] - 1), b = INFINITY;
      for (int c = 0; c < k; c++)
        if (c != own && cnt[c] > 0) b = fmin(b, dsum[c] / (double)cnt[c]);
      double den = fmax(a, b);
      s[i] = den > 0 && isfinite(b) ? (b - a) / den : 0;
    }
    for (int r = 0; r < ctx->size; r++) {
      rc[r] = (int)(m * (r + 1) / ctx->size - m * r / ctx->size);
      rc[ctx->size + r] = (int)(m * r / ctx->size);
    }
    st = SM_MPI_STATUS(ctx, MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, s, rc, rc + ctx->size, MPI_DOUBLE,
                                           ctx->comm));
  }
  if (st == SM_OK) {
    double tot = 0;
    for (int64_t i = 0; i < m; i++) tot += s[i];
    *out = tot / (double)m;
  }
  free(s), free(cnt), free(dsum), free(rc);
  return st;
}

/* The silhouette of the sample rows, fetched from the blocks. Collective. */
static sm_status silhouette(sm_ctx *ctx, const sm__blocks *bk, const sm_kmeans_opts *o, const int32_t *label, int k,
                            double *out) {
  int64_t n = bk->x->n, d = bk->x->d, m = sm__kmeans_sample(n, o, NULL);
  *out = NAN;
  if (m < 2 || k < 2) return SM_OK;
  int64_t *idx = NULL, *lab = NULL;
  double *x = NULL;
  sm_status st = SM_ALLOC(ctx, idx, m);
  if (st == SM_OK) st = SM_ALLOC(ctx, lab, m);
  if (st == SM_OK) st = SM_ALLOC(ctx, x, (size_t)m * d);
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) {
    sm__kmeans_sample(n, o, idx);
    for (int64_t i = 0; i < m; i++) lab[i] = idx[i] >= bk->a0 && idx[i] < bk->a1 ? label[idx[i] - bk->a0] : -1;
    st = SM_MPI_STATUS(ctx, MPI_Allreduce(MPI_IN_PLACE, lab, (int)m, MPI_INT64_T, MPI_MAX, ctx->comm));
  }
  if (st == SM_OK) st = sm__blocks_fetch(ctx, bk, (int)m, idx, x);
  if (st == SM_OK) st = sm__kmeans_silhouette(ctx, m, d, k, x, lab, out);
  free(idx), free(lab), free(x);
  return st;
}

sm_status sm__kmeans_metrics(sm_ctx *ctx, const sm__blocks *bk, const sm_kmeans_opts *o, const int32_t *label_aligned,
                             const double *sums, const int64_t *sizes, int k, double *sil, double *db) {
  int64_t d = bk->x->d;
  double *centroid = NULL, *s = NULL;
  sm_status st = SM_ALLOC(ctx, centroid, (size_t)k * d);
  if (st == SM_OK) st = SM_ALLOC(ctx, s, k);
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) {
    for (int j = 0; j < k; j++)
      for (int64_t t = 0; t < d; t++) centroid[j * d + t] = sizes[j] ? sums[j * d + t] / (double)sizes[j] : 0;
    intra_op op_u = {{bk, label_aligned, centroid}, k};
    sm__tree_op op = {k, intra_sum_leaf, sm__tree_add, &op_u};
    st = sm__tree_reduce(ctx, bk->nb, bk->b0, bk->b1, &op, s);
  }
  if (st == SM_OK) {
    for (int j = 0; j < k; j++) s[j] = sizes[j] ? s[j] / (double)sizes[j] : 0;
    *db = sm__kmeans_davies_bouldin(k, d, centroid, s);
    st = silhouette(ctx, bk, o, label_aligned, k, sil);
  }
  free(centroid), free(s);
  return st;
}
