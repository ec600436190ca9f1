/* Exact PCA through ScaLAPACK on a BLACS process grid (ENV.md 3.3 for the calling conventions).
 *
 * Which driver, by shape (Z is n x d, centred and scaled):
 *   n > 4 d (tall): pdsyevd of the d x d Gram matrix Z^T Z (LAPACK dsyevr on rank 0 for a matrix
 *     that would get a 1x1 grid). Forming it is n d^2 flops at GEMM speed, done on the block tree
 *     (bit-identical for any rank count), and the eigenproblem is small next to an SVD of the
 *     n x d data (pdgesvd's bidiagonalisation alone costs ~4 n d^2 in slow level-2 steps). The
 *     price is the squared condition number: eigenvalues come with an absolute error
 *     ~ eps * s_1^2, which keeps 1e-8 relative accuracy for every component whose variance is
 *     above ~1e-7 of the first. Wanted components are the leading ones.
 *   n <= 4 d (wide or square, e.g. whole waveforms): pdgesvd of the data itself. The Gram matrix
 *     would be as large as the data or larger and would square the condition number for nothing.
 *     The rows are first rebalanced into ScaLAPACK's 1-D block layout over all ranks (one
 *     exchange of row ranges), then pdgemr2d redistributes them block-cyclically onto the grid.
 * Ranks outside the grid (grid smaller than the rank count) take part only in the exchanges and
 * the final allreduce that replicates the components. Results depend on the grid in the last
 * bits (ScaLAPACK's reduction order); the tests hold them to 1e-10. */
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pca_internal.h"

/* BLACS (C interface) and ScaLAPACK (Fortran: by pointer, hidden string lengths last). */
void Cblacs_get(int icontxt, int what, int *val);
int Csys2blacs_handle(MPI_Comm comm);
void Cfree_blacs_system_handle(int handle);
void Cblacs_gridinit(int *icontxt, const char *order, int nprow, int npcol);
void Cblacs_gridinfo(int icontxt, int *nprow, int *npcol, int *myrow, int *mycol);
void Cblacs_gridexit(int icontxt);
int numroc_(const int *n, const int *nb, const int *iproc, const int *isrcproc, const int *nprocs);
int indxl2g_(const int *indxloc, const int *nb, const int *iproc, const int *isrcproc, const int *nprocs);
void descinit_(int desc[9], const int *m, const int *n, const int *mb, const int *nb, const int *irsrc,
               const int *icsrc, const int *ictxt, const int *lld, int *info);
void pdgesvd_(const char *jobu, const char *jobvt, const int *m, const int *n, double *a, const int *ia, const int *ja,
              const int *desca, double *s, double *u, const int *iu, const int *ju, const int *descu, double *vt,
              const int *ivt, const int *jvt, const int *descvt, double *work, const int *lwork, int *info,
              size_t ljobu, size_t ljobvt);
void pdsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *ia, const int *ja,
              const int *desca, double *w, double *z, const int *iz, const int *jz, const int *descz, double *work,
              const int *lwork, int *iwork, const int *liwork, int *info, size_t ljobz, size_t luplo);
void pdgemr2d_(const int *m, const int *n, const double *a, const int *ia, const int *ja, const int *desca, double *b,
               const int *ib, const int *jb, const int *descb, const int *ictxt);

static const int I0 = 0, I1 = 1;

/* A block-cyclic matrix on the grid: descriptor and column-major local storage. */
typedef struct {
  int desc[9];
  int locr, locc, lld;
  double *a;
} dmat;

typedef struct {
  int handle, ctxt, pr, pc, myrow, mycol, in_grid, nb;
} grid;

/* The grid: as asked, else the squarest grid of all ranks -- except for a matrix under 1000^2
 * values, whose factorisation is faster on one process than spread over a grid (measured: a
 * 256 x 256 pdsyevd takes longer on 1x2 than on 1x1). */
