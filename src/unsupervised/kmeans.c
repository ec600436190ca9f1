/* k-means by Lloyd's algorithm, as scikit-learn's KMeans(algorithm="lloyd") runs it:
 *   E-step: label_i = argmin_j ||x_i - c_j||^2, computed block by block as a GEMM
 *           (||c_j||^2 - 2 x_i . c_j; ||x_i||^2 does not change the argmin; ties -> lowest j),
 *           then the exact squared distance to the chosen centre (inertia, outputs);
 *   M-step: c_j = mean of its rows, from per-cluster sums and counts reduced over the block tree;
 *   empty clusters: take the rows farthest from their centre (largest distance first, lowest
 *           row index on ties) as the new centres of the empty clusters in increasing order, and
 *           remove them from their old clusters' sums (scikit-learn's rule);
 *   stop:   labels unchanged ("strict convergence"), or sum_j ||c_j' - c_j||^2 <= tol * mean of
 *           the column variances, or max_iter; then one more E-step with the final centres.
 * The n x k distance matrix is never formed: one block of rows at a time. */
#include <cblas.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kmeans_internal.h"

void sm_kmeans_opts_default(sm_kmeans_opts *o) {
  memset(o, 0, sizeof *o);
  o->k = 8;
  o->init = SM_KMEANS_INIT_PLUSPLUS;
  o->n_init = 1;
  o->max_iter = 300;
  o->tol = 1e-4;
  o->seed = 0;
  o->silhouette_sample = 1000;
  o->reassignment_ratio = 0.01;
}

void sm_kmeans_result_fini(sm_kmeans_result *r) {
  free(r->centers), free(r->sizes), free(r->labels), free(r->distance);
  memset(r, 0, sizeof *r);
}

/* One E-step over the aligned rows; the tree value is [k][d] sums, [k] counts, inertia.
 * Two kernels: float64 rows with dgemm, or -- when every value of the matrix is exactly a float32
 * (as waveforms and most feature tables are) -- a float32 mirror of the rows with sgemm, half the
 * memory traffic and twice the GEMM rate; the sums are accumulated in float64 from the same exact
 * values either way. During the iterations the squared distance is ||x||^2 + ||c||^2 - 2 x.c
 * (clamped at 0); the final E-step (exact = 1) recomputes it as sum (x - c)^2 in float64. */
typedef struct {
  const sm__blocks *bk;
  int k;
  int64_t d;
  const double *c;  /* [k][d] centres */
  float *cf;        /* [k][d] centres as float32 (float kernel) */
  double *cnorm;    /* [k] */
  const float *xf;  /* [a1 - a0][d] float32 mirror of the aligned rows, or NULL */
  const double *xnorm; /* [a1 - a0] ||x||^2 */
  int exact;        /* final pass: exact distances from the float64 rows */
  int32_t *label;   /* [a1 - a0] */
  double *d2;       /* [a1 - a0] */
  double *dots;     /* [B][k] */
  float *dotsf;     /* [B][k] */
  float *ct, *bias; /* fused kernel: [d][kp] -2 c^T and [kp] ||c||^2 (+inf padding), or NULL */
  int kp;           /* k rounded up to 16 */
  int64_t changed;  /* rows whose label changed (this rank) */
} estep;

/* Lowest v[j], lowest j on ties. */
#define SM__KMEANS_KCHUNK 64
static inline double argmin(const double *v, int m, int *at) {
  double b = v[0];
  int ix = 0;
  for (int j = 1; j < m; j++)
    if (v[j] < b) b = v[j], ix = j;
  *at = ix;
  return b;
}

static inline void add_f32(double *restrict s, const float *restrict x, int64_t d) {
  for (int64_t j = 0; j < d; j++) s[j] += (double)x[j];
}

static inline void add_f64(double *restrict s, const double *restrict x, int64_t d) {
  for (int64_t j = 0; j < d; j++) s[j] += x[j];
}

