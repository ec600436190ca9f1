/* The fixed block tree and TSQR on it (see blocktree.h): the reason regressions, k-means and PCA
 * give bit-identical results at 1, 2, 3 or 4 ranks. Start with sm__tree_reduce; sm__tree_tsqr is
 * one use of it. */
#include <lapacke.h>
#include <stdlib.h>
#include <string.h>

#include "blocktree.h"

/* ---- the tree ---- */

typedef struct {
  const sm__tree_op *op;
  int64_t nb;
  double *tmp; /* [levels][len] scratch, one per level */
  /* gathered nodes (final phase) */
  int nn;
  const int64_t *id; /* [nn][2] level, index */
  const double *val; /* [nn][len] */
} tree;

static sm_status eval_node(tree *t, int l, int64_t j, double *out) {
  if (l == 0) return t->op->leaf(t->op->u, j, out);
  sm_status st = eval_node(t, l - 1, 2 * j, out);
  if (st != SM_OK || ((2 * j + 1) << (l - 1)) >= t->nb) return st;
  double *r = t->tmp + (size_t)l * t->op->len;
  st = eval_node(t, l - 1, 2 * j + 1, r);
  if (st == SM_OK) t->op->combine(t->op->u, t->op->len, out, r);
  return st;
}

/* Evaluate the maximal nodes inside [b0, b1), appending (l, j) and values. */
static sm_status emit(tree *t, int l, int64_t j, int64_t b0, int64_t b1, int64_t *ids, double *vals, int *n) {
  int64_t lo = j << l, hi = (j + 1) << l;
  if (hi > t->nb) hi = t->nb;
  if (lo >= hi || hi <= b0 || lo >= b1) return SM_OK;
  if (lo >= b0 && hi <= b1) {
    ids[2 * *n] = l, ids[2 * *n + 1] = j;
    return eval_node(t, l, j, vals + (size_t)(*n)++ * t->op->len);
  }
  sm_status st = emit(t, l - 1, 2 * j, b0, b1, ids, vals, n);
  return st != SM_OK ? st : emit(t, l - 1, 2 * j + 1, b0, b1, ids, vals, n);
}

static void finish_node(tree *t, int l, int64_t j, double *out) {
  for (int i = 0; i < t->nn; i++)
    if (t->id[2 * i] == l && t->id[2 * i + 1] == j) {
      memcpy(out, t->val + (size_t)i * t->op->len, (size_t)t->op->len * sizeof *out);
      return;
    }
  finish_node(t, l - 1, 2 * j, out);
  if (((2 * j + 1) << (l - 1)) >= t->nb) return;
  double *r = t->tmp + (size_t)l * t->op->len;
  finish_node(t, l - 1, 2 * j + 1, r);
  t->op->combine(t->op->u, t->op->len, out, r);
}

sm_status sm__tree_reduce(sm_ctx *ctx, int64_t nb, int64_t b0, int64_t b1, const sm__tree_op *op, double *out) {
  if (nb == 0) { /* no blocks anywhere: the empty sum, the R of no rows */
    memset(out, 0, (size_t)op->len * sizeof *out);
    return SM_OK;
  }
  int levels = 0;
  while (((int64_t)1 << levels) < nb)
    levels++;
  int maxn = 2 * levels + 2, p = ctx->size;
  tree t = {.op = op, .nb = nb};
  int64_t *ids = NULL, *all_ids = NULL;
  double *vals = NULL, *all_vals = NULL;
  int *cnt = NULL, n = 0;
  sm_status st = SM_ALLOC(ctx, t.tmp, (size_t)(levels + 1) * op->len);
  if (st == SM_OK) st = SM_ALLOC(ctx, ids, 2 * (size_t)maxn);
  if (st == SM_OK) st = SM_ALLOC(ctx, vals, (size_t)maxn * op->len);
  if (st == SM_OK) st = SM_ALLOC(ctx, cnt, 4 * (size_t)p);
  if (st == SM_OK) st = emit(&t, levels, 0, b0, b1, ids, vals, &n);
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) {
    int rc = MPI_Allgather(&n, 1, MPI_INT, cnt, 1, MPI_INT, ctx->comm);
    if (rc != MPI_SUCCESS) st = sm__mpi_error(ctx, rc, "MPI_Allgather", __FILE__, __LINE__);
  }
  int total = 0;
  if (st == SM_OK) {
    for (int r = 0; r < p; r++)
      total += cnt[r];
    for (int r = 0; r < p && st == SM_OK; r++)
      if ((double)cnt[r] * (double)op->len > 2147483647.0)
        st = SM_ERR(ctx, SM_ERR_UNSUPPORTED,
                    "block tree: %d node values of %lld doubles exceed one MPI message (2^31 elements); "
                    "reduce the width (columns), or for PCA use method randomized",
                    cnt[r], (long long)op->len);
    if (st == SM_OK) st = SM_ALLOC(ctx, all_ids, 2 * (size_t)total);
    if (st == SM_OK) st = SM_ALLOC(ctx, all_vals, (size_t)total * op->len);
    st = sm_ctx_agree(ctx, st);
  }
  if (st == SM_OK) {
    int *c2 = cnt + p, *d2 = cnt + 2 * p, *dv = cnt + 3 * p;
    int off = 0;
    for (int r = 0; r < p; r++)
      c2[r] = 2 * cnt[r], d2[r] = 2 * off, off += cnt[r];
    int rc = MPI_Allgatherv(ids, 2 * n, MPI_INT64_T, all_ids, c2, d2, MPI_INT64_T, ctx->comm);
    if (rc == MPI_SUCCESS) {
      /* values: node counts times len doubles; len * nodes fits an int for the sizes used here */
      off = 0;
      for (int r = 0; r < p; r++)
        c2[r] = (int)(cnt[r] * op->len), dv[r] = off, off += c2[r];
      rc = MPI_Allgatherv(vals, (int)(n * op->len), MPI_DOUBLE, all_vals, c2, dv, MPI_DOUBLE, ctx->comm);
    }
    if (rc != MPI_SUCCESS) st = sm__mpi_error(ctx, rc, "MPI_Allgatherv", __FILE__, __LINE__);
  }
  if (st == SM_OK) {
    t.nn = total, t.id = all_ids, t.val = all_vals;
    finish_node(&t, levels, 0, out);
  }
  free(t.tmp), free(ids), free(vals), free(cnt), free(all_ids), free(all_vals);
  return st;
}