static sm_status grid_open(sm_ctx *ctx, const sm_pca_opts *o, double elements, grid *g) {
  memset(g, 0, sizeof *g);
  g->pr = o->grid_rows, g->pc = o->grid_cols;
  if ((g->pr <= 0 || g->pc <= 0) && elements < 1e6) g->pr = g->pc = 1;
  if (g->pr <= 0 || g->pc <= 0) {
    g->pr = (int)sqrt((double)ctx->size);
    while (ctx->size % g->pr) g->pr--;
    g->pc = ctx->size / g->pr;
  }
  SM_CHECK(ctx, g->pr * g->pc <= ctx->size, SM_ERR_ARG,
           "ScaLAPACK grid %dx%d needs %d ranks, the job has %d (grid key: rows x columns <= ranks)", g->pr, g->pc,
           g->pr * g->pc, ctx->size);
  g->nb = o->block > 0 ? o->block : 64;
  g->handle = Csys2blacs_handle(ctx->comm);
  g->ctxt = g->handle;
  Cblacs_gridinit(&g->ctxt, "Row", g->pr, g->pc);
  g->in_grid = ctx->rank < g->pr * g->pc;
  g->myrow = g->mycol = -1;
  if (g->in_grid) {
    int r, c;
    Cblacs_gridinfo(g->ctxt, &r, &c, &g->myrow, &g->mycol);
  }
  return SM_OK;
}

static void grid_close(grid *g) {
  if (g->in_grid) Cblacs_gridexit(g->ctxt);
  Cfree_blacs_system_handle(g->handle);
}

static sm_status dmat_init(sm_ctx *ctx, const grid *g, int m, int n, int mb, int nb, int ctxt, int prow, int pcol,
                           int myrow, int mycol, dmat *a) {
  memset(a, 0, sizeof *a);
  a->desc[1] = -1;
  if (myrow < 0) return SM_OK;
  a->locr = numroc_(&m, &mb, &myrow, &I0, &prow);
  a->locc = numroc_(&n, &nb, &mycol, &I0, &pcol);
  a->lld = a->locr > 1 ? a->locr : 1;
  int info = 0;
  descinit_(a->desc, &m, &n, &mb, &nb, &I0, &I0, &ctxt, &a->lld, &info);
  SM_CHECK(ctx, info == 0, SM_ERR_INTERNAL, "descinit: info %d", info);
  (void)g;
  return SM_ALLOC(ctx, a->a, (size_t)a->lld * (a->locc > 0 ? a->locc : 1));
}

/* Copy rows [0, k) (byrow) or columns [n-k, n) reversed (!byrow) of a distributed matrix into
 * out [k][len] on every rank. Collective over ctx. */
static sm_status gather_vectors(sm_ctx *ctx, const grid *g, const dmat *a, int n_total, int k, int byrow, int len,
                                double *out) {
  memset(out, 0, (size_t)k * len * sizeof *out);
  for (int jl = 0; g->in_grid && jl < a->locc; jl++) {
    int jl1 = jl + 1, gj = indxl2g_(&jl1, &g->nb, &g->mycol, &I0, &g->pc) - 1;
    for (int il = 0; il < a->locr; il++) {
      int il1 = il + 1, gi = indxl2g_(&il1, &g->nb, &g->myrow, &I0, &g->pr) - 1;
      double v = a->a[il + (size_t)jl * a->lld];
      if (byrow && gi < k) out[(size_t)gi * len + gj] = v;
      if (!byrow && gj >= n_total - k) out[(size_t)(n_total - 1 - gj) * len + gi] = v;
    }
  }
  SM_MPI(ctx, MPI_Allreduce(MPI_IN_PLACE, out, k * len, MPI_DOUBLE, MPI_SUM, ctx->comm));
  return SM_OK;
}

/* ---- n > 4d: eigenpairs of Z^T Z ---- */

/* Rows per chunk of a Gram leaf: the shifted copy of a chunk (<= 512 KB) stays in L2 for the
 * rank-k update, so the block's rows are read from memory once. A function of d only. */
static int64_t gram_chunk(int64_t d) { return d < 128 ? 512 : 65536 / d > 16 ? 65536 / d : 16; }

