/* PCA: the driver (centring, scaling, choice of solver), the svd_flip sign convention, and the
 * transform / inverse transform / reconstruction error.
 *
 * Z = (X - mean) / scale is never formed: every solver reads blocks of X and applies the mean and
 * scale on the fly (sm__pca_block). Solvers return the top k right singular vectors of Z (rows of
 * `components`) and its singular values s; explained variance = s^2 / (n - 1) as scikit-learn,
 * the ratio is over the total variance sum_j var(Z_j) (ddof 1), computed from the data.
 * Sign (scikit-learn's svd_flip with u_based_decision): for each component, the score of largest
 * magnitude (lowest row index on ties) is made positive. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pca_internal.h"

void sm_pca_opts_default(sm_pca_opts *o) {
  memset(o, 0, sizeof *o);
  o->k = 2;
  o->method = SM_PCA_AUTO;
  o->center = 1;
  o->power_iters = -1;
}

void sm_pca_result_fini(sm_pca_result *r) {
  free(r->components), free(r->singular_values), free(r->explained_variance), free(r->explained_variance_ratio);
  free(r->cumulative_ratio), free(r->mean), free(r->scale);
  memset(r, 0, sizeof *r);
}

void sm__pca_block(const double *x, int64_t rows, int64_t d, const double *mean, const double *scale, double *z) {
  int unit = 1;
  for (int64_t j = 0; j < d; j++) unit &= scale[j] == 1.0;
  for (int64_t i = 0; i < rows; i++)
    if (unit)
      for (int64_t j = 0; j < d; j++) z[i * d + j] = x[i * d + j] - mean[j];
    else
      for (int64_t j = 0; j < d; j++) z[i * d + j] = (x[i * d + j] - mean[j]) / scale[j];
}

/* Scores of one row: z = (x - mean) / scale, s = V z (V: [k][d]); whitened: s / sqrt(ev). */
static void score_row(const sm_pca_result *p, const double *x, double *z, double *s) {
  sm__pca_block(x, 1, p->d, p->mean, p->scale, z);
  cblas_dgemv(CblasRowMajor, CblasNoTrans, p->k, (int)p->d, 1.0, p->components, (int)p->d, z, 1, 0.0, s, 1);
  if (p->whiten)
    for (int j = 0; j < p->k; j++) s[j] /= sqrt(p->explained_variance[j]);
}

sm_status sm_pca_transform(sm_ctx *ctx, const sm_pca_result *p, const sm_rows *x, double *scores) {
  SM_CHECK(ctx, x->d == p->d, SM_ERR_ARG, "PCA transform: %lld columns, the fit had %lld", (long long)x->d,
           (long long)p->d);
  double *z = NULL;
  SM_TRY(ctx, SM_ALLOC(ctx, z, p->d));
  for (int64_t i = 0; i < x->count; i++) score_row(p, x->x + i * x->d, z, scores + i * p->k);
  free(z);
  return SM_OK;
}

void sm_pca_inverse_transform(const sm_pca_result *p, int64_t count, const double *scores, double *out) {
  int64_t d = p->d;
  for (int64_t i = 0; i < count; i++) {
    double *o = out + i * d;
    memset(o, 0, (size_t)d * sizeof *o);
    for (int j = 0; j < p->k; j++) {
      double s = scores[i * p->k + j] * (p->whiten ? sqrt(p->explained_variance[j]) : 1.0);
      const double *v = p->components + j * d;
      for (int64_t t = 0; t < d; t++) o[t] += s * v[t];
    }
    for (int64_t t = 0; t < d; t++) o[t] = o[t] * p->scale[t] + p->mean[t];
  }
}

/* Sum of squared reconstruction errors per block (tree value: 1 double). */
typedef struct {
  const sm__blocks *bk;
  const sm_pca_result *p;
  double *z, *s, *r;
} recon;

static sm_status recon_leaf(void *u, int64_t b, double *out) {
  recon *c = u;
  int64_t rows, d = c->p->d;
  const double *x = sm__block_rows(c->bk, b, &rows);
  double e = 0;
  for (int64_t i = 0; i < rows; i++) {
    score_row(c->p, x + i * d, c->z, c->s);
    sm_pca_inverse_transform(c->p, 1, c->s, c->r);
    for (int64_t t = 0; t < d; t++) e += (x[i * d + t] - c->r[t]) * (x[i * d + t] - c->r[t]);
  }
  *out = e;
  return SM_OK;
}