/* The fused float32 E-step kernel for small k x d (the centres fit in L1): per row, 16 centres at a
 * time, v_j = ||c_j||^2 + sum_t x_t (-2 c_jt) accumulated in registers, then the lowest v_j (lowest
 * j on ties). Each row is computed alone, so its label does not depend on the blocking. AVX2 +
 * FMA (8-wide) on CPUs that have them, else the sgemm path. */
#define SM__KMEANS_FUSED_MAX 8192 /* d x padded k floats */
#if defined(__x86_64__) && defined(__GNUC__)
#define SM__KMEANS_FUSED 1
/* v = bias + sum_t x_t ct_t for 16 centres and R rows (R a constant after inlining): the 16
 * centres of column t are loaded once into two registers and shared by the R rows; each row has
 * its own two accumulators and one FMA chain in t = 0..d-1 -- the same order for a row whatever R
 * it is processed with, so labels never depend on the grouping or the blocking. */
__attribute__((target("avx2,fma"), always_inline)) static inline void dots16(const float *x, int R, int64_t d, int kp,
                                                                             const float *ct, const float *bias,
                                                                             __m256 *lo, __m256 *hi) {
  for (int r = 0; r < R; r++) lo[r] = _mm256_loadu_ps(bias), hi[r] = _mm256_loadu_ps(bias + 8);
  for (int64_t t = 0; t < d; t++) {
    const float *c = ct + t * kp;
    __m256 cl = _mm256_loadu_ps(c), ch = _mm256_loadu_ps(c + 8);
    for (int r = 0; r < R; r++) {
      __m256 xv = _mm256_broadcast_ss(x + r * d + t);
      lo[r] = _mm256_fmadd_ps(xv, cl, lo[r]), hi[r] = _mm256_fmadd_ps(xv, ch, hi[r]);
    }
  }
}

/* Lowest of 16 values (lowest index on ties) into *best / *bi when below *best. */
__attribute__((target("avx2,fma"))) static inline void argmin16(__m256 lo, __m256 hi, int c0, float *best, int *bi) {
  __m256 m = _mm256_min_ps(lo, hi);
  m = _mm256_min_ps(m, _mm256_permute2f128_ps(m, m, 1));
  m = _mm256_min_ps(m, _mm256_shuffle_ps(m, m, _MM_SHUFFLE(1, 0, 3, 2)));
  m = _mm256_min_ps(m, _mm256_shuffle_ps(m, m, _MM_SHUFFLE(2, 3, 0, 1)));
  float mn = _mm256_cvtss_f32(m);
  if (mn < *best) {
    unsigned bits = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(lo, m, _CMP_EQ_OQ)) |
                    (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(hi, m, _CMP_EQ_OQ)) << 8;
    *best = mn, *bi = c0 + __builtin_ctz(bits);
  }
}

#define SM__KMEANS_GROUP 6 /* rows sharing the centre loads: 12 FMA chains (>= FMA latency x 2 pipes), 15 ymm */

/* Rows of one group (R of them, from x, at position `at` of the aligned rows): labels by
 * dots16/argmin16, then at once -- while the rows are in L1 -- distance, label change, count,
 * inertia and out[label][:] += x_i (float32 rows, float64 sums, 4 doubles at a time), in row order. */
__attribute__((target("avx2,fma"), always_inline)) static inline void fused_group(const estep *e, const float *x, int R,
                                                                                  int64_t d, int64_t at, double *out,
                                                                                  double *inertia, int64_t *changed) {
  int64_t k = e->k;
  int kp = e->kp;
  float best[SM__KMEANS_GROUP];
  int bi[SM__KMEANS_GROUP];
  for (int r = 0; r < R; r++) best[r] = INFINITY, bi[r] = 0;
  for (int c0 = 0; c0 < kp; c0 += 16) {
    __m256 lo[SM__KMEANS_GROUP], hi[SM__KMEANS_GROUP];
    dots16(x, R, d, kp, e->ct + c0, e->bias + c0, lo, hi);
    for (int r = 0; r < R; r++) argmin16(lo[r], hi[r], c0, &best[r], &bi[r]);
  }
  for (int r = 0; r < R; r++) {
    int64_t i = at + r;
    int j = bi[r];
    const float *xi = x + r * d;
    double dist = e->xnorm[i] + (double)best[r];
    dist = dist > 0 ? dist : 0.0;
    *changed += e->label[i] != j;
    e->label[i] = j;
    e->d2[i] = dist;
    out[k * d + j] += 1;
    *inertia += dist;
    double *s = out + (int64_t)j * d;
    int64_t t = 0;
    for (; t + 4 <= d; t += 4)
      _mm256_storeu_pd(s + t, _mm256_add_pd(_mm256_loadu_pd(s + t), _mm256_cvtps_pd(_mm_loadu_ps(xi + t))));
    for (; t < d; t++) s[t] += (double)xi[t];
  }
}