typedef struct {
  const sm__blocks *bk;
  const double *x0; /* [d] shift */
  int single;       /* products in float32 (the chunk's Gram summed into float64) */
  double *zb;       /* [chunk][d] */
  float *zf, *cf;   /* single: [chunk][d], [d][d] */
} gram;

/* Shift one chunk: z = x - x0 into g->zb (or g->zf when single), sum [d] += z in float64. */
static void shift_chunk(gram *g, const double *x, int64_t m, int64_t d, double *sum) {
  for (int64_t i = 0; i < m; i++) {
    const double *xi = x + i * d;
    if (g->single)
      for (int64_t j = 0; j < d; j++) g->zf[i * d + j] = (float)(xi[j] - g->x0[j]), sum[j] += xi[j] - g->x0[j];
    else
      for (int64_t j = 0; j < d; j++) g->zb[i * d + j] = xi[j] - g->x0[j], sum[j] += xi[j] - g->x0[j];
  }
}

/* out [d][d] += the upper triangle of Zc^T Zc for the shifted chunk Zc [rows][d]. */
static void gram_chunk_update(gram *g, int64_t rows, int64_t d, double *out) {
  if (!g->single) {
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)d, (int)rows, 1.0, g->zb, (int)d, 1.0, out, (int)d);
    return;
  }
  cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)d, (int)rows, 1.0f, g->zf, (int)d, 0.0f, g->cf, (int)d);
  for (int64_t i = 0; i < d; i++)
    for (int64_t j = i; j < d; j++) out[i * d + j] += g->cf[i * d + j];
}

/* [d][d] sum of (x - x0)(x - x0)^T (upper triangle) and [d] sum of (x - x0) over one block, chunk
 * by chunk (the same chunks whichever rank holds the block). */
static sm_status gram_leaf(void *u, int64_t b, double *out) {
  gram *g = u;
  int64_t rows, d = g->bk->x->d, c = gram_chunk(d);
  const double *x = sm__block_rows(g->bk, b, &rows);
  double *sum = out + d * d;
  memset(out, 0, (size_t)(d * d + d) * sizeof *out);
  for (int64_t i0 = 0; i0 < rows; i0 += c) {
    int64_t m = rows - i0 < c ? rows - i0 : c;
    shift_chunk(g, x + i0 * d, m, d, sum);
    gram_chunk_update(g, m, d, out);
  }
  return SM_OK; /* the lower triangle stays 0: sm__pca_gram mirrors the upper one once, after the tree */
}

sm_status sm__pca_gram(sm_ctx *ctx, const sm__blocks *bk, int center, int single, double *mean, double *var,
                       double *C) {
  int64_t d = bk->x->d, n = bk->x->n, c = gram_chunk(d);
  double *acc = NULL, *x0 = NULL;
  gram g = {bk, NULL, single, NULL, NULL, NULL};
  sm_status st = SM_ALLOC(ctx, acc, d * d + d);
  if (st == SM_OK) st = SM_ALLOC(ctx, x0, d);
  if (st == SM_OK && !single) st = SM_ALLOC(ctx, g.zb, c * d);
  if (st == SM_OK && single) st = SM_ALLOC(ctx, g.zf, c * d);
  if (st == SM_OK && single) st = SM_ALLOC(ctx, g.cf, d * d);
  st = sm_ctx_agree(ctx, st);
  int64_t first = 0;
  if (st == SM_OK && center) st = sm__blocks_fetch(ctx, bk, 1, &first, x0);
  else if (st == SM_OK) memset(x0, 0, (size_t)d * sizeof *x0);
  g.x0 = x0;
  sm__tree_op op = {d * d + d, gram_leaf, sm__tree_add, &g};
  if (st == SM_OK) st = sm__tree_reduce(ctx, bk->nb, bk->b0, bk->b1, &op, acc);
  int finite = 1; /* a NaN or infinity anywhere reaches the sums, which every rank holds alike */
  for (int64_t j = 0; st == SM_OK && j < d; j++) finite &= isfinite(acc[d * d + j]) && isfinite(acc[j * d + j]);
  if (st == SM_OK && !finite) st = sm__check_finite(ctx, bk->x);
  if (st == SM_OK && !finite)
    st = SM_ERR(ctx, SM_ERR_DATA, "PCA: the column sums of squares overflow (rescale the data)");
  if (st == SM_OK) {
    const double *S = acc + d * d;
    for (int64_t j = 0; j < d; j++) mean[j] = x0[j] + S[j] / (double)n;
    for (int64_t i = 0; i < d; i++)
      for (int64_t j = 0; j < i; j++) acc[i * d + j] = acc[j * d + i];
    for (int64_t i = 0; i < d; i++)
      for (int64_t j = 0; j < d; j++) {
        double cc = acc[i * d + j] - S[i] * S[j] / (double)n; /* centred */
        C[i * d + j] = center ? cc : acc[i * d + j];
        if (i == j) var[i] = cc / (double)n;
      }
  }
  free(acc), free(x0), free(g.zb), free(g.zf), free(g.cf);
  return st;
}