sm_status sm_pca_reconstruction_error(sm_ctx *ctx, const sm_pca_result *p, const sm_rows *x, double *rmse) {
  sm__blocks bk;
  SM_TRY(ctx, sm__blocks_init(ctx, x, 0, &bk));
  recon c = {&bk, p, NULL, NULL, NULL};
  sm_status st = SM_ALLOC(ctx, c.z, p->d);
  if (st == SM_OK) st = SM_ALLOC(ctx, c.r, p->d);
  if (st == SM_OK) st = SM_ALLOC(ctx, c.s, p->k);
  st = sm_ctx_agree(ctx, st);
  double e = 0;
  sm__tree_op op = {1, recon_leaf, sm__tree_add, &c};
  if (st == SM_OK) st = sm__tree_reduce(ctx, bk.nb, bk.b0, bk.b1, &op, &e);
  *rmse = sqrt(e / ((double)x->n * (double)x->d));
  free(c.z), free(c.r), free(c.s);
  sm__blocks_fini(&bk);
  return st;
}

typedef struct {
  double v;    /* the score of largest magnitude so far */
  int64_t row; /* its global row (lowest on ties) */
} peak;

/* The peaks of the k scores over the rows of block b: (Z V^T)^T = V Z^T by chunks of 256 rows
 * (GEMM; with the k rows of V as the short side OpenBLAS runs it ~20 % faster than Z V^T), the
 * chunks fixed by the block, so every row's scores are the same arithmetic at any rank count. */
static void block_peaks(const sm__blocks *bk, const sm_pca_result *p, int64_t b, double *z, double *s,
                        peak *loc) {
  int64_t rows, d = p->d, k = p->k;
  const double *x = sm__block_rows(bk, b, &rows);
  for (int64_t i0 = 0; i0 < rows; i0 += 256) {
    int64_t m = rows - i0 < 256 ? rows - i0 : 256;
    sm__pca_block(x + i0 * d, m, d, p->mean, p->scale, z);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)k, (int)m, (int)d, 1.0, p->components, (int)d, z, (int)d,
                0.0, s, (int)m); /* s [k][m] */
    for (int64_t j = 0; j < k; j++)
      for (int64_t i = 0; i < m; i++)
        if (fabs(s[j * m + i]) > fabs(loc[j].v)) loc[j] = (peak){s[j * m + i], b * bk->B + i0 + i};
  }
}

/* svd_flip: the largest |score| of each component positive (lowest row on ties). Collective. */
static sm_status flip_signs(sm_ctx *ctx, const sm__blocks *bk, sm_pca_result *p) {
  int k = p->k;
  peak *loc = NULL, *all = NULL;
  double *z = NULL, *s = NULL;
  sm_status st = SM_ALLOC(ctx, loc, k);
  if (st == SM_OK) st = SM_ALLOC(ctx, all, (size_t)k * ctx->size);
  if (st == SM_OK) st = SM_ALLOC(ctx, z, 256 * p->d);
  if (st == SM_OK) st = SM_ALLOC(ctx, s, 256 * k);
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) {
    for (int j = 0; j < k; j++) loc[j] = (peak){0, INT64_MAX};
    for (int64_t b = bk->b0; b < bk->b1; b++) block_peaks(bk, p, b, z, s, loc);
    st = SM_MPI_STATUS(ctx, MPI_Allgather(loc, k * (int)sizeof *loc, MPI_BYTE, all, k * (int)sizeof *loc, MPI_BYTE,
                                          ctx->comm));
  }
  for (int j = 0; st == SM_OK && j < k; j++) {
    peak best = {0, INT64_MAX};
    for (int r = 0; r < ctx->size; r++) {
      peak c = all[r * k + j];
      if (fabs(c.v) > fabs(best.v) || (fabs(c.v) == fabs(best.v) && c.row < best.row)) best = c;
    }
    if (best.v < 0)
      for (int64_t t = 0; t < p->d; t++) p->components[j * p->d + t] = -p->components[j * p->d + t];
  }
  free(loc), free(all), free(z), free(s);
  return st;
}

static sm_pca_method choose(const sm_pca_opts *o, int64_t n, int64_t d) {
  if (o->method != SM_PCA_AUTO) return o->method;
  if (d <= 64) return SM_PCA_TSQR; /* most accurate, and cheap at this width */
  if (o->k <= d / 20 && d > 4096 && n > 4 * o->k) return SM_PCA_RANDOMIZED;
  return SM_PCA_EXACT;
}

static sm_status alloc_result(sm_ctx *ctx, sm_pca_result *r, int k, int64_t d) {
  SM_TRY(ctx, SM_ALLOC(ctx, r->components, (size_t)k * d));
  SM_TRY(ctx, SM_ALLOC(ctx, r->singular_values, k));
  SM_TRY(ctx, SM_ALLOC(ctx, r->explained_variance, k));
  SM_TRY(ctx, SM_ALLOC(ctx, r->explained_variance_ratio, k));
  SM_TRY(ctx, SM_ALLOC(ctx, r->cumulative_ratio, k));
  SM_TRY(ctx, SM_ALLOC(ctx, r->mean, d));
  SM_TRY(ctx, SM_ALLOC(ctx, r->scale, d));
  return SM_OK;
}