/* fused_block for d columns (a constant after inlining, so the FMA chain and the sum loop unroll
 * fully; the arithmetic per row is the same whatever d is known as). */
__attribute__((target("avx2,fma"), always_inline)) static inline void fused_rows(estep *e, const float *x, int64_t d,
                                                                                 int64_t at, int64_t rows,
                                                                                 double *out) {
  int64_t i = 0, changed = 0, na = e->bk->a1 - e->bk->a0;
  double inertia = 0;
  for (; i + SM__KMEANS_GROUP <= rows; i += SM__KMEANS_GROUP) {
    if (at + i + 5 * SM__KMEANS_GROUP <= na) { /* the rows 4 groups ahead (also across blocks) */
      const char *p = (const char *)(x + (i + 4 * SM__KMEANS_GROUP) * d);
      for (int64_t q = 0; q < SM__KMEANS_GROUP * d * (int64_t)sizeof *x; q += 64) _mm_prefetch(p + q, _MM_HINT_T0);
    }
    fused_group(e, x + i * d, SM__KMEANS_GROUP, d, at + i, out, &inertia, &changed);
  }
  for (; i < rows; i++) fused_group(e, x + i * d, 1, d, at + i, out, &inertia, &changed);
  out[e->k * d + e->k] += inertia;
  e->changed += changed;
}

/* One block of `rows` float32 rows starting at aligned position `at`: E-step and per-cluster sums
 * into out ([k][d] sums, [k] counts, inertia; zeroed by the caller), one pass over the rows.
 * Common widths get their own fully unrolled copy (d = 32: Lloyd 28.0 -> 23.6 ms/iter, docs/performance.md). */
__attribute__((target("avx2,fma"))) static void fused_block(estep *e, const float *x, int64_t at, int64_t rows,
                                                            double *out) {
  switch (e->d) {
  case 16: fused_rows(e, x, 16, at, rows, out); break;
  case 32: fused_rows(e, x, 32, at, rows, out); break;
  case 64: fused_rows(e, x, 64, at, rows, out); break;
  default: fused_rows(e, x, e->d, at, rows, out); break;
  }
}
#else
#define SM__KMEANS_FUSED 0
static void fused_block(estep *e, const float *x, int64_t at, int64_t rows, double *out) {
  (void)e, (void)x, (void)at, (void)rows, (void)out;
}
#endif

static int fused_available(void) {
#if SM__KMEANS_FUSED
  return sm__cpu_avx2_fma();
#else
  return 0;
#endif
}

