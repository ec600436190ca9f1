/* Reductions over the fixed row blocks of a model frame, identical at every rank count:
 *   sm__block_sum  per-block partial sums added by the fixed block tree (src/core/blocktree.h;
 *                  the frame's blocks, in rank order, are the tree's leaves);
 *   sm__tsqr       R of sqrt(w)[X y] by the TSQR of src/core/blocktree.c over the frame's blocks
 *                  (Householder QR of each block, R factors combined in the fixed binary tree);
 *   sm__select     exact order statistics of distributed values by histogram narrowing. */
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/blocktree.h"
#include "internal.h"

/* Allgather of variable-length double arrays (count doubles per rank) into *all. */
sm_status sm__gather_all(sm_ctx *ctx, const double *mine, int count, double **all, int *total) {
  int P = ctx->size, scnt[64], sdsp[64]; /* on the stack up to 64 ranks: one agreement less */
  int *cnt = scnt, *dsp = sdsp;
  sm_status st = SM_OK;
  if (P > 64) {
    cnt = calloc((size_t)P, sizeof *cnt), dsp = calloc((size_t)P, sizeof *dsp);
    st = sm_ctx_agree(ctx, (cnt && dsp) ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory"));
  }
  if (st == SM_OK && MPI_Allgather(&count, 1, MPI_INT, cnt, 1, MPI_INT, ctx->comm))
    st = SM_ERR(ctx, SM_ERR_MPI, "allgather of block counts failed");
  *total = 0;
  for (int r = 0; st == SM_OK && r < P; r++)
    dsp[r] = *total, *total += cnt[r];
  *all = st == SM_OK ? malloc(((size_t)*total + 1) * sizeof **all) : NULL;
  if (st == SM_OK) st = sm_ctx_agree(ctx, *all ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory"));
  if (st == SM_OK && MPI_Allgatherv(mine, count, MPI_DOUBLE, *all, cnt, dsp, MPI_DOUBLE, ctx->comm))
    st = SM_ERR(ctx, SM_ERR_MPI, "allgatherv of block results failed");
  if (cnt != scnt) free(cnt), free(dsp);
  if (st != SM_OK) free(*all), *all = NULL;
  return st;
}

sm_status sm__block_gather(sm_ctx *ctx, const sm_frame *f, int K, const double *part, double **all, int *nblocks) {
  int n = 0;
  SM_TRY(ctx, sm__gather_all(ctx, part, f->nblk * K, all, &n));
  *nblocks = n / K;
  return SM_OK;
}

/* This rank's blocks [*b0, *b0 + f->nblk) of *nb in all: the frame's blocks are in rank order.
 * Collective. */
static sm_status frame_blocks(sm_ctx *ctx, const sm_frame *f, int64_t *nb, int64_t *b0) {
  int *cnt = NULL;
  SM_TRY(ctx, sm_ctx_agree(ctx, SM_ALLOC(ctx, cnt, ctx->size)));
  int rc = MPI_Allgather(&f->nblk, 1, MPI_INT, cnt, 1, MPI_INT, ctx->comm);
  *nb = *b0 = 0;
  for (int r = 0; r < ctx->size; r++)
    *b0 += r < ctx->rank ? cnt[r] : 0, *nb += cnt[r];
  free(cnt);
  return rc == MPI_SUCCESS ? SM_OK : sm__mpi_error(ctx, rc, "MPI_Allgather", __FILE__, __LINE__);
}

typedef struct {
  const double *part; /* [nblk][K] */
  int64_t K, b0;
} partials;

static sm_status partial_leaf(void *u, int64_t b, double *out) {
  const partials *pp = u;
  memcpy(out, pp->part + (b - pp->b0) * pp->K, (size_t)pp->K * sizeof *out);
  return SM_OK;
}

sm_status sm__block_sum(sm_ctx *ctx, const sm_frame *f, int K, const double *part, double *total) {
  int64_t nb = 0, b0 = 0;
  SM_TRY(ctx, frame_blocks(ctx, f, &nb, &b0));
  partials pp = {part, K, b0};
  sm__tree_op op = {K, partial_leaf, sm__tree_add, &pp};
  return sm__tree_reduce(ctx, nb, b0, b0 + f->nblk, &op, total);
}

typedef struct {
  const sm_frame *f;
  const double *wt, *resp;
  int64_t b0;
} frame_rows;

/* Rows of sqrt(wt)[X resp] with wt > 0 of block b. */
static sm_status frame_block_rows(void *u, int64_t b, double *out, int64_t *rows) {
  const frame_rows *fr = u;
  const sm_frame *f = fr->f;
  int p = f->p, K = p + 1;
  int64_t lb = b - fr->b0, m = 0;
  for (int64_t i = f->blk_off[lb]; i < f->blk_off[lb + 1]; i++) {
    if (!(fr->wt[i] > 0)) continue;
    double s = fr->wt[i] == 1 ? 1 : sqrt(fr->wt[i]);
    const double *xi = f->x + i * p;
    for (int j = 0; j < p; j++)
      out[m * K + j] = s * xi[j];
    out[m * K + p] = s * fr->resp[i];
    m++;
  }
  *rows = m;
  return SM_OK;
}

sm_status sm__tsqr(sm_ctx *ctx, const sm_frame *f, const double *wt, const double *resp, double *R) {
  int64_t nb = 0, maxm = 0;
  frame_rows fr = {f, wt, resp, 0};
  for (int b = 0; b < f->nblk; b++)
    if (f->blk_off[b + 1] - f->blk_off[b] > maxm) maxm = f->blk_off[b + 1] - f->blk_off[b];
  SM_TRY(ctx, frame_blocks(ctx, f, &nb, &fr.b0));
  return sm__tree_tsqr(ctx, nb, fr.b0, fr.b0 + f->nblk, f->p + 1, maxm, frame_block_rows, &fr, R);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

#define NBINS 1024
#define GATHER_MAX 8192

/* One order statistic: the k-th smallest (0-based) of the distributed values. */
static sm_status select_one(sm_ctx *ctx, const double *v, int64_t n, int64_t k, double lo, double hi, double *out) {
  int64_t below = 0;
  int64_t *cnt = malloc(2 * NBINS * sizeof *cnt);
  SM_TRY(ctx, sm_ctx_agree(ctx, cnt ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory")));
  sm_status st = SM_OK;
  for (;;) {
    if (lo == hi) {
      *out = lo;
      break;
    }
    int64_t c = 0, C = 0;
    for (int64_t i = 0; i < n; i++)
      c += v[i] >= lo && v[i] <= hi;
    MPI_Allreduce(&c, &C, 1, MPI_INT64_T, MPI_SUM, ctx->comm);
    if (C <= GATHER_MAX) {
      double *cand = malloc(((size_t)c + 1) * sizeof *cand), *all = NULL;
      int m = 0, total = 0;
      for (int64_t i = 0; cand && i < n; i++)
        if (v[i] >= lo && v[i] <= hi) cand[m++] = v[i];
      st = sm_ctx_agree(ctx, cand ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory"));
      if (st == SM_OK) st = sm__gather_all(ctx, cand, m, &all, &total);
      if (st == SM_OK) {
        /* partial selection would do; the candidates are few */
        for (int i = 1; i < total; i++) {
          double x = all[i];
          int j = i - 1;
          while (j >= 0 && all[j] > x)
            all[j + 1] = all[j], j--;
          all[j + 1] = x;
        }
        *out = all[k - below];
      }
      free(cand), free(all);
      break;
    }
    double scale = NBINS / (hi - lo);
    int64_t *h = cnt, *g = cnt + NBINS;
    memset(h, 0, NBINS * sizeof *h);
    for (int64_t i = 0; i < n; i++)
      if (v[i] >= lo && v[i] <= hi) {
        int b = (int)((v[i] - lo) * scale);
        h[b < NBINS ? b : NBINS - 1]++;
      }
    MPI_Allreduce(h, g, NBINS, MPI_INT64_T, MPI_SUM, ctx->comm);
    int j = 0;
    while (j < NBINS - 1 && below + g[j] <= k)
      below += g[j++];
    double mm[2] = {INFINITY, INFINITY}, gm[2];
    for (int64_t i = 0; i < n; i++)
      if (v[i] >= lo && v[i] <= hi) {
        int b = (int)((v[i] - lo) * scale);
        if ((b < NBINS ? b : NBINS - 1) == j) mm[0] = fmin(mm[0], v[i]), mm[1] = fmin(mm[1], -v[i]);
      }
    MPI_Allreduce(mm, gm, 2, MPI_DOUBLE, MPI_MIN, ctx->comm);
    lo = gm[0], hi = -gm[1];
  }
  free(cnt);
  return st;
}

static int bin_of(double x, double lo, double scale, int nb) {
  int b = (int)((x - lo) * scale);
  return b < nb ? b : nb - 1;
}

/* All order statistics at once: one histogram of NBINS4 bins over [lo, hi], the global minimum
 * and maximum of the values (monotone binning: each bin holds a contiguous range of the sorted
 * values), then the values of the bins holding a wanted rank are gathered (one more pass) and
 * sorted. A bin too full to gather (heavy ties, outliers) falls back to the iterative narrowing of
 * select_one. */
#define NBINS4 4096
sm_status sm__select_range(sm_ctx *ctx, const double *v, int64_t n, int64_t n_total, int nk, const int64_t *k,
                           double lo, double hi, double *out) {
  for (int i = 0; i < nk; i++)
    SM_CHECK(ctx, k[i] >= 0 && k[i] < n_total, SM_ERR_INTERNAL, "order statistic %lld of %lld", (long long)k[i],
             (long long)n_total);
  if (lo == hi) {
    for (int i = 0; i < nk; i++)
      out[i] = lo;
    return SM_OK;
  }
  double scale = NBINS4 / (hi - lo);
  /* the histogram, its global sum and the wanted-bin flags in one allocation */
  int64_t *h = calloc(2 * NBINS4 + NBINS4 / 8, sizeof *h);
  /* room for every local value (address space only: just the candidates' pages are touched), so
   * that one agreement covers both allocations */
  double *cand = malloc(((size_t)n + 1) * sizeof *cand), *all = NULL;
  if (!h || !cand) free(h), free(cand), h = NULL, cand = NULL;
  SM_TRY(ctx, sm_ctx_agree(ctx, h ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory")));
  int64_t *gh = h + NBINS4;
  unsigned char *want = (unsigned char *)(gh + NBINS4);
  for (int64_t i = 0; i < n; i++)
    h[bin_of(v[i], lo, scale, NBINS4)]++;
  sm_status st =
      MPI_Allreduce(h, gh, NBINS4, MPI_INT64_T, MPI_SUM, ctx->comm) ? SM_ERR(ctx, SM_ERR_MPI, "allreduce") : SM_OK;
  int bin[64];
  int64_t below[64];
  for (int i = 0; st == SM_OK && i < nk && i < 64; i++) {
    int64_t cum = 0;
    int b = 0;
    while (b < NBINS4 - 1 && cum + gh[b] <= k[i])
      cum += gh[b++];
    bin[i] = b, below[i] = cum;
    if (gh[b] <= GATHER_MAX) want[b] = 1;
  }
  int total = 0;
  if (st == SM_OK) {
    int64_t c = 0;
    for (int64_t i = 0; i < n; i++)
      if (want[bin_of(v[i], lo, scale, NBINS4)]) cand[c++] = v[i];
    st = sm__gather_all(ctx, cand, (int)c, &all, &total);
  }
  if (st == SM_OK) {
    qsort(all, (size_t)total, sizeof *all, cmp_double); /* sorted, so each bin is a contiguous run */
    for (int i = 0; st == SM_OK && i < nk && i < 64; i++) {
      if (!want[bin[i]]) {
        st = select_one(ctx, v, n, k[i], lo, hi, &out[i]);
        continue;
      }
      int64_t j = 0;
      while (j < total && bin_of(all[j], lo, scale, NBINS4) < bin[i])
        j++;
      out[i] = all[j + (k[i] - below[i])];
    }
  }
  free(h), free(cand), free(all);
  return st;
}

/* Global minimum and maximum (comparisons, not fmin: a libm call per value at -O2). */
static sm_status global_range(sm_ctx *ctx, const double *v, int64_t n, double *lo, double *hi) {
  double mm[2] = {INFINITY, INFINITY}, g[2];
  for (int64_t i = 0; i < n; i++) {
    double x = v[i];
    mm[0] = x < mm[0] ? x : mm[0];
    mm[1] = -x < mm[1] ? -x : mm[1];
  }
  SM_MPI(ctx, MPI_Allreduce(mm, g, 2, MPI_DOUBLE, MPI_MIN, ctx->comm));
  *lo = g[0], *hi = -g[1];
  return SM_OK;
}

sm_status sm__select(sm_ctx *ctx, const double *v, int64_t n, int64_t n_total, int nk, const int64_t *k, double *out) {
  double lo, hi;
  SM_TRY(ctx, global_range(ctx, v, n, &lo, &hi));
  return sm__select_range(ctx, v, n, n_total, nk, k, lo, hi, out);
}

sm_status sm__quantiles5_range(sm_ctx *ctx, const double *v, int64_t n, int64_t N, double vlo, double vhi, double q[5]) {
  if (N == 0) {
    for (int i = 0; i < 5; i++)
      q[i] = NAN;
    return SM_OK;
  }
  int64_t k[10];
  double idx[5], x[10];
  for (int i = 0; i < 5; i++) {
    idx[i] = 1 + (double)(N - 1) * (0.25 * i); /* R quantile type 7, 1-based index */
    k[2 * i] = (int64_t)floor(idx[i]) - 1;
    k[2 * i + 1] = (int64_t)ceil(idx[i]) - 1;
  }
  SM_TRY(ctx, sm__select_range(ctx, v, n, N, 10, k, vlo, vhi, x));
  for (int i = 0; i < 5; i++) {
    double lo = x[2 * i], hi = x[2 * i + 1], h = idx[i] - floor(idx[i]);
    q[i] = (h > 0 && hi != lo) ? (1 - h) * lo + h * hi : lo;
  }
  return SM_OK;
}

sm_status sm__quantiles5(sm_ctx *ctx, const double *v, int64_t n, double q[5]) {
  int64_t N = 0;
  double lo, hi;
  SM_MPI(ctx, MPI_Allreduce(&n, &N, 1, MPI_INT64_T, MPI_SUM, ctx->comm));
  SM_TRY(ctx, global_range(ctx, v, n, &lo, &hi));
  return sm__quantiles5_range(ctx, v, n, N, lo, hi, q);
}

/* X'X of a block of unit-weight rows without OpenBLAS's packing copies (which cost more than its
 * kernel at p = 16, k = 4096): 4 x 8 (or 4 x 4) tiles of the upper triangle held in AVX2 registers,
 * each a plain sum over the block's rows in row order, so the block result depends only on the
 * block. About 2x dsyrk here; used for p a multiple of 4 on CPUs with AVX2 and FMA, else dsyrk. */
#if defined(__x86_64__) && defined(__GNUC__)
#define SM_GRAM_AVX2 1
typedef double sm_v4 __attribute__((vector_size(32)));
__attribute__((target("avx2,fma"))) static inline sm_v4 load4(const double *p) {
  sm_v4 v;
  memcpy(&v, p, sizeof v);
  return v;
}
/* rows j0..j0+3 by columns c0..c0+7 (c0+3 with w4) of X'X for the nb rows of x (stride p) */
__attribute__((target("avx2,fma"))) static void gram_tile48(const double *x, int64_t nb, int p, int j0, int c0,
                                                              double *G, int ldg) {
  sm_v4 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, b0 = {0}, b1 = {0}, b2 = {0}, b3 = {0};
  for (int64_t i = 0; i < nb; i++) {
    const double *xi = x + i * p;
    sm_v4 u = load4(xi + c0), v = load4(xi + c0 + 4);
    double s0 = xi[j0], s1 = xi[j0 + 1], s2 = xi[j0 + 2], s3 = xi[j0 + 3];
    a0 += s0 * u, b0 += s0 * v, a1 += s1 * u, b1 += s1 * v;
    a2 += s2 * u, b2 += s2 * v, a3 += s3 * u, b3 += s3 * v;
  }
  const sm_v4 *acc[8] = {&a0, &b0, &a1, &b1, &a2, &b2, &a3, &b3};
  for (int t = 0; t < 4; t++)
    for (int l = 0; l < 4; l++)
      G[(j0 + t) + (c0 + l) * ldg] = (*acc[2 * t])[l], G[(j0 + t) + (c0 + 4 + l) * ldg] = (*acc[2 * t + 1])[l];
}
__attribute__((target("avx2,fma"))) static void gram_tile44(const double *x, int64_t nb, int p, int j0, int c0,
                                                              double *G, int ldg) {
  sm_v4 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
  for (int64_t i = 0; i < nb; i++) {
    const double *xi = x + i * p;
    sm_v4 u = load4(xi + c0);
    a0 += xi[j0] * u, a1 += xi[j0 + 1] * u, a2 += xi[j0 + 2] * u, a3 += xi[j0 + 3] * u;
  }
  const sm_v4 *acc[4] = {&a0, &a1, &a2, &a3};
  for (int t = 0; t < 4; t++)
    for (int l = 0; l < 4; l++)
      G[(j0 + t) + (c0 + l) * ldg] = (*acc[t])[l];
}
/* G's upper triangle (and some entries below it, which dpotrf never reads) */
static void gram_avx2(const double *x, int64_t nb, int p, double *G, int ldg) {
  for (int j0 = 0; j0 < p; j0 += 4)
    for (int c0 = (j0 / 8) * 8; c0 < p; c0 += 8)
      if (c0 + 8 <= p)
        gram_tile48(x, nb, p, j0, c0, G, ldg);
      else
        gram_tile44(x, nb, p, j0, c0, G, ldg);
}
static int gram_avx2_ok(int p) {
  return p >= 4 && p % 4 == 0 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#else
#define SM_GRAM_AVX2 0
static void gram_avx2(const double *x, int64_t nb, int p, double *G, int ldg) { (void)x, (void)nb, (void)p, (void)G, (void)ldg; }
static int gram_avx2_ok(int p) { (void)p; return 0; }
#endif

/* The Cholesky route: per-block Gram matrices of sqrt(wt)[X resp] (unit weights: X'X by gram_avx2
 * or dsyrk straight from the frame, X'y by dgemv; else dsyrk on a contiguous row-major copy),
 * summed by the fixed block tree, then R from dpotrf. Exact in exact arithmetic (the
 * Cholesky factor of [X y]'W[X y] is TSQR's R up to signs), and half the flops of Householder, but
 * it squares the condition number: the result is kept only when the column-equilibrated R has an
 * estimated condition number below SM_GRAM_MAX_COND (relative error below ~ cond^2 eps = 2e-10)
 * and the residual sum of squares is not a cancellation (> 1e-8 of y'Wy); otherwise *ok = 0 and
 * the caller runs TSQR. Collective; the decision is made on identical values on every rank. */
#define SM_GRAM_MAX_COND 1e3
static sm_status gram_r(sm_ctx *ctx, const sm_frame *f, const double *wt, const double *resp, double *R, int *ok) {
  int p = f->p, K = p + 1;
  int64_t maxm = 0;
  for (int b = 0; b < f->nblk; b++)
    if (f->blk_off[b + 1] - f->blk_off[b] > maxm) maxm = f->blk_off[b + 1] - f->blk_off[b];
  double *a = malloc(((size_t)maxm * K + 1) * sizeof *a), *part = calloc((size_t)f->nblk * K * K + 1, sizeof *part);
  SM_TRY(ctx, sm_ctx_agree(ctx, a && part ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory")));
  int fast = gram_avx2_ok(p);
  for (int b = 0; b < f->nblk; b++) {
    int64_t o = f->blk_off[b], nb = f->blk_off[b + 1] - o, unit = 1;
    for (int64_t i = o; i < o + nb && unit; i++)
      unit = wt[i] == 1;
    if (unit) { /* unit weights: X'X, X'y, y'y straight from the frame, no copy */
      double *G = part + (size_t)b * K * K;
      if (fast)
        gram_avx2(f->x + o * p, nb, p, G, K);
      else
        cblas_dsyrk(CblasColMajor, CblasUpper, CblasNoTrans, p, (int)nb, 1.0, f->x + o * p, p, 0.0, G, K);
      cblas_dgemv(CblasColMajor, CblasNoTrans, p, (int)nb, 1.0, f->x + o * p, p, resp + o, 1, 0.0, G + (size_t)p * K,
                  1);
      G[p + p * K] = cblas_ddot((int)nb, resp + o, 1, resp + o, 1);
      continue;
    }
    int m = 0;
    for (int64_t i = f->blk_off[b]; i < f->blk_off[b + 1]; i++) {
      if (!(wt[i] > 0)) continue;
      double s = wt[i] == 1 ? 1 : sqrt(wt[i]), *ai = a + (size_t)m * K;
      const double *xi = f->x + i * p;
      for (int j = 0; j < p; j++)
        ai[j] = s * xi[j];
      ai[p] = s * resp[i];
      m++;
    }
    if (m) cblas_dsyrk(CblasColMajor, CblasUpper, CblasNoTrans, K, m, 1.0, a, K, 0.0, part + (size_t)b * K * K, K);
  }
  sm_status st = sm__block_sum(ctx, f, K * K, part, R);
  free(a), free(part);
  if (st != SM_OK) return st;
  for (int j = 0; j < K; j++)
    for (int i = j + 1; i < K; i++)
      R[i + j * K] = 0;
  double yy = R[p + p * K], d[SM_FORMULA_MAX_VARS * 64];
  *ok = p < (int)(sizeof d / sizeof d[0]) && LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'U', K, R, K) == 0;
  if (*ok) {
    double *s = malloc((size_t)p * p * sizeof *s + 8), rcond = 0;
    for (int j = 0; j < p; j++) {
      double n2 = 0;
      for (int i = 0; i <= j; i++)
        n2 += R[i + j * K] * R[i + j * K];
      d[j] = n2 > 0 ? 1 / sqrt(n2) : 0;
    }
    for (int j = 0; s && j < p; j++)
      for (int i = 0; i < p; i++)
        s[i + j * p] = i <= j ? R[i + j * K] * d[j] : 0;
    if (!s || LAPACKE_dtrcon(LAPACK_COL_MAJOR, '1', 'U', 'N', p, s, p, &rcond) != 0 || !(rcond * SM_GRAM_MAX_COND > 1))
      *ok = 0;
    if (!(R[p + p * K] * R[p + p * K] > 1e-8 * yy)) *ok = 0;
    free(s);
  }
  return SM_OK;
}

sm_status sm__fit_r(sm_ctx *ctx, const sm_frame *f, const double *wt, const double *resp, int allow_gram, double *R,
                    int *used_gram) {
  int ok = 0;
  if (allow_gram) SM_TRY(ctx, gram_r(ctx, f, wt, resp, R, &ok));
  if (used_gram) *used_gram = ok;
  if (ok) return SM_OK;
  return sm__tsqr(ctx, f, wt, resp, R);
}
