/* Reductions over the fixed row blocks of a model frame, identical at every rank count:
 *   sm__block_sum  per-block partial sums added by the fixed block tree (src/core/blocktree.h;
 *                  the frame's blocks, in rank order, are the tree's leaves);
 *   sm__tsqr       R of sqrt(w)[X y] by the TSQR of src/core/blocktree.c over the frame's blocks
 *                  (Householder QR of each block, R factors combined in the fixed binary tree);
 *   sm__quantiles5 exact quantiles of distributed values by a histogram and a gather of the few
 *                  values of the wanted bins. */
#include <cblas.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif
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

sm_status sm__exchange(sm_ctx *ctx, const double *rec, int k, const int64_t *cnt, double **out, int64_t *m) {
  int P = ctx->size;
  int *sc = calloc(4 * (size_t)P, sizeof *sc), *sd = sc + P, *rc = sd + P, *rd = rc + P;
  int64_t sent = 0, got = 0;
  *out = NULL, *m = 0;
  for (int r = 0; sc && r < P; r++)
    sent += cnt[r];
  sm_status st = !sc ? SM_ERR(ctx, SM_ERR_NOMEM, "out of memory")
                 : sent * k > INT32_MAX
                     ? SM_ERR(ctx, SM_ERR_DATA, "%lld records to exchange on one rank", (long long)sent)
                     : SM_OK;
  st = sm_ctx_agree(ctx, st);
  for (int r = 0; st == SM_OK && r < P; r++)
    sc[r] = (int)(cnt[r] * k), sd[r] = r ? sd[r - 1] + sc[r - 1] : 0;
  if (st == SM_OK && MPI_Alltoall(sc, 1, MPI_INT, rc, 1, MPI_INT, ctx->comm))
    st = SM_ERR(ctx, SM_ERR_MPI, "alltoall of record counts");
  for (int r = 0; st == SM_OK && r < P; r++)
    rd[r] = (int)got, got += rc[r];
  if (st == SM_OK && got > INT32_MAX)
    st = SM_ERR(ctx, SM_ERR_DATA, "%lld records arrive on one rank", (long long)got / k);
  if (st == SM_OK && !(*out = malloc(((size_t)got + 1) * sizeof **out)))
    st = SM_ERR(ctx, SM_ERR_NOMEM, "out of memory");
  st = sm_ctx_agree(ctx, st); /* a failure on one rank stops them all before the exchange */
  if (st == SM_OK && MPI_Alltoallv(rec, sc, sd, MPI_DOUBLE, *out, rc, rd, MPI_DOUBLE, ctx->comm))
    st = SM_ERR(ctx, SM_ERR_MPI, "alltoallv of records");
  free(sc);
  if (st != SM_OK) {
    free(*out), *out = NULL;
    return st;
  }
  *m = got / k;
  return SM_OK;
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

static int64_t wanted_values(const double *v, int64_t n, const sm__qbins *bn, const unsigned char *want, double *cand);

/* All order statistics at once from the local histogram h of the values (SM_QBINS bins of
 * sm__qbin: monotone, so each bin holds a contiguous run of the sorted values): the global
 * histogram by one allreduce, then the values of the bins holding a wanted rank are gathered (one
 * more pass) and sorted. The ranks 0 and n_total - 1 are the known minimum and maximum. A bin too
 * full to gather (heavy ties, outliers) falls back to the iterative narrowing of select_one. h is
 * overwritten. */
static sm_status select_hist(sm_ctx *ctx, const double *v, int64_t n, int64_t n_total, int nk, const int64_t *k,
                             double vmin, double vmax, const sm__qbins *bn, int64_t *h, double *out) {
  for (int i = 0; i < nk; i++)
    SM_CHECK(ctx, k[i] >= 0 && k[i] < n_total && nk <= 64, SM_ERR_INTERNAL, "order statistic %lld of %lld",
             (long long)k[i], (long long)n_total);
  /* the global histogram and the wanted-bin flags in one allocation */
  int64_t *gh = calloc(SM_QBINS + SM_QBINS / 8, sizeof *gh);
  /* room for every local value (address space only: just the candidates' pages are touched), so
   * that one agreement covers both allocations */
  double *cand = malloc(((size_t)n + 1) * sizeof *cand), *all = NULL;
  if (!gh || !cand) free(gh), free(cand), gh = NULL, cand = NULL;
  SM_TRY(ctx, sm_ctx_agree(ctx, gh ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory")));
  unsigned char *want = (unsigned char *)(gh + SM_QBINS);
  sm_status st =
      MPI_Allreduce(h, gh, SM_QBINS, MPI_INT64_T, MPI_SUM, ctx->comm) ? SM_ERR(ctx, SM_ERR_MPI, "allreduce") : SM_OK;
  int bin[64];
  int64_t below[64];
  for (int i = 0; st == SM_OK && i < nk; i++) {
    int64_t cum = 0;
    int b = 0;
    while (b < SM_QBINS - 1 && cum + gh[b] <= k[i])
      cum += gh[b++];
    bin[i] = b, below[i] = cum;
    if (gh[b] <= GATHER_MAX && k[i] > 0 && k[i] < n_total - 1) want[b] = 1;
  }
  int total = 0;
  if (st == SM_OK) {
    st = sm__gather_all(ctx, cand, (int)wanted_values(v, n, bn, want, cand), &all, &total);
  }
  if (st == SM_OK) qsort(all, (size_t)total, sizeof *all, cmp_double); /* each bin is a contiguous run */
  for (int i = 0; st == SM_OK && i < nk; i++) {
    if (k[i] == 0 || k[i] == n_total - 1) {
      out[i] = k[i] == 0 ? vmin : vmax;
    } else if (!want[bin[i]]) {
      st = select_one(ctx, v, n, k[i], vmin, vmax, &out[i]);
    } else {
      int64_t j = 0;
      while (j < total && sm__qbin(bn, all[j]) < bin[i])
        j++;
      out[i] = all[j + (k[i] - below[i])];
    }
  }
  free(gh), free(cand), free(all);
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

sm__qbins sm__qbins_over(double lo, double hi) {
  sm__qbins bn = {lo, hi > lo ? SM_QBINS / (hi - lo) : 0};
  return bn;
}

sm_status sm__quantiles5_hist(sm_ctx *ctx, const double *v, int64_t n, int64_t N, double vmin, double vmax,
                              const sm__qbins *bn, int64_t *h, double q[5]) {
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
  SM_TRY(ctx, select_hist(ctx, v, n, N, 10, k, vmin, vmax, bn, h, x));
  for (int i = 0; i < 5; i++) {
    double lo = x[2 * i], hi = x[2 * i + 1], f = idx[i] - floor(idx[i]);
    q[i] = (f > 0 && hi != lo) ? (1 - f) * lo + f * hi : lo;
  }
  return SM_OK;
}

sm_status sm__quantiles5(sm_ctx *ctx, const double *v, int64_t n, double q[5]) {
  int64_t N = 0;
  double lo = 0, hi = 0;
  SM_MPI(ctx, MPI_Allreduce(&n, &N, 1, MPI_INT64_T, MPI_SUM, ctx->comm));
  SM_TRY(ctx, global_range(ctx, v, n, &lo, &hi));
  sm__qbins bn = sm__qbins_over(lo, hi);
  int64_t *h = calloc(SM_QBINS, sizeof *h);
  SM_TRY(ctx, sm_ctx_agree(ctx, h ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory")));
  for (int64_t i = 0; i < n; i++)
    h[sm__qbin(&bn, v[i])]++;
  sm_status st = sm__quantiles5_hist(ctx, v, n, N, lo, hi, &bn, h, q);
  free(h);
  return st;
}

/* [X y]'[X y] of a block of unit-weight rows without OpenBLAS's packing copies (which cost more
 * than its kernel at p = 16, k = 4096) and per-call costs (dgemv + ddot for X'y took a quarter of
 * the tiles' time): tiles of the upper triangle held in AVX2 registers, 12 independent FMA chains
 * where the shape allows (gram_tiles), each entry a sum over the block's rows in row order, so the
 * block result depends only on the block. The rows are taken GRAM_CHUNK at a time (8 KB at
 * p = 16): the chunk comes from memory once, for the first tile (the hardware prefetcher follows
 * the stream; software prefetches only slowed it), and from L1 for the others; the accumulators
 * go through memory between chunks, which leaves every sum as it was. Used for p a multiple of 4
 * on CPUs with AVX2 and FMA, else dsyrk. */
#if defined(__x86_64__) && defined(__GNUC__)
#define SM_GRAM_AVX2 1
#define GRAM_CHUNK 64
typedef double sm_v4 __attribute__((vector_size(32)));
__attribute__((target("avx2,fma"))) static inline sm_v4 load4(const double *p) {
  sm_v4 v;
  memcpy(&v, p, sizeof v);
  return v;
}
__attribute__((target("avx2,fma"))) static inline void store4(double *p, sm_v4 v) { memcpy(p, &v, sizeof v); }
/* G[j0:j0+4, c0:c0+8] (G row-major by tile: t[(r * 8) + c]) += rows [0, m) of x (stride p) */
__attribute__((target("avx2,fma"))) static void gram_tile48(const double *x, int64_t m, int p, int j0, int c0,
                                                            double *t) {
  sm_v4 a0 = load4(t), b0 = load4(t + 4), a1 = load4(t + 8), b1 = load4(t + 12);
  sm_v4 a2 = load4(t + 16), b2 = load4(t + 20), a3 = load4(t + 24), b3 = load4(t + 28);
  for (int64_t i = 0; i < m; i++) {
    const double *xi = x + i * p;
    sm_v4 u = load4(xi + c0), v = load4(xi + c0 + 4);
    double s0 = xi[j0], s1 = xi[j0 + 1], s2 = xi[j0 + 2], s3 = xi[j0 + 3];
    a0 += s0 * u, b0 += s0 * v, a1 += s1 * u, b1 += s1 * v;
    a2 += s2 * u, b2 += s2 * v, a3 += s3 * u, b3 += s3 * v;
  }
  store4(t, a0), store4(t + 4, b0), store4(t + 8, a1), store4(t + 12, b1);
  store4(t + 16, a2), store4(t + 20, b2), store4(t + 24, a3), store4(t + 28, b3);
}
/* two 4 x 4 tiles, (j0, c0) and (k0, d0) (k0 < 0: the first only), t and t + 16 */
__attribute__((target("avx2,fma"))) static void gram_tile44x2(const double *x, int64_t m, int p, int j0, int c0, int k0,
                                                              int d0, double *t) {
  sm_v4 a0 = load4(t), a1 = load4(t + 4), a2 = load4(t + 8), a3 = load4(t + 12);
  sm_v4 b0 = load4(t + 16), b1 = load4(t + 20), b2 = load4(t + 24), b3 = load4(t + 28);
  int two = k0 >= 0;
  if (!two) k0 = j0, d0 = c0; /* computed twice, stored once */
  for (int64_t i = 0; i < m; i++) {
    const double *xi = x + i * p;
    sm_v4 u = load4(xi + c0), v = load4(xi + d0);
    a0 += xi[j0] * u, a1 += xi[j0 + 1] * u, a2 += xi[j0 + 2] * u, a3 += xi[j0 + 3] * u;
    b0 += xi[k0] * v, b1 += xi[k0 + 1] * v, b2 += xi[k0 + 2] * v, b3 += xi[k0 + 3] * v;
  }
  store4(t, a0), store4(t + 4, a1), store4(t + 8, a2), store4(t + 12, a3);
  if (two) store4(t + 16, b0), store4(t + 20, b1), store4(t + 24, b2), store4(t + 28, b3);
}

/* G[j0:j0+4, c0:c0+12] += rows [0, m) of x (t[r * 12 + c]): 12 FMA chains */
__attribute__((target("avx2,fma"))) static void gram_tile412(const double *x, int64_t m, int p, int j0, int c0,
                                                             double *t) {
  sm_v4 a0 = load4(t), b0 = load4(t + 4), c_0 = load4(t + 8), a1 = load4(t + 12), b1 = load4(t + 16);
  sm_v4 c1 = load4(t + 20), a2 = load4(t + 24), b2 = load4(t + 28), c2 = load4(t + 32), a3 = load4(t + 36);
  sm_v4 b3 = load4(t + 40), c3 = load4(t + 44);
  for (int64_t i = 0; i < m; i++) {
    const double *xi = x + i * p;
    sm_v4 u = load4(xi + c0), v = load4(xi + c0 + 4), w = load4(xi + c0 + 8);
    double s0 = xi[j0], s1 = xi[j0 + 1], s2 = xi[j0 + 2], s3 = xi[j0 + 3];
    a0 += s0 * u, b0 += s0 * v, c_0 += s0 * w, a1 += s1 * u, b1 += s1 * v, c1 += s1 * w;
    a2 += s2 * u, b2 += s2 * v, c2 += s2 * w, a3 += s3 * u, b3 += s3 * v, c3 += s3 * w;
  }
  store4(t, a0), store4(t + 4, b0), store4(t + 8, c_0), store4(t + 12, a1), store4(t + 16, b1);
  store4(t + 20, c1), store4(t + 24, a2), store4(t + 28, b2), store4(t + 32, c2), store4(t + 36, a3);
  store4(t + 40, b3), store4(t + 44, c3);
}
/* G[j0:j0+3, c0:c0+16] += rows [0, m) of x (t[r * 16 + c]): 12 FMA chains; the first row group of
 * a model with an intercept (rows 1-3; row 0 is the column sums). Reads whole 128-byte rows at
 * p = 16, so the chunk streams in by full cache lines. */
__attribute__((target("avx2,fma"))) static void gram_tile316(const double *x, int64_t m, int p, int j0, int c0,
                                                             double *t) {
  sm_v4 a0 = load4(t), b0 = load4(t + 4), c_0 = load4(t + 8), d0 = load4(t + 12), a1 = load4(t + 16);
  sm_v4 b1 = load4(t + 20), c1 = load4(t + 24), d1 = load4(t + 28), a2 = load4(t + 32), b2 = load4(t + 36);
  sm_v4 c2 = load4(t + 40), d2 = load4(t + 44);
  for (int64_t i = 0; i < m; i++) {
    const double *xi = x + i * p;
    sm_v4 u = load4(xi + c0), v = load4(xi + c0 + 4), w = load4(xi + c0 + 8), z = load4(xi + c0 + 12);
    double s0 = xi[j0], s1 = xi[j0 + 1], s2 = xi[j0 + 2];
    a0 += s0 * u, b0 += s0 * v, c_0 += s0 * w, d0 += s0 * z;
    a1 += s1 * u, b1 += s1 * v, c1 += s1 * w, d1 += s1 * z;
    a2 += s2 * u, b2 += s2 * v, c2 += s2 * w, d2 += s2 * z;
  }
  store4(t, a0), store4(t + 4, b0), store4(t + 8, c_0), store4(t + 12, d0), store4(t + 16, a1);
  store4(t + 20, b1), store4(t + 24, c1), store4(t + 28, d1), store4(t + 32, a2), store4(t + 36, b2);
  store4(t + 40, c2), store4(t + 44, d2);
}
/* a 4 x 8 tile (j0, c0) and a 4 x 4 tile (k0, d0) in one loop, t and t + 32: 12 FMA chains */
__attribute__((target("avx2,fma"))) static void gram_tile48_44(const double *x, int64_t m, int p, int j0, int c0,
                                                               int k0, int d0, double *t) {
  sm_v4 a0 = load4(t), b0 = load4(t + 4), a1 = load4(t + 8), b1 = load4(t + 12);
  sm_v4 a2 = load4(t + 16), b2 = load4(t + 20), a3 = load4(t + 24), b3 = load4(t + 28);
  sm_v4 e0 = load4(t + 32), e1 = load4(t + 36), e2 = load4(t + 40), e3 = load4(t + 44);
  for (int64_t i = 0; i < m; i++) {
    const double *xi = x + i * p;
    sm_v4 u = load4(xi + c0), v = load4(xi + c0 + 4), w = load4(xi + d0);
    a0 += xi[j0] * u, b0 += xi[j0] * v, a1 += xi[j0 + 1] * u, b1 += xi[j0 + 1] * v;
    a2 += xi[j0 + 2] * u, b2 += xi[j0 + 2] * v, a3 += xi[j0 + 3] * u, b3 += xi[j0 + 3] * v;
    e0 += xi[k0] * w, e1 += xi[k0 + 1] * w, e2 += xi[k0 + 2] * w, e3 += xi[k0 + 3] * w;
  }
  store4(t, a0), store4(t + 4, b0), store4(t + 8, a1), store4(t + 12, b1);
  store4(t + 16, a2), store4(t + 20, b2), store4(t + 24, a3), store4(t + 28, b3);
  store4(t + 32, e0), store4(t + 36, e1), store4(t + 40, e2), store4(t + 44, e3);
}

/* X'y and y'y of rows [0, m) of x (stride p) and y, added to t ([5p + 4]: four partial sums of
 * X'y, rows i mod 4, at t + (i % 4) p; y'y in 4 lanes at t + 4p; with sums, also the column sums
 * of x at t + 4p + 4, by adds: X'1, the intercept's row of the Gram). 8 columns at a time, 4 rows
 * a step: 8 FMA chains, and each loaded vector feeds its FMA and the column sum (added a pair of
 * rows at a time) from a register - left to itself GCC folds the loads into the FMAs and loads
 * the same vectors again for the adds, which made this loop load-bound. */
__attribute__((target("avx2,fma"), always_inline)) static inline void
gram_xy_(const double *x, const double *y, int64_t m, int p, double *t, const int sums) {
  int64_t i;
  double *ts = t + 4 * p + 4;
  for (int c0 = 0; c0 < p; c0 += 8) {
    int w8 = c0 + 8 <= p; /* else the last 4 columns */
    sm_v4 a0 = load4(t + c0), a1 = load4(t + p + c0), a2 = load4(t + 2 * p + c0), a3 = load4(t + 3 * p + c0);
    sm_v4 b0 = {0}, b1 = {0}, b2 = {0}, b3 = {0}, s0 = {0}, s1 = {0};
    if (w8)
      b0 = load4(t + c0 + 4), b1 = load4(t + p + c0 + 4), b2 = load4(t + 2 * p + c0 + 4),
      b3 = load4(t + 3 * p + c0 + 4);
    if (sums) s0 = load4(ts + c0);
    if (sums && w8) s1 = load4(ts + c0 + 4);
    i = 0;
    if (w8)
      for (; i + 4 <= m; i += 4) {
        const double *u = x + i * p + c0;
        sm_v4 u0 = load4(u), v0 = load4(u + 4), u1 = load4(u + p), v1 = load4(u + p + 4);
        __asm__("" : "+x"(u0), "+x"(v0), "+x"(u1), "+x"(v1)); /* in registers */
        a0 += y[i] * u0, b0 += y[i] * v0, a1 += y[i + 1] * u1, b1 += y[i + 1] * v1;
        if (sums) s0 += u0 + u1, s1 += v0 + v1;
        sm_v4 u2 = load4(u + 2 * p), v2 = load4(u + 2 * p + 4), u3 = load4(u + 3 * p), v3 = load4(u + 3 * p + 4);
        __asm__("" : "+x"(u2), "+x"(v2), "+x"(u3), "+x"(v3));
        a2 += y[i + 2] * u2, b2 += y[i + 2] * v2, a3 += y[i + 3] * u3, b3 += y[i + 3] * v3;
        if (sums) s0 += u2 + u3, s1 += v2 + v3;
      }
    else
      for (; i + 4 <= m; i += 4) {
        const double *u = x + i * p + c0;
        sm_v4 u0 = load4(u), u1 = load4(u + p), u2 = load4(u + 2 * p), u3 = load4(u + 3 * p);
        __asm__("" : "+x"(u0), "+x"(u1), "+x"(u2), "+x"(u3));
        a0 += y[i] * u0, a1 += y[i + 1] * u1, a2 += y[i + 2] * u2, a3 += y[i + 3] * u3;
        if (sums) s0 += u0 + u1, s0 += u2 + u3;
      }
    for (; i < m; i++) { /* the last rows, into the first partial sums */
      const double *u = x + i * p + c0;
      sm_v4 u0 = load4(u), v0 = {0};
      if (w8) v0 = load4(u + 4);
      a0 += y[i] * u0, b0 += y[i] * v0;
      if (sums) s0 += u0, s1 += v0;
    }
    store4(t + c0, a0), store4(t + p + c0, a1), store4(t + 2 * p + c0, a2), store4(t + 3 * p + c0, a3);
    if (w8)
      store4(t + c0 + 4, b0), store4(t + p + c0 + 4, b1), store4(t + 2 * p + c0 + 4, b2),
          store4(t + 3 * p + c0 + 4, b3);
    if (sums) store4(ts + c0, s0);
    if (sums && w8) store4(ts + c0 + 4, s1);
  }
  sm_v4 s = load4(t + 4 * p);
  for (i = 0; i + 4 <= m; i += 4)
    s += load4(y + i) * load4(y + i);
  for (int l = 0; i < m; i++, l++)
    s[l] += y[i] * y[i];
  store4(t + 4 * p, s);
}
__attribute__((target("avx2,fma"))) static void gram_xy(const double *x, const double *y, int64_t m, int p, double *t) {
  gram_xy_(x, y, m, p, t, 0);
}
__attribute__((target("avx2,fma"))) static void gram_xy_sums(const double *x, const double *y, int64_t m, int p,
                                                             double *t) {
  gram_xy_(x, y, m, p, t, 1);
}

/* The tiles covering the upper triangle of a p x p Gram matrix, 12 FMA chains where the shape
 * allows (two FMAs a cycle at a latency of 4 need 8; the spare ones absorb the loads' jitter): per
 * row group j0 (4 rows) the column groups from the diagonal on, 12 columns per 4 x 12 tile; with an
 * intercept (column 0 all ones) the first group is rows 1-3, 16 columns per 3 x 16 tile, and row 0
 * comes from column sums (gram_xy_sums: adds, not multiplications by 1). Leftover 4 x 8 and 4 x 4
 * tiles are paired (4 x 8 with 4 x 4, else 4 x 4 with 4 x 4). tile[t] = {kind, j0, c0, k0, d0};
 * k0 < 0: unpaired. Each tile's sums take GRAM_TILE doubles of scratch. */
enum { GT_316, GT_412, GT_48, GT_44 };
#define GRAM_MAX_P 256
#define GRAM_MAX_TILES ((GRAM_MAX_P / 4) * (GRAM_MAX_P / 4 + 1) / 2 + 1)
#define GRAM_TILE 48
static int gram_tiles(int p, int icpt, int (*tile)[5]) {
  int n = 0, open4 = -1, open8 = -1;
  for (int j0 = 0; j0 < p; j0 += 4) {
    int c0 = j0;
    if (icpt && j0 == 0)
      for (; c0 + 16 <= p; c0 += 16)
        tile[n][0] = GT_316, tile[n][1] = 1, tile[n][2] = c0, tile[n][3] = -1, n++;
    for (; c0 + 12 <= p; c0 += 12) /* (with an intercept, 12 columns left over are a 4 x 12 of rows 0-3) */
      tile[n][0] = GT_412, tile[n][1] = j0, tile[n][2] = c0, tile[n][3] = -1, n++;
    if (c0 + 8 <= p) {
      if (open4 >= 0) { /* the open 4 x 4 becomes the second tile of this 4 x 8 */
        int *t = tile[open4];
        t[3] = t[1], t[4] = t[2], t[0] = GT_48, t[1] = j0, t[2] = c0, open4 = -1;
      } else {
        tile[n][0] = GT_48, tile[n][1] = j0, tile[n][2] = c0, tile[n][3] = -1, open8 = n++;
      }
      c0 += 8;
    }
    if (c0 < p) {
      int o = open8 >= 0 ? open8 : open4;
      if (o >= 0) {
        tile[o][3] = j0, tile[o][4] = c0;
        if (o == open8)
          open8 = -1;
        else
          open4 = -1;
      } else {
        tile[n][0] = GT_44, tile[n][1] = j0, tile[n][2] = c0, tile[n][3] = -1, open4 = n++;
      }
    }
  }
  return n;
}

/* Doubles of gram_avx2's scratch for p columns: the tiles' sums, then gram_xy's. */
static size_t gram_scratch(int p) {
  int tile[GRAM_MAX_TILES][5];
  return (size_t)gram_tiles(p, 0, tile) * GRAM_TILE + 5 * (size_t)p + 4;
}

/* The upper triangle of [X y]'[X y] into G (ldg = p + 1) for the nb rows of x (stride p) and y,
 * p <= GRAM_MAX_P; icpt: column 0 of x is all ones; acc: gram_scratch(p) doubles. */
static void gram_avx2(const double *x, const double *y, int64_t nb, int p, int icpt, double *G, int ldg,
                      double (*acc)[GRAM_TILE]) {
  int tile[GRAM_MAX_TILES][5], nt = gram_tiles(p, icpt, tile);
  double *xy = acc[nt];
  memset(acc, 0, ((size_t)nt * GRAM_TILE + 5 * (size_t)p + 4) * sizeof(double));
  for (int64_t i = 0; i < nb; i += GRAM_CHUNK) {
    int64_t m = nb - i < GRAM_CHUNK ? nb - i : GRAM_CHUNK;
    const double *xc = x + i * p;
    for (int t = 0; t < nt; t++) {
      const int *d = tile[t];
      if (d[0] == GT_316)
        gram_tile316(xc, m, p, d[1], d[2], acc[t]);
      else if (d[0] == GT_412)
        gram_tile412(xc, m, p, d[1], d[2], acc[t]);
      else if (d[0] == GT_48 && d[3] >= 0)
        gram_tile48_44(xc, m, p, d[1], d[2], d[3], d[4], acc[t]);
      else if (d[0] == GT_48)
        gram_tile48(xc, m, p, d[1], d[2], acc[t]);
      else
        gram_tile44x2(xc, m, p, d[1], d[2], d[3], d[4], acc[t]);
    }
    (icpt ? gram_xy_sums : gram_xy)(xc, y + i, m, p, xy);
  }
  for (int t = 0; t < nt; t++) {
    const int *d = tile[t];
    int rows = d[0] == GT_316 ? 3 : 4, w = d[0] == GT_316 ? 16 : d[0] == GT_412 ? 12 : d[0] == GT_48 ? 8 : 4;
    for (int r = 0; r < rows; r++)
      for (int c = 0; c < w; c++)
        G[(d[1] + r) + (d[2] + c) * ldg] = acc[t][r * w + c];
    if (d[3] >= 0)
      for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++)
          G[(d[3] + r) + (d[4] + c) * ldg] = acc[t][4 * w + r * 4 + c];
  }
  for (int j = 0; icpt && j < p; j++)
    G[j * ldg] = xy[4 * p + 4 + j];
  for (int j = 0; j < p; j++)
    G[j + p * ldg] = (xy[j] + xy[p + j]) + (xy[2 * p + j] + xy[3 * p + j]);
  G[p + p * ldg] = (xy[4 * p] + xy[4 * p + 1]) + (xy[4 * p + 2] + xy[4 * p + 3]);
}
/* The bins of 4 values as sm__qbin computes them, in 4 int lanes: t = (v - lo) * scale, then
 * max(t, 0) (a NaN t gives 0, as !(t >= 0) does), min(t, SM_QBINS - 1), truncated. */
__attribute__((target("avx2,fma"))) static inline __m128i qbin4(__m256d v, __m256d lo, __m256d scale) {
  __m256d t = _mm256_max_pd(_mm256_mul_pd(_mm256_sub_pd(v, lo), scale), _mm256_setzero_pd());
  return _mm256_cvttpd_epi32(_mm256_min_pd(t, _mm256_set1_pd(SM_QBINS - 1)));
}

/* r[i] = y[i] - x_i . b (y NULL: r[i] = x_i . b) for nb rows of x (stride p, a multiple of 4): each dot product is a
 * sum of 4-lane partial products (4 rows at a time, so 4 independent FMA chains), then of the lanes as (l0 + l1) + (l2
 * + l3) by one transposing add; r[i] depends only on row i. With bn, the residuals also go into the histogram h and the
 * range mm ({min, -max}) while in registers. */
__attribute__((target("avx2,fma"))) static void resid_avx2(const double *x, const double *y, int64_t nb, int p,
                                                           const double *b, double *r, const sm__qbins *bn, int64_t *h,
                                                           double *mm) {
  int64_t i = 0;
  __m256d lo = _mm256_set1_pd(bn ? bn->lo : 0), scale = _mm256_set1_pd(bn ? bn->scale : 0);
  __m256d vmin = _mm256_set1_pd(INFINITY), vmax = _mm256_set1_pd(-INFINITY);
  for (; i + 4 <= nb; i += 4) {
    const double *x0 = x + i * p, *x1 = x0 + p, *x2 = x1 + p, *x3 = x2 + p;
    __m256d bj = _mm256_loadu_pd(b);
    __m256d a0 = _mm256_mul_pd(_mm256_loadu_pd(x0), bj), a1 = _mm256_mul_pd(_mm256_loadu_pd(x1), bj);
    __m256d a2 = _mm256_mul_pd(_mm256_loadu_pd(x2), bj), a3 = _mm256_mul_pd(_mm256_loadu_pd(x3), bj);
    for (int j = 4; j < p; j += 4) {
      bj = _mm256_loadu_pd(b + j);
      a0 = _mm256_fmadd_pd(_mm256_loadu_pd(x0 + j), bj, a0), a1 = _mm256_fmadd_pd(_mm256_loadu_pd(x1 + j), bj, a1);
      a2 = _mm256_fmadd_pd(_mm256_loadu_pd(x2 + j), bj, a2), a3 = _mm256_fmadd_pd(_mm256_loadu_pd(x3 + j), bj, a3);
    }
    __m256d h01 = _mm256_hadd_pd(a0, a1), h23 = _mm256_hadd_pd(a2, a3); /* l0+l1 and l2+l3 of each row */
    __m256d t = _mm256_add_pd(_mm256_permute2f128_pd(h01, h23, 0x20), _mm256_permute2f128_pd(h01, h23, 0x31));
    __m256d e = y ? _mm256_sub_pd(_mm256_loadu_pd(y + i), t) : t;
    _mm256_storeu_pd(r + i, e);
    if (bn) { /* the 4 bins out of 2 general registers: cheaper than a store and 4 reloads */
      __m128i k = qbin4(e, lo, scale);
      uint64_t k01 = (uint64_t)_mm_cvtsi128_si64(k), k23 = (uint64_t)_mm_extract_epi64(k, 1);
      h[(uint32_t)k01]++, h[k01 >> 32]++, h[(uint32_t)k23]++, h[k23 >> 32]++;
      vmin = _mm256_min_pd(vmin, e), vmax = _mm256_max_pd(vmax, e);
    }
  }
  for (; i < nb; i++) { /* the same sums, one row */
    const double *xi = x + i * p;
    __m256d a = _mm256_mul_pd(_mm256_loadu_pd(xi), _mm256_loadu_pd(b));
    for (int j = 4; j < p; j += 4)
      a = _mm256_fmadd_pd(_mm256_loadu_pd(xi + j), _mm256_loadu_pd(b + j), a);
    double l[4];
    _mm256_storeu_pd(l, a);
    double xb = (l[0] + l[1]) + (l[2] + l[3]);
    r[i] = y ? y[i] - xb : xb;
    if (bn)
      h[sm__qbin(bn, r[i])]++, vmin = _mm256_min_pd(vmin, _mm256_set1_pd(r[i])),
                               vmax = _mm256_max_pd(vmax, _mm256_set1_pd(r[i]));
  }
  if (bn) {
    double l[4], u[4];
    _mm256_storeu_pd(l, vmin), _mm256_storeu_pd(u, vmax);
    for (int k = 0; k < 4; k++)
      mm[0] = l[k] < mm[0] ? l[k] : mm[0], mm[1] = -u[k] < mm[1] ? -u[k] : mm[1];
  }
}

/* The values of the wanted bins, 4 at a time: with at most 4 wanted bins (3 quartiles: the usual
 * case) the 4 bins are compared with them in one register and only a hit looks further. */
__attribute__((target("avx2,fma"))) static int64_t wanted_avx2(const double *v, int64_t n, const sm__qbins *bn,
                                                               const unsigned char *want, double *cand) {
  __m256d lo = _mm256_set1_pd(bn->lo), scale = _mm256_set1_pd(bn->scale);
  int64_t c = 0, i = 0;
  int nw = 0, wb[4] = {-1, -1, -1, -1};
  for (int b = 0; b < SM_QBINS && nw <= 4; b++)
    if (want[b] && nw++ < 4) wb[nw - 1] = b;
  if (nw <= 4) {
    __m128i w0 = _mm_set1_epi32(wb[0]), w1 = _mm_set1_epi32(wb[1]), w2 = _mm_set1_epi32(wb[2]),
            w3 = _mm_set1_epi32(wb[3]);
    for (; i + 4 <= n; i += 4) {
      __m128i k = qbin4(_mm256_loadu_pd(v + i), lo, scale);
      __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi32(k, w0), _mm_cmpeq_epi32(k, w1)),
                                 _mm_or_si128(_mm_cmpeq_epi32(k, w2), _mm_cmpeq_epi32(k, w3)));
      int m = _mm_movemask_ps(_mm_castsi128_ps(hit));
      for (int l = 0; m; l++, m >>= 1) /* in order */
        if (m & 1) cand[c++] = v[i + l];
    }
  }
  for (; i + 4 <= n; i += 4) {
    int k[4];
    _mm_storeu_si128((__m128i *)k, qbin4(_mm256_loadu_pd(v + i), lo, scale));
    cand[c] = v[i], c += want[k[0]];
    cand[c] = v[i + 1], c += want[k[1]];
    cand[c] = v[i + 2], c += want[k[2]];
    cand[c] = v[i + 3], c += want[k[3]];
  }
  for (; i < n; i++)
    cand[c] = v[i], c += want[sm__qbin(bn, v[i])];
  return c;
}
/* The rows of x (nb rows, stride p) with wt > 0 scaled by sqrt(wt) into a [m][p] and their resp
 * into ya; returns m. The square roots 4 at a time (sqrt(1) is 1: no shortcut needed), the
 * products the scalar loop's, 4 at a time. */
__attribute__((target("avx2,fma"))) static int64_t
scale_rows_avx2(const double *x, const double *resp, const double *wt, int64_t nb, int p, double *a, double *ya) {
  int64_t m = 0;
  for (int64_t i0 = 0; i0 < nb; i0 += 4) {
    double w4[4] = {0, 0, 0, 0}, s4[4];
    int k = nb - i0 < 4 ? (int)(nb - i0) : 4;
    memcpy(w4, wt + i0, (size_t)k * sizeof *w4);
    _mm256_storeu_pd(s4, _mm256_sqrt_pd(_mm256_max_pd(_mm256_loadu_pd(w4), _mm256_setzero_pd())));
    for (int l = 0; l < k; l++) {
      if (!(w4[l] > 0)) continue;
      __m256d sv = _mm256_set1_pd(s4[l]);
      const double *xi = x + (i0 + l) * p;
      for (int j = 0; j < p; j += 4)
        _mm256_storeu_pd(a + m * p + j, _mm256_mul_pd(sv, _mm256_loadu_pd(xi + j)));
      ya[m++] = s4[l] * resp[i0 + l];
    }
  }
  return m;
}
static int gram_avx2_ok(int p) { return p >= 4 && p % 4 == 0 && p <= GRAM_MAX_P && sm__cpu_avx2_fma(); }
#else
#define SM_GRAM_AVX2 0
static size_t gram_scratch(int p) {
  (void)p;
  return 0;
}
static void resid_avx2(const double *x, const double *y, int64_t nb, int p, const double *b, double *r,
                       const sm__qbins *bn, int64_t *h, double *mm) {
  (void)x, (void)y, (void)nb, (void)p, (void)b, (void)r, (void)bn, (void)h, (void)mm;
}
#define GRAM_TILE 48
static void gram_avx2(const double *x, const double *y, int64_t nb, int p, int icpt, double *G, int ldg,
                      double (*acc)[GRAM_TILE]) {
  (void)x, (void)y, (void)nb, (void)p, (void)icpt, (void)G, (void)ldg, (void)acc;
}
static int gram_avx2_ok(int p) {
  (void)p;
  return 0;
}
static int64_t scale_rows_avx2(const double *x, const double *resp, const double *wt, int64_t nb, int p, double *a,
                               double *ya) {
  (void)x, (void)resp, (void)wt, (void)nb, (void)p, (void)a, (void)ya;
  return 0;
}
#endif

/* The values of v whose bins are flagged in want, in order, into cand (room for n); their count. */
static int64_t wanted_values(const double *v, int64_t n, const sm__qbins *bn, const unsigned char *want, double *cand) {
#if SM_GRAM_AVX2
  if (sm__cpu_avx2_fma()) return wanted_avx2(v, n, bn, want, cand);
#endif
  int64_t c = 0;
  for (int64_t i = 0; i < n; i++)
    cand[c] = v[i], c += want[sm__qbin(bn, v[i])];
  return c;
}

void sm__residuals(const double *x, const double *y, int64_t nb, int p, const double *b, double *r, const sm__qbins *bn,
                   int64_t *h, double *mm) {
  if (gram_avx2_ok(p)) {
    resid_avx2(x, y, nb, p, b, r, bn, h, mm);
    return;
  }
  if (y) memcpy(r, y, (size_t)nb * sizeof *r);
  cblas_dgemv(CblasColMajor, CblasTrans, p, (int)nb, y ? -1.0 : 1.0, x, p, b, 1, y ? 1.0 : 0.0, r, 1);
  for (int64_t i = 0; bn && i < nb; i++) {
    double e = r[i];
    h[sm__qbin(bn, e)]++;
    mm[0] = e < mm[0] ? e : mm[0], mm[1] = -e < mm[1] ? -e : mm[1];
  }
}

/* The Cholesky route: per-block Gram matrices of sqrt(wt)[X resp] (unit weights: X'X, X'y and
 * y'y by gram_avx2, or by dsyrk, dgemv and ddot, straight from the frame; else the same kernels on
 * a copy of the block's rows scaled by sqrt(wt): IRLS, weighted and held-out fits), computed as the leaves of the fixed
 * block tree (no array of per-block results) and summed by it, then R from dpotrf. Exact in exact arithmetic (the
 * Cholesky factor of [X y]'W[X y] is TSQR's R up to signs), and half the flops of Householder, but
 * it squares the condition number: the result is kept only when the column-equilibrated R has an
 * estimated condition number below SM_GRAM_MAX_COND (relative error below ~ cond^2 eps = 2e-10)
 * and the residual sum of squares is not a cancellation (> 1e-8 of y'Wy); otherwise *ok = 0 and
 * the caller runs TSQR. Collective; the decision is made on identical values on every rank. */
#define SM_GRAM_MAX_COND 1e3
typedef struct {
  sm_ctx *ctx;
  const sm_frame *f;
  const double *wt, *resp;
  int64_t b0, maxm;
  double *acc; /* gram_avx2's scratch */
  double *a;   /* [maxm][K] weighted rows, allocated at the first weighted block */
} gram_leaves;

static sm_status gram_leaf(void *u, int64_t gb, double *G) {
  gram_leaves *g = u;
  const sm_frame *f = g->f;
  const double *wt = g->wt, *resp = g->resp;
  int p = f->p, K = p + 1;
  int64_t b = gb - g->b0, o = f->blk_off[b], nb = f->blk_off[b + 1] - o, unit = 1;
  memset(G, 0, (size_t)K * K * sizeof *G);
  if (wt != f->w || !f->unit_w)
    for (int64_t i = o; i < o + nb && unit; i++)
      unit = wt[i] == 1;
  if (unit) { /* unit weights: X'X, X'y, y'y straight from the frame, no copy */
    if (g->acc) {
      gram_avx2(f->x + o * p, resp + o, nb, p, f->intercept, G, K, (double(*)[GRAM_TILE])g->acc);
      return SM_OK;
    }
    cblas_dsyrk(CblasColMajor, CblasUpper, CblasNoTrans, p, (int)nb, 1.0, f->x + o * p, p, 0.0, G, K);
    cblas_dgemv(CblasColMajor, CblasNoTrans, p, (int)nb, 1.0, f->x + o * p, p, resp + o, 1, 0.0, G + (size_t)p * K, 1);
    G[p + p * K] = cblas_ddot((int)nb, resp + o, 1, resp + o, 1);
    return SM_OK;
  }
  if (!g->a && !(g->a = malloc(((size_t)g->maxm * K + 1) * sizeof *g->a)))
    return SM_ERR(g->ctx, SM_ERR_NOMEM, "out of memory"); /* the tree agrees on the status */
  /* the rows with wt > 0 scaled by sqrt(wt): for gram_avx2 X part [m][p] and resp part apart (the
   * intercept column is no longer all ones: no column-sum shortcut), else [m][K] for dsyrk */
  int m = 0;
  double *ya = g->acc ? g->a + (size_t)g->maxm * p : NULL;
  if (g->acc)
    m = (int)scale_rows_avx2(f->x + o * p, resp + o, wt + o, nb, p, g->a, ya);
  else
    for (int64_t i = o; i < o + nb; i++) {
      if (!(wt[i] > 0)) continue;
      double s = wt[i] == 1 ? 1 : sqrt(wt[i]), *ai = g->a + (size_t)m++ * K;
      const double *xi = f->x + i * p;
      for (int j = 0; j < p; j++)
        ai[j] = s * xi[j];
      ai[p] = s * resp[i];
    }
  if (m && g->acc)
    gram_avx2(g->a, ya, m, p, 0, G, K, (double(*)[GRAM_TILE])g->acc);
  else if (m)
    cblas_dsyrk(CblasColMajor, CblasUpper, CblasNoTrans, K, m, 1.0, g->a, K, 0.0, G, K);
  return SM_OK;
}

static sm_status gram_r(sm_ctx *ctx, const sm_frame *f, const double *wt, const double *resp, double *R, int *ok) {
  int p = f->p, K = p + 1;
  gram_leaves g = {ctx, f, wt, resp, 0, 0, NULL, NULL};
  for (int b = 0; b < f->nblk; b++)
    if (f->blk_off[b + 1] - f->blk_off[b] > g.maxm) g.maxm = f->blk_off[b + 1] - f->blk_off[b];
  int64_t nb = 0;
  sm_status st = frame_blocks(ctx, f, &nb, &g.b0);
  if (st == SM_OK && gram_avx2_ok(p)) {
    g.acc = malloc(gram_scratch(p) * sizeof *g.acc);
    st = sm_ctx_agree(ctx, g.acc ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory"));
  }
  sm__tree_op op = {(int64_t)K * K, gram_leaf, sm__tree_add, &g};
  if (st == SM_OK) st = sm__tree_reduce(ctx, nb, g.b0, g.b0 + f->nblk, &op, R);
  free(g.acc), free(g.a);
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