static sm_status estep_leaf(void *u, int64_t b, double *out) {
  estep *e = u;
  int64_t rows, d = e->d, k = e->k, at = b * e->bk->B - e->bk->a0;
  const double *x = sm__block_rows(e->bk, b, &rows);
  const float *xf = e->xf && !e->exact ? e->xf + at * d : NULL;
  memset(out, 0, (size_t)(k * d + k + 1) * sizeof *out);
  if (xf && e->ct) {
    fused_block(e, xf, at, rows, out);
    return SM_OK;
  }
  if (xf)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)k, (int)d, 1.0f, xf, (int)d, e->cf, (int)d,
                0.0f, e->dotsf, (int)k);
  else
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)k, (int)d, 1.0, x, (int)d, e->c, (int)d, 0.0,
                e->dots, (int)k);
  for (int64_t i = 0; i < rows; i++) {
    double v[SM__KMEANS_KCHUNK];
    int best = 0;
    double bv = INFINITY;
    for (int j0 = 0; j0 < k; j0 += SM__KMEANS_KCHUNK) {
      int m = k - j0 < SM__KMEANS_KCHUNK ? (int)(k - j0) : SM__KMEANS_KCHUNK;
      if (xf)
        for (int j = 0; j < m; j++) v[j] = e->cnorm[j0 + j] - 2.0 * (double)e->dotsf[i * k + j0 + j];
      else
        for (int j = 0; j < m; j++) v[j] = e->cnorm[j0 + j] - 2.0 * e->dots[i * k + j0 + j];
      int j;
      double bvv = argmin(v, m, &j);
      if (bvv < bv) bv = bvv, best = j0 + j;
    }
    double dist = e->exact ? sm__sqdist(x + i * d, e->c + best * d, d) : fmax(e->xnorm[at + i] + bv, 0.0);
    e->changed += e->label[at + i] != best;
    e->label[at + i] = best;
    e->d2[at + i] = dist;
    if (xf) add_f32(out + best * d, xf + i * d, d);
    else add_f64(out + best * d, x + i * d, d);
    out[k * d + best] += 1;
    out[k * d + k] += dist;
  }
  return SM_OK;
}

/* ||x||^2 of the aligned rows, and the float32 mirror when every value of the matrix is exactly
 * a float32 (decided over all ranks, so every rank count takes the same kernel). Collective. */
static sm_status prepare_rows(sm_ctx *ctx, estep *e, double **xnorm, float **xf) {
  const sm__blocks *bk = e->bk;
  int64_t na = bk->a1 - bk->a0, d = e->d;
  int exact_f32 = 1;
  float *m = NULL; /* the mirror, filled while testing exactness; freed when some value is not */
  *xf = NULL;
  SM_TRY(ctx, sm_ctx_agree(ctx, SM_ALLOC(ctx, *xnorm, na + 1)));
  SM_TRY(ctx, sm_ctx_agree(ctx, SM_ALLOC(ctx, m, na * d + 1)));
  for (int64_t i = bk->a0; i < bk->a1; i++) { /* one pass: norms, exactness and the conversion */
    const double *r = sm__aligned_row(bk, i);
    float *f = m + (i - bk->a0) * d;
    double s = 0;
    for (int64_t j = 0; j < d; j++) s += r[j] * r[j];
    for (int64_t j = 0; j < d; j++) f[j] = (float)r[j], exact_f32 &= (double)f[j] == r[j];
    (*xnorm)[i - bk->a0] = s;
  }
  SM_MPI(ctx, MPI_Allreduce(MPI_IN_PLACE, &exact_f32, 1, MPI_INT, MPI_LAND, ctx->comm));
  if (!exact_f32) {
    free(m);
    return SM_OK;
  }
  *xf = m;
  sm_status st = SM_OK;
  if (!e->cf) st = sm_ctx_agree(ctx, SM_ALLOC(ctx, e->cf, (size_t)e->k * d));
  if (st == SM_OK && !e->dotsf) st = sm_ctx_agree(ctx, SM_ALLOC(ctx, e->dotsf, bk->B * e->k));
  e->kp = (e->k + 15) / 16 * 16;
  if (st == SM_OK && d * e->kp <= SM__KMEANS_FUSED_MAX && fused_available()) {
    st = SM_ALLOC(ctx, e->ct, d * e->kp);
    if (st == SM_OK) st = SM_ALLOC(ctx, e->bias, e->kp);
    st = sm_ctx_agree(ctx, st);
  }
  if (st != SM_OK) free(*xf), *xf = NULL;
  return st;
}