static sm_status by_syevd(sm_ctx *ctx, grid *g, sm_pca_result *r, const double *c) {
  int d = (int)r->d;
  double *w = NULL, *work = NULL;
  int *iwork = NULL;
  dmat a, z;
  memset(&a, 0, sizeof a), memset(&z, 0, sizeof z);
  sm_status st = SM_ALLOC(ctx, w, d);
  if (st == SM_OK) st = dmat_init(ctx, g, d, d, g->nb, g->nb, g->ctxt, g->pr, g->pc, g->myrow, g->mycol, &a);
  if (st == SM_OK) st = dmat_init(ctx, g, d, d, g->nb, g->nb, g->ctxt, g->pr, g->pc, g->myrow, g->mycol, &z);
  st = sm_ctx_agree(ctx, st);
  int info = 0;
  if (st == SM_OK && g->in_grid) {
    for (int jl = 0; jl < a.locc; jl++) {
      int jl1 = jl + 1, gj = indxl2g_(&jl1, &g->nb, &g->mycol, &I0, &g->pc) - 1;
      for (int il = 0; il < a.locr; il++) {
        int il1 = il + 1, gi = indxl2g_(&il1, &g->nb, &g->myrow, &I0, &g->pr) - 1;
        a.a[il + (size_t)jl * a.lld] = c[(size_t)gi * d + gj];
      }
    }
    double q;
    int lw = -1, liw = -1, iq;
    pdsyevd_("V", "U", &d, a.a, &I1, &I1, a.desc, w, z.a, &I1, &I1, z.desc, &q, &lw, &iq, &liw, &info, 1, 1);
    lw = (int)q + 1, liw = iq + 1;
    work = malloc((size_t)lw * sizeof *work);
    iwork = malloc((size_t)liw * sizeof *iwork);
    if (!work || !iwork) st = SM_ERR(ctx, SM_ERR_NOMEM, "pdsyevd workspace: out of memory");
    else pdsyevd_("V", "U", &d, a.a, &I1, &I1, a.desc, w, z.a, &I1, &I1, z.desc, work, &lw, iwork, &liw, &info, 1, 1);
    if (st == SM_OK && info != 0) st = SM_ERR(ctx, SM_ERR_NUMERIC, "pdsyevd failed (info %d)", info);
  }
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) st = SM_MPI_STATUS(ctx, MPI_Bcast(w, d, MPI_DOUBLE, 0, ctx->comm));
  if (st == SM_OK) st = gather_vectors(ctx, g, &z, d, r->k, 0, d, r->components);
  if (st == SM_OK) {
    for (int j = 0; j < r->k; j++) r->singular_values[j] = sqrt(fmax(w[d - 1 - j], 0.0));
    snprintf(r->solver, sizeof r->solver, "pdsyevd of Z^T Z on a %dx%d grid, block %d", g->pr, g->pc, g->nb);
  }
  free(w), free(work), free(iwork), free(a.a), free(z.a);
  return st;
}

