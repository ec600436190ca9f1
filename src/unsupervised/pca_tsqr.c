/* The PCA solvers that run on the block tree, identical for every rank count:
 *   TSQR (Demmel, Grigori, Hoemmen, Langou 2012; sm__tree_tsqr in src/core/blocktree.c): R of
 *     each block by Householder QR, pairs of R stacked and factored again up the tree; Z = QR, so
 *     the SVD R = U S V^T gives the right singular vectors V and singular values S of Z without
 *     forming Z^T Z (no squared condition number). One pass over the data; for tall-skinny Z (d
 *     up to ~1000).
 *   randomized SVD (Halko, Martinsson, Tropp 2011, algorithms 4.4 + 5.1): Y = Z Omega with a
 *     Gaussian d x l test matrix (l = k + oversamples), q power iterations Y = Z (Z^T Q) with
 *     re-orthonormalisation between them (TSQR of Y, Q = Y R^-1; QR of Z^T Q on every rank),
 *     then the SVD of the small B^T = Z^T Q. For wide data (whole waveforms) and few components. */
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pca_internal.h"
#include "sisma/rng.h"

/* ---- TSQR PCA ---- */

typedef struct {
  const sm__blocks *bk;
  const sm_pca_result *r;
} zrows;

static sm_status z_rows(void *u, int64_t b, double *out, int64_t *rows) {
  zrows *z = u;
  const double *x = sm__block_rows(z->bk, b, rows);
  sm__pca_block(x, *rows, z->r->d, z->r->mean, z->r->scale, out);
  return SM_OK;
}

sm_status sm__pca_tsqr(sm_ctx *ctx, const sm__blocks *bk, sm_pca_result *r) {
  int64_t d = r->d;
  double *R = NULL, *s = NULL, *vt = NULL, *sup = NULL;
  sm_status st = SM_ALLOC(ctx, R, d * d);
  if (st == SM_OK) st = SM_ALLOC(ctx, s, d);
  if (st == SM_OK) st = SM_ALLOC(ctx, vt, d * d);
  if (st == SM_OK) st = SM_ALLOC(ctx, sup, d);
  st = sm_ctx_agree(ctx, st);
  zrows z = {bk, r};
  if (st == SM_OK) st = sm__tree_tsqr(ctx, bk->nb, bk->b0, bk->b1, d, bk->B, z_rows, &z, R);
  if (st == SM_OK) { /* R and vt column-major: component j is row j of V^T */
    int info = LAPACKE_dgesvd(LAPACK_COL_MAJOR, 'N', 'A', (int)d, (int)d, R, (int)d, s, NULL, 1, vt, (int)d, sup);
    if (info != 0) st = SM_ERR(ctx, SM_ERR_NUMERIC, "TSQR PCA: the SVD of R did not converge (dgesvd info %d)", info);
  }
  if (st == SM_OK) {
    for (int64_t j = 0; j < r->k; j++)
      for (int64_t i = 0; i < d; i++)
        r->components[j * d + i] = vt[j + i * d];
    memcpy(r->singular_values, s, (size_t)r->k * sizeof *s);
    snprintf(r->solver, sizeof r->solver, "tsqr (block tree of %lld-row QRs, then dgesvd of R)", (long long)bk->B);
  }
  free(R), free(s), free(vt), free(sup);
  return st;
}

/* ---- randomized SVD ---- */

typedef struct {
  const sm__blocks *bk;
  const sm_pca_result *r;
  int64_t l;
  double *y;  /* [a1 - a0][l] aligned rows */
  double *w;  /* [d][l] */
  double *zb; /* [B][d] scratch */
} rsvd;

/* Y_b = Z_b W for the blocks of this rank. */
static void apply_z(rsvd *t) {
  const sm__blocks *bk = t->bk;
  int64_t d = t->r->d;
  for (int64_t b = bk->b0; b < bk->b1; b++) {
    int64_t rows;
    const double *x = sm__block_rows(bk, b, &rows);
    sm__pca_block(x, rows, d, t->r->mean, t->r->scale, t->zb);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)t->l, (int)d, 1.0, t->zb, (int)d, t->w,
                (int)t->l, 0.0, t->y + (b * bk->B - bk->a0) * t->l, (int)t->l);
  }
}

/* tree leaf: Z_b^T Y_b ([d][l]) */
static sm_status zty_leaf(void *u, int64_t b, double *out) {
  rsvd *t = u;
  int64_t rows, d = t->r->d;
  const double *x = sm__block_rows(t->bk, b, &rows);
  sm__pca_block(x, rows, d, t->r->mean, t->r->scale, t->zb);
  cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)d, (int)t->l, (int)rows, 1.0, t->zb, (int)d,
              t->y + (b * t->bk->B - t->bk->a0) * t->l, (int)t->l, 0.0, out, (int)t->l);
  return SM_OK;
}