static sm_status run_estep(sm_ctx *ctx, estep *e, double *acc, int64_t *changed) {
  for (int j = 0; j < e->k; j++) {
    const double *c = e->c + j * e->d;
    double s = 0;
    for (int64_t t = 0; t < e->d; t++) s += c[t] * c[t];
    e->cnorm[j] = s;
    for (int64_t t = 0; e->cf && t < e->d; t++) e->cf[j * e->d + t] = (float)c[t];
    for (int64_t t = 0; e->ct && t < e->d; t++) e->ct[t * e->kp + j] = -2.0f * (float)c[t];
    if (e->bias) e->bias[j] = (float)s;
  }
  for (int j = e->k; e->bias && j < e->kp; j++) {
    e->bias[j] = INFINITY;
    for (int64_t t = 0; t < e->d; t++) e->ct[t * e->kp + j] = 0;
  }
  e->changed = 0;
  sm__tree_op op = {e->k * e->d + e->k + 1, estep_leaf, sm__tree_add, e};
  SM_TRY(ctx, sm__tree_reduce(ctx, e->bk->nb, e->bk->b0, e->bk->b1, &op, acc));
  *changed = e->changed;
  SM_MPI(ctx, MPI_Allreduce(MPI_IN_PLACE, changed, 1, MPI_INT64_T, MPI_SUM, ctx->comm));
  return SM_OK;
}

typedef struct {
  double d2;
  int64_t row;
  int64_t label;
} far_row;

static int far_cmp(const void *a, const void *b) {
  const far_row *x = a, *y = b;
  if (x->d2 != y->d2) return x->d2 < y->d2 ? 1 : -1;
  return (x->row > y->row) - (x->row < y->row);
}

/* scikit-learn's empty-cluster rule on the reduced sums (acc: [k][d] sums, [k] counts). */
static sm_status relocate_empty(sm_ctx *ctx, const estep *e, double *acc) {
  int k = e->k, m = 0;
  int64_t d = e->d;
  double *cnt = acc + k * d;
  for (int j = 0; j < k; j++) m += cnt[j] == 0;
  if (!m) return SM_OK;
  /* this rank's m farthest rows, then everyone's, merged in a fixed order */
  int64_t na = e->bk->a1 - e->bk->a0;
  far_row *loc = NULL, *all = NULL;
  SM_TRY(ctx, SM_ALLOC(ctx, loc, m));
  for (int t = 0; t < m; t++) loc[t] = (far_row){-1, INT64_MAX, -1};
  for (int64_t i = 0; i < na; i++) {
    far_row f = {e->d2[i], e->bk->a0 + i, e->label[i]};
    if (far_cmp(&f, &loc[m - 1]) < 0) {
      loc[m - 1] = f;
      qsort(loc, (size_t)m, sizeof *loc, far_cmp);
    }
  }
  sm_status st = SM_ALLOC(ctx, all, (size_t)m * ctx->size);
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) {
    int rc = MPI_Allgather(loc, m * (int)sizeof *loc, MPI_BYTE, all, m * (int)sizeof *loc, MPI_BYTE, ctx->comm);
    if (rc != MPI_SUCCESS) st = sm__mpi_error(ctx, rc, "MPI_Allgather", __FILE__, __LINE__);
  }
  int64_t *idx = NULL;
  double *rows = NULL;
  if (st == SM_OK) {
    qsort(all, (size_t)m * ctx->size, sizeof *all, far_cmp);
    st = SM_ALLOC(ctx, idx, m);
    if (st == SM_OK) st = SM_ALLOC(ctx, rows, (size_t)m * d);
    st = sm_ctx_agree(ctx, st);
  }
  if (st == SM_OK) {
    for (int t = 0; t < m; t++) idx[t] = all[t].row;
    st = sm__blocks_fetch(ctx, e->bk, m, idx, rows);
  }
  for (int j = 0, t = 0; st == SM_OK && j < k && t < m; j++) {
    if (cnt[j] != 0) continue;
    const double *x = rows + t * d;
    int64_t old = all[t].label;
    for (int64_t c = 0; c < d; c++) acc[old * d + c] -= x[c], acc[j * d + c] = x[c];
    cnt[old] -= 1;
    cnt[j] = 1;
    t++;
  }
  free(loc), free(all), free(idx), free(rows);
  return st;
}

typedef struct {
  double *centers; /* [k][d] */
  double inertia, seconds;
  int n_iter, converged;
} lloyd_out;