/* The top k eigenpairs of the Gram matrix by LAPACK dsyevr (MRRR) on rank 0, sent to every rank.
 * Used when the grid would be 1x1 anyway (see grid_open): it skips the BLACS set-up, the scatter
 * and pdsyevd's back-transformation of all d eigenvectors, a serial step the other ranks wait
 * for (measured at d = 256: 10 ms -> 2-3 ms). */
static sm_status by_syevr(sm_ctx *ctx, sm_pca_result *r, const double *c) {
  int d = (int)r->d, k = r->k, m = 0, info = 0;
  double *a = NULL, *w = NULL, *z = NULL;
  int *isuppz = NULL;
  sm_status st = SM_OK;
  if (ctx->rank == 0) {
    st = SM_ALLOC(ctx, a, (size_t)d * d);
    if (st == SM_OK) st = SM_ALLOC(ctx, w, d);
    if (st == SM_OK) st = SM_ALLOC(ctx, z, (size_t)d * k);
    if (st == SM_OK) st = SM_ALLOC(ctx, isuppz, 2 * (size_t)k);
  }
  if (ctx->rank == 0 && st == SM_OK) {
    memcpy(a, c, (size_t)d * d * sizeof *a); /* symmetric: its column-major upper triangle is c's */
    info = LAPACKE_dsyevr(LAPACK_COL_MAJOR, 'V', 'I', 'U', d, a, d, 0.0, 0.0, d - k + 1, d, 0.0, &m, w, z, d, isuppz);
    if (info != 0 || m != k) st = SM_ERR(ctx, SM_ERR_NUMERIC, "dsyevr failed (info %d, %d of %d eigenpairs)", info, m, k);
    for (int j = 0; st == SM_OK && j < k; j++) { /* ascending -> descending */
      r->singular_values[j] = sqrt(fmax(w[k - 1 - j], 0.0));
      memcpy(r->components + (size_t)j * d, z + (size_t)(k - 1 - j) * d, (size_t)d * sizeof *z);
    }
  }
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) st = SM_MPI_STATUS(ctx, MPI_Bcast(r->singular_values, k, MPI_DOUBLE, 0, ctx->comm));
  if (st == SM_OK) st = SM_MPI_STATUS(ctx, MPI_Bcast(r->components, k * d, MPI_DOUBLE, 0, ctx->comm));
  if (st == SM_OK) snprintf(r->solver, sizeof r->solver, "LAPACK dsyevr of Z^T Z (top %d eigenpairs) on rank 0", k);
  free(a), free(w), free(z), free(isuppz);
  return st;
}

/* ---- n <= 4d: pdgesvd of Z ---- */