static sm_status y_rows(void *u, int64_t b, double *out, int64_t *rows) {
  rsvd *t = u;
  const sm__blocks *bk = t->bk;
  *rows = b * bk->B + bk->B < bk->x->n ? bk->B : bk->x->n - b * bk->B;
  memcpy(out, t->y + (b * bk->B - bk->a0) * t->l, (size_t)(*rows * t->l) * sizeof *out);
  return SM_OK;
}

/* Q = Y R^-1 with R from TSQR of Y: orthonormal columns, the same on every rank count. R comes
 * column-major: read row-major it is R^T, lower triangular, hence CblasLower, CblasTrans. */
static sm_status orth_y(sm_ctx *ctx, rsvd *t, double *R) {
  const sm__blocks *bk = t->bk;
  SM_TRY(ctx, sm__tree_tsqr(ctx, bk->nb, bk->b0, bk->b1, t->l, bk->B, y_rows, t, R));
  for (int64_t i = 0; i < t->l; i++)
    if (fabs(R[i * t->l + i]) < 1e-300) R[i * t->l + i] = 1; /* an exactly rank-deficient sketch */
  int64_t na = t->bk->a1 - t->bk->a0;
  if (na > 0)
    cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit, (int)na, (int)t->l, 1.0, R, (int)t->l,
                t->y, (int)t->l);
  return SM_OK;
}

/* W = orth(Z^T Q) on every rank (Householder QR of the replicated d x l matrix). */
static sm_status orth_w(sm_ctx *ctx, rsvd *t, double *tau) {
  int info = LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, (int)t->r->d, (int)t->l, t->w, (int)t->l, tau);
  if (info == 0) info = LAPACKE_dorgqr(LAPACK_ROW_MAJOR, (int)t->r->d, (int)t->l, (int)t->l, t->w, (int)t->l, tau);
  SM_CHECK(ctx, info == 0, SM_ERR_NUMERIC, "randomized PCA: QR of Z^T Q failed (info %d)", info);
  return SM_OK;
}

sm_status sm__pca_randomized(sm_ctx *ctx, const sm__blocks *bk, const sm_pca_opts *o, sm_pca_result *r) {
  int64_t d = r->d, n = r->n, mn = n < d ? n : d;
  int64_t l = r->k + (o->oversamples > 0 ? o->oversamples : 10);
  if (l > mn) l = mn;
  int q = o->power_iters >= 0 ? o->power_iters : (r->k < 0.1 * (double)mn ? 7 : 4);
  rsvd t = {bk, r, l, NULL, NULL, NULL};
  double *R = NULL, *tau = NULL, *s = NULL, *u = NULL, *sup = NULL;
  sm_status st = SM_ALLOC(ctx, t.y, (bk->a1 - bk->a0) * l + 1);
  if (st == SM_OK) st = SM_ALLOC(ctx, t.w, d * l);
  if (st == SM_OK) st = SM_ALLOC(ctx, t.zb, bk->B * d);
  if (st == SM_OK) st = SM_ALLOC(ctx, R, l * l);
  if (st == SM_OK) st = SM_ALLOC(ctx, tau, l);
  if (st == SM_OK) st = SM_ALLOC(ctx, s, l);
  if (st == SM_OK) st = SM_ALLOC(ctx, u, d * l);
  if (st == SM_OK) st = SM_ALLOC(ctx, sup, l);
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) {
    sm_rng rng;
    sm_rng_init(&rng, o->seed, SM_RNG_STREAM_INIT + 3);
    for (int64_t i = 0; i < d * l; i++) t.w[i] = sm_rng_normal(&rng);
    apply_z(&t);
    st = orth_y(ctx, &t, R);
  }
  sm__tree_op op = {d * l, zty_leaf, sm__tree_add, &t};
  for (int it = 0; st == SM_OK && it < q; it++) {
    st = sm__tree_reduce(ctx, bk->nb, bk->b0, bk->b1, &op, t.w);
    if (st == SM_OK) st = orth_w(ctx, &t, tau);
    if (st == SM_OK) apply_z(&t);
    if (st == SM_OK) st = orth_y(ctx, &t, R);
  }
  if (st == SM_OK) st = sm__tree_reduce(ctx, bk->nb, bk->b0, bk->b1, &op, t.w); /* B^T = Z^T Q, d x l */
  if (st == SM_OK) {
    int info = LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'S', 'N', (int)d, (int)l, t.w, (int)l, s, u, (int)l, NULL, 1, sup);
    if (info != 0) st = SM_ERR(ctx, SM_ERR_NUMERIC, "randomized PCA: SVD of the sketch failed (dgesvd info %d)", info);
  }
  if (st == SM_OK) {
    for (int j = 0; j < r->k; j++) {
      r->singular_values[j] = s[j];
      for (int64_t i = 0; i < d; i++) r->components[j * d + i] = u[i * l + j];
    }
    snprintf(r->solver, sizeof r->solver, "randomized (l = %lld columns, %d power iterations)", (long long)l, q);
  }
  free(t.y), free(t.w), free(t.zb), free(R), free(tau), free(s), free(u), free(sup);
  return st;
}