/* Lloyd iterations from `init`; leaves the final labels and distances in e. Collective. */
static sm_status lloyd(sm_ctx *ctx, estep *e, const sm_kmeans_opts *o, double tol_abs, double *acc, lloyd_out *out) {
  int k = e->k;
  int64_t d = e->d, changed = 0, na = e->bk->a1 - e->bk->a0;
  double *c = out->centers, *cnew = NULL;
  SM_TRY(ctx, SM_ALLOC(ctx, cnew, (size_t)k * d));
  for (int64_t i = 0; i < na; i++) e->label[i] = -1;
  int strict = 0, it;
  sm_status st = SM_OK;
  double t0 = sm_wtime();
  out->converged = 0;
  for (it = 0; it < o->max_iter && st == SM_OK; it++) {
    e->c = c;
    st = run_estep(ctx, e, acc, &changed);
    if (st != SM_OK) break;
    if (o->verbose && ctx->rank == 0) {
      printf("iteration %02d (inertia: %.2f)\n", it + 1, acc[k * d + k]);
      fflush(stdout);
    }
    st = relocate_empty(ctx, e, acc);
    if (st != SM_OK) break;
    double shift = 0;
    for (int j = 0; j < k; j++) {
      double n = acc[k * d + j];
      for (int64_t t = 0; t < d; t++) {
        double v = n > 0 ? acc[j * d + t] / n : c[j * d + t];
        double s = v - c[j * d + t];
        shift += s * s;
        cnew[j * d + t] = v;
      }
    }
    memcpy(c, cnew, (size_t)(k * d) * sizeof *c);
    if (changed == 0) {
      strict = 1;
      out->converged = 1;
      it++;
      break;
    }
    if (shift <= tol_abs) {
      out->converged = 1;
      it++;
      break;
    }
  }
  out->n_iter = it;
  out->seconds = sm_wtime() - t0;
  /* labels that match the final centres (scikit-learn skips this after strict convergence,
   * where it cannot change them) */
  if (st == SM_OK) {
    e->c = c;
    e->exact = 1;
    st = run_estep(ctx, e, acc, &changed);
    e->exact = 0;
  }
  out->inertia = acc[k * d + k];
  (void)strict;
  free(cnew);
  return st;
}