static sm_status by_gesvd(sm_ctx *ctx, const sm__blocks *bk, grid *g, sm_pca_result *r) {
  const sm_rows *x = bk->x;
  int p = ctx->size, n = (int)r->n, d = (int)r->d, mn = n < d ? n : d;
  int mb = (n + p - 1) / p;
  int64_t *need = NULL;
  double *zown = NULL, *z1 = NULL, *s = NULL, *work = NULL;
  dmat a1, a2, vt;
  memset(&a1, 0, sizeof a1), memset(&a2, 0, sizeof a2), memset(&vt, 0, sizeof vt);
  int c1 = g->handle;
  Cblacs_gridinit(&c1, "Row", p, 1);
  int r1, q1, myr1, myc1;
  Cblacs_gridinfo(c1, &r1, &q1, &myr1, &myc1);
  sm_status st = SM_ALLOC(ctx, need, 2 * (size_t)p);
  if (st == SM_OK) st = SM_ALLOC(ctx, zown, x->count * d + 1);
  if (st == SM_OK) st = SM_ALLOC(ctx, s, mn);
  int mine = 0;
  if (st == SM_OK) {
    for (int q = 0; q < p; q++) {
      int64_t f = (int64_t)q * mb < n ? (int64_t)q * mb : n, e = f + mb < n ? f + mb : n;
      need[2 * q] = f, need[2 * q + 1] = e - f;
    }
    mine = (int)need[2 * ctx->rank + 1];
    st = SM_ALLOC(ctx, z1, (int64_t)mine * d + 1);
  }
  if (st == SM_OK) st = dmat_init(ctx, g, n, d, mb, d, c1, p, 1, myr1, myc1, &a1);
  if (st == SM_OK) st = dmat_init(ctx, g, n, d, g->nb, g->nb, g->ctxt, g->pr, g->pc, g->myrow, g->mycol, &a2);
  if (st == SM_OK) st = dmat_init(ctx, g, mn, d, g->nb, g->nb, g->ctxt, g->pr, g->pc, g->myrow, g->mycol, &vt);
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) {
    sm__pca_block(x->x, x->count, d, r->mean, r->scale, zown);
    st = sm__exchange_rows(ctx, bk->ranges, need, zown, z1, (size_t)d * sizeof(double));
  }
  if (st == SM_OK) {
    for (int i = 0; i < mine; i++) /* row-major rows -> column-major local block */
      for (int j = 0; j < d; j++) a1.a[i + (size_t)j * a1.lld] = z1[(size_t)i * d + j];
    pdgemr2d_(&n, &d, a1.a, &I1, &I1, a1.desc, a2.a, &I1, &I1, a2.desc, &c1);
  }
  int info = 0;
  if (st == SM_OK && g->in_grid) {
    double q, dummy = 0;
    int lw = -1;
    pdgesvd_("N", "V", &n, &d, a2.a, &I1, &I1, a2.desc, s, &dummy, &I1, &I1, a2.desc, vt.a, &I1, &I1, vt.desc, &q,
             &lw, &info, 1, 1);
    lw = (int)q + 1;
    work = malloc((size_t)lw * sizeof *work);
    if (!work) st = SM_ERR(ctx, SM_ERR_NOMEM, "pdgesvd workspace: out of memory");
    else
      pdgesvd_("N", "V", &n, &d, a2.a, &I1, &I1, a2.desc, s, &dummy, &I1, &I1, a2.desc, vt.a, &I1, &I1, vt.desc, work,
               &lw, &info, 1, 1);
    if (st == SM_OK && info != 0) st = SM_ERR(ctx, SM_ERR_NUMERIC, "pdgesvd failed (info %d)", info);
  }
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) st = SM_MPI_STATUS(ctx, MPI_Bcast(s, mn, MPI_DOUBLE, 0, ctx->comm));
  if (st == SM_OK) st = gather_vectors(ctx, g, &vt, mn, r->k, 1, d, r->components);
  if (st == SM_OK) {
    memcpy(r->singular_values, s, (size_t)r->k * sizeof *s);
    snprintf(r->solver, sizeof r->solver, "pdgesvd of Z on a %dx%d grid, block %d", g->pr, g->pc, g->nb);
  }
  Cblacs_gridexit(c1);
  free(need), free(zown), free(z1), free(s), free(work), free(a1.a), free(a2.a), free(vt.a);
  return st;
}

sm_status sm__pca_scalapack(sm_ctx *ctx, const sm__blocks *bk, const sm_pca_opts *o, sm_pca_result *r,
                            const double *gram_z) {
  SM_CHECK(ctx, r->d < 46000 && r->n < INT32_MAX, SM_ERR_UNSUPPORTED,
           "exact PCA of %lld x %lld: too large for 32-bit ScaLAPACK indices (use method randomized)",
           (long long)r->n, (long long)r->d);
  double elements = gram_z ? (double)r->d * r->d : (double)r->n * r->d;
  if (gram_z && (o->grid_rows <= 0 || o->grid_cols <= 0) && elements < 1e6) return by_syevr(ctx, r, gram_z);
  grid g;
  SM_TRY(ctx, grid_open(ctx, o, elements, &g));
  int64_t order = gram_z || r->d < r->n ? r->d : r->n;
  if (o->block <= 0 && g.nb > order) g.nb = (int)order; /* pdsyevd rejects (PDORMTR) a block above the order */
  sm_status st = gram_z ? by_syevd(ctx, &g, r, gram_z) : by_gesvd(ctx, bk, &g, r);
  grid_close(&g);
  return st;
}