void sm__tree_add(void *u, int64_t len, double *acc, const double *right) {
  (void)u;
  for (int64_t i = 0; i < len; i++)
    acc[i] += right[i];
}

/* ---- TSQR ---- */

typedef struct {
  sm_ctx *ctx;
  int64_t c;
  sm__rows_fn fn;
  void *u;
  double *rows; /* [max_rows][c] a block's rows, as fn writes them */
  double *a;    /* [max(max_rows + 3, 2c)][c] column-major copy, factored in place */
  double *tau;  /* [c + 64 c] the reflector scales, then LAPACK's workspace (no malloc per QR) */
  int failed;   /* dgeqrf failed in a combine (it fails only on bad arguments) */
} tsqr;

/* QR of the m x c column-major t->a (leading dimension lda); the upper triangle (rows beyond m
 * zero) goes to R [c][c] column-major. Returns LAPACK's info. */
static int qr_into(tsqr *t, int64_t m, int64_t lda, double *R) {
  int c = (int)t->c;
  int info = m > 0 ? LAPACKE_dgeqrf_work(LAPACK_COL_MAJOR, (int)m, c, t->a, (int)lda, t->tau, t->tau + c, 64 * c) : 0;
  memset(R, 0, (size_t)c * (size_t)c * sizeof *R);
  for (int64_t j = 0; j < c; j++)
    for (int64_t i = 0; i <= j && i < m; i++)
      R[i + j * c] = t->a[i + j * lda];
  return info;
}

static sm_status tsqr_leaf(void *u, int64_t b, double *out) {
  tsqr *t = u;
  int64_t m = 0, c = t->c;
  SM_TRY(t->ctx, t->fn(t->u, b, t->rows, &m));
  /* leading dimension off powers of two: c column streams 32 KiB apart alias in the cache */
  int64_t lda = m + 3;
  for (int64_t i = 0; i < m; i++)
    for (int64_t j = 0; j < c; j++)
      t->a[i + j * lda] = t->rows[i * c + j];
  int info = qr_into(t, m, lda, out);
  if (info)
    return SM_ERR(t->ctx, SM_ERR_NUMERIC, "TSQR: LAPACK dgeqrf failed on block %lld (info %d)", (long long)b, info);
  return SM_OK;
}

/* acc = R of the QR of [acc; right], both [c][c] column-major upper triangular. */
static void tsqr_combine(void *u, int64_t len, double *acc, const double *right) {
  tsqr *t = u;
  int64_t c = t->c;
  for (int64_t j = 0; j < c; j++) {
    memcpy(t->a + j * 2 * c, acc + j * c, (size_t)c * sizeof *acc);
    memcpy(t->a + j * 2 * c + c, right + j * c, (size_t)c * sizeof *acc);
  }
  if (qr_into(t, 2 * c, 2 * c, acc)) t->failed = 1;
}

sm_status sm__tree_tsqr(sm_ctx *ctx, int64_t nb, int64_t b0, int64_t b1, int64_t c, int64_t max_rows, sm__rows_fn fn,
                        void *u, double *R) {
  int64_t arows = max_rows + 3 > 2 * c ? max_rows + 3 : 2 * c;
  tsqr t = {ctx, c, fn, u, NULL, NULL, NULL, 0};
  sm_status st = SM_ALLOC(ctx, t.rows, max_rows * c + 1);
  if (st == SM_OK) st = SM_ALLOC(ctx, t.a, arows * c);
  if (st == SM_OK) st = SM_ALLOC(ctx, t.tau, 65 * c);
  st = sm_ctx_agree(ctx, st);
  sm__tree_op op = {c * c, tsqr_leaf, tsqr_combine, &t};
  if (st == SM_OK) st = sm__tree_reduce(ctx, nb, b0, b1, &op, R);
  if (st == SM_OK)
    st = sm_ctx_agree(ctx, t.failed ? SM_ERR(ctx, SM_ERR_NUMERIC, "TSQR: LAPACK dgeqrf failed in the tree") : SM_OK);
  free(t.rows), free(t.a), free(t.tau);
  return st;
}