sm_status sm_kmeans_fit(sm_ctx *ctx, const sm_rows *x, const sm_kmeans_opts *o, sm_kmeans_result *res) {
  memset(res, 0, sizeof *res);
  int k = o->k;
  int64_t d = x->d;
  SM_CHECK(ctx, x->n >= 1 && d >= 1, SM_ERR_ARG, "k-means needs at least one row and one column (got %lld x %lld)",
           (long long)x->n, (long long)d);
  SM_CHECK(ctx, k >= 1 && k <= x->n, SM_ERR_ARG, "k = %d clusters for %lld rows: k must be in 1..%lld", k,
           (long long)x->n, (long long)x->n);
  SM_CHECK(ctx, o->n_init >= 1 && o->max_iter >= 1, SM_ERR_ARG, "n_init and max_iter must be >= 1");
  SM_CHECK(ctx, o->init != SM_KMEANS_INIT_GIVEN || o->init_centers, SM_ERR_ARG, "init from centres: none given");
  SM_TRY(ctx, sm__check_finite(ctx, x));
  sm__blocks bk;
  SM_TRY(ctx, sm__blocks_init(ctx, x, 0, &bk));
  int64_t na = bk.a1 - bk.a0, len = k * d + k + 1;
  estep e = {.bk = &bk, .k = k, .d = d};
  double *mean = NULL, *var = NULL, *acc = NULL, *best_acc = NULL;
  lloyd_out run = {0}, best = {0};
  int32_t *best_label = NULL;
  double *best_d2 = NULL;
  sm_status st = SM_ALLOC(ctx, e.cnorm, k);
  if (st == SM_OK) st = SM_ALLOC(ctx, e.label, na + 1);
  if (st == SM_OK) st = SM_ALLOC(ctx, e.d2, na + 1);
  if (st == SM_OK) st = SM_ALLOC(ctx, e.dots, bk.B * k);
  if (st == SM_OK) st = SM_ALLOC(ctx, mean, d);
  if (st == SM_OK) st = SM_ALLOC(ctx, var, d);
  if (st == SM_OK) st = SM_ALLOC(ctx, acc, len);
  if (st == SM_OK) st = SM_ALLOC(ctx, best_acc, len);
  if (st == SM_OK) st = SM_ALLOC(ctx, run.centers, (size_t)k * d);
  if (st == SM_OK) st = SM_ALLOC(ctx, best.centers, (size_t)k * d);
  if (st == SM_OK) st = SM_ALLOC(ctx, best_label, na + 1);
  if (st == SM_OK) st = SM_ALLOC(ctx, best_d2, na + 1);
  st = sm_ctx_agree(ctx, st);
  double *xnorm = NULL;
  float *xf = NULL;
  if (st == SM_OK) st = prepare_rows(ctx, &e, &xnorm, &xf);
  e.xnorm = xnorm, e.xf = xf;
  if (st == SM_OK && o->tol > 0) st = sm__column_moments(ctx, &bk, mean, var); /* tol 0 needs no variance */
  double tol_abs = 0;
  for (int64_t j = 0; st == SM_OK && o->tol > 0 && j < d; j++) tol_abs += var[j];
  tol_abs = o->tol > 0 ? tol_abs / (double)d * o->tol : 0;
  int n_init = o->init == SM_KMEANS_INIT_GIVEN ? 1 : o->n_init;
  for (int r = 0; st == SM_OK && r < n_init; r++) {
    st = sm__kmeans_init(ctx, &bk, o, r, run.centers);
    if (st == SM_OK) st = lloyd(ctx, &e, o, tol_abs, acc, &run);
    if (st == SM_OK && (r == 0 || run.inertia < best.inertia)) {
      double *c = best.centers;
      best = run;
      best.centers = c;
      memcpy(best.centers, run.centers, (size_t)(k * d) * sizeof *c);
      memcpy(best_acc, acc, (size_t)len * sizeof *acc);
      memcpy(best_label, e.label, (size_t)na * sizeof *best_label);
      memcpy(best_d2, e.d2, (size_t)na * sizeof *best_d2);
      res->best_init = r;
    }
    if (st == SM_OK && o->verbose && n_init > 1 && ctx->rank == 0)
      printf("init %d: inertia %.6g after %d iteration(s)%s\n", r + 1, run.inertia, run.n_iter,
             run.converged ? "" : " (not converged)");
  }
  if (st == SM_OK) {
    res->k = k, res->d = d, res->inertia = best.inertia, res->n_iter = best.n_iter, res->converged = best.converged;
    res->iter_seconds = best.seconds;
    res->centers = best.centers, best.centers = NULL;
    st = SM_ALLOC(ctx, res->sizes, k);
    if (st == SM_OK) st = SM_ALLOC(ctx, res->labels, x->count + 1);
    if (st == SM_OK) st = SM_ALLOC(ctx, res->distance, x->count + 1);
    st = sm_ctx_agree(ctx, st);
  }
  if (st == SM_OK) {
    for (int j = 0; j < k; j++) res->sizes[j] = (int64_t)best_acc[k * d + j];
    for (int64_t i = 0; i < na; i++) best_d2[i] = sqrt(best_d2[i]);
    st = sm__blocks_return(ctx, &bk, best_label, res->labels, sizeof *best_label);
    if (st == SM_OK) st = sm__blocks_return(ctx, &bk, best_d2, res->distance, sizeof *best_d2);
  }
  if (st == SM_OK)
    st = sm__kmeans_metrics(ctx, &bk, o, best_label, best_acc, res->sizes, k, &res->silhouette, &res->davies_bouldin);
  free(e.cnorm), free(e.label), free(e.d2), free(e.dots), free(mean), free(var), free(acc), free(best_acc);
  free(e.cf), free(e.dotsf), free(e.ct), free(e.bias), free(xnorm), free(xf);
  free(run.centers), free(best.centers), free(best_label), free(best_d2);
  sm__blocks_fini(&bk);
  if (st != SM_OK) sm_kmeans_result_fini(res);
  return st;
}