sm_status sm_pca_fit(sm_ctx *ctx, const sm_rows *x, const sm_pca_opts *o, sm_pca_result *r) {
  memset(r, 0, sizeof *r);
  int64_t n = x->n, d = x->d, mn = n < d ? n : d;
  SM_CHECK(ctx, n >= 2 && d >= 1, SM_ERR_ARG, "PCA needs at least 2 rows and 1 column (got %lld x %lld)",
           (long long)n, (long long)d);
  SM_CHECK(ctx, o->k >= 1 && o->k <= mn, SM_ERR_ARG, "PCA of %lld x %lld data: components must be in 1..%lld (got %d)",
           (long long)n, (long long)d, (long long)mn, o->k);
  r->k = o->k, r->n = n, r->d = d, r->whiten = o->whiten;
  r->method = choose(o, n, d);
  /* the tall ScaLAPACK path gets means, variances and the Gram matrix in one pass, which also
   * finds non-finite values */
  int gram_path = r->method == SM_PCA_EXACT && n > 4 * d;
  if (!gram_path) SM_TRY(ctx, sm__check_finite(ctx, x));
  sm_status st = sm_ctx_agree(ctx, alloc_result(ctx, r, o->k, d));
  double *var = NULL;
  if (st == SM_OK) st = sm_ctx_agree(ctx, SM_ALLOC(ctx, var, d));
  sm__blocks bk;
  int have_bk = 0;
  if (st == SM_OK) {
    /* TSQR wants tall leaves (fewer, larger QRs). A Gram leaf works in chunks of its own, but
     * each leaf value is d^2 doubles to clear and add: 2048 rows make that ~1 % of the leaf's
     * flops, and the blocks small enough that ranks differ by at most one 2048-row block. */
    int64_t min_rows = r->method == SM_PCA_TSQR ? 4 * d : gram_path ? 2048 : 0;
    st = sm__blocks_init(ctx, x, min_rows, &bk);
    have_bk = st == SM_OK;
  }
  double t0 = sm_wtime(), t1 = t0;
  double *C = NULL;
  if (st == SM_OK && gram_path) st = sm_ctx_agree(ctx, SM_ALLOC(ctx, C, d * d));
  if (st == SM_OK && gram_path) st = sm__pca_gram(ctx, &bk, o->center, o->single, r->mean, var, C);
  else if (st == SM_OK) st = sm__column_moments(ctx, &bk, r->mean, var);
  if (st == SM_OK) {
    r->total_variance = 0;
    for (int64_t j = 0; j < d; j++) {
      double s = o->scale && var[j] > 0 ? sqrt(var[j]) : 1.0;
      r->scale[j] = s;
      double v = var[j] + (o->center ? 0 : r->mean[j] * r->mean[j]);
      if (!o->center) r->mean[j] = 0;
      r->total_variance += v / (s * s) * (double)n / (double)(n - 1);
    }
    t1 = sm_wtime();
    for (int64_t i = 0; gram_path && i < d; i++) /* Gram of Z = D^-1 C D^-1 */
      for (int64_t j = 0; j < d; j++) C[i * d + j] /= r->scale[i] * r->scale[j];
    switch (r->method) {
    case SM_PCA_TSQR: st = sm__pca_tsqr(ctx, &bk, r); break;
    case SM_PCA_RANDOMIZED: st = sm__pca_randomized(ctx, &bk, o, r); break;
    default: st = sm__pca_scalapack(ctx, &bk, o, r, C); break;
    }
  }
  if (st == SM_OK) {
    double cum = 0;
    for (int j = 0; j < r->k; j++) {
      r->explained_variance[j] = r->singular_values[j] * r->singular_values[j] / (double)(n - 1);
      r->explained_variance_ratio[j] = r->total_variance > 0 ? r->explained_variance[j] / r->total_variance : 0;
      cum += r->explained_variance_ratio[j];
      r->cumulative_ratio[j] = cum;
    }
    double t2 = sm_wtime();
    st = flip_signs(ctx, &bk, r);
    sm_debug(ctx, "pca: moments %.3f s, solver %.3f s, signs %.3f s", t1 - t0, t2 - t1, sm_wtime() - t2);
  }
  free(var), free(C);
  if (have_bk) sm__blocks_fini(&bk);
  if (st != SM_OK) sm_pca_result_fini(r);
  return st;
}
