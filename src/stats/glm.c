/* Logistic regression: binomial GLM with the logit link by iteratively reweighted least squares,
 * step for step as R's glm.fit (R 4.2, src/library/stats/R/glm.R) so that iteration counts and
 * printed figures agree: mu_0 = (w y + 0.5)/(w + 1); each iteration solves the weighted least
 * squares problem of the working response z = eta + (y - mu)/mu.eta with weights
 * w mu.eta^2/var(mu) by TSQR (tsqr.c, fixed block order: the fit is bit-identical at any rank
 * count); convergence when |dev - dev_old|/(|dev| + 0.1) < epsilon. The binomial link functions
 * clamp as R's C code does (family.c: eta beyond +-30 gives mu at DBL_EPSILON from 0 or 1). The
 * per-row work runs 4 rows at a time in AVX2 registers, exp and log from glibc's libmvec (within 4
 * ulp of libm's) where the build finds it.
 * Standard errors come from the R factor of the last IRLS step (summary.glm: dispersion 1). */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define THRESH 30.
#define MTHRESH -30.
#define INVEPS (1 / DBL_EPSILON)

static double linkinv(double eta) {
  double t = eta < MTHRESH ? DBL_EPSILON : (eta > THRESH ? INVEPS : exp(eta));
  return t / (1 + t);
}

static double ylogy(double y, double mu) { return y != 0 ? y * log(y / mu) : 0; }

/* Binomial unit deviance (R's binomial_dev_resids). */
static double dev_unit(double y, double mu, double w) { return 2 * w * (ylogy(y, mu) + ylogy(1 - y, 1 - mu)); }

/* R's binomial()$aic: -2 sum over rows of log dbinom(round(w y), round(w), mu), plus 2 rank. */
static sm_status binomial_aic(sm_ctx *ctx, const sm_frame *f, const double *pw, const double *mu, double *aic) {
  double *part = calloc((size_t)f->nblk + 1, sizeof *part);
  SM_TRY(ctx, sm_ctx_agree(ctx, part ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory")));
  for (int b = 0; b < f->nblk; b++)
    for (int64_t i = f->blk_off[b]; i < f->blk_off[b + 1]; i++) {
      if (!(pw[i] > 0)) continue;
      double n = nearbyint(pw[i]), k = nearbyint(pw[i] * f->y[i]);
      if (n == 0) continue;
      double lc = n == 1 ? 0 : lgamma(n + 1) - lgamma(k + 1) - lgamma(n - k + 1); /* choose(1, k) = 1 */
      part[b] += lc + (k > 0 ? k * log(mu[i]) : 0) + (n - k > 0 ? (n - k) * log(1 - mu[i]) : 0);
    }
  double tot = 0;
  sm_status st = sm__block_sum(ctx, f, 1, part, &tot);
  *aic = -2 * tot + 2 * f->p;
  free(part);
  return st;
}

void sm_glm_destroy(sm_glm **mp) {
  if (!mp || !*mp) return;
  sm_glm *m = *mp;
  free(m->coef), free(m->se), free(m->zval), free(m->pval), free(m->cov);
  free(m);
  *mp = NULL;
}

/* The working response z = eta + (y - mu)/mu.eta and the working weights w mu.eta^2/var(mu) (0
 * where w or mu.eta is 0) of n rows; wt holds mu.eta on entry, the weights on return. */
static void working_rows(int64_t n, const double *y, const double *pw, const double *eta, const double *mu, double *wt,
                         double *z) {
  for (int64_t i = 0; i < n; i++) {
    double me = wt[i], var = mu[i] * (1 - mu[i]);
    int good = pw[i] > 0 && me != 0;
    z[i] = eta[i] + (y[i] - mu[i]) / me;
    wt[i] = good ? pw[i] * me * me / var : 0;
  }
}

/* mu, mu.eta and the unit deviances of n rows from eta (y 0/1, prior weights pw), as R's logit
 * linkinv, mu.eta (one exp per row, shared) and binomial_dev_resids compute them: with y 0/1,
 * y log(y/mu) + (1 - y) log((1 - y)/(1 - mu)) is log(1/mu) or log(1/(1 - mu)). */
static void eval_rows(const double *eta, const double *y, const double *pw, int64_t n, double *mu, double *me,
                      double *devi) {
  for (int64_t i = 0; i < n; i++) {
    double e = eta[i];
    int clamp = e < MTHRESH || e > THRESH;
    double t = e < MTHRESH ? DBL_EPSILON : (e > THRESH ? INVEPS : exp(e)), opexp = 1 + t;
    mu[i] = t / opexp, me[i] = clamp ? DBL_EPSILON : t / (opexp * opexp);
    devi[i] = dev_unit(y[i], mu[i], pw[i]);
  }
}

#if defined(__x86_64__) && defined(__GNUC__) && defined(SISMA_HAVE_MVEC)
#include <immintrin.h>
/* glibc's libmvec: exp and log of 4 doubles in AVX2 registers (within 4 ulp; each lane alone) */
__attribute__((target("avx2"))) __m256d _ZGVdN4v_exp(__m256d);
__attribute__((target("avx2"))) __m256d _ZGVdN4v_log(__m256d);
/* working_rows 4 rows at a time (the same operations), the last rows by working_rows. */
__attribute__((target("avx2,fma"))) static void
working_avx2(int64_t n, const double *y, const double *pw, const double *eta, const double *mu, double *wt, double *z) {
  const __m256d one = _mm256_set1_pd(1), zero = _mm256_setzero_pd();
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    __m256d me = _mm256_loadu_pd(wt + i), m = _mm256_loadu_pd(mu + i), w = _mm256_loadu_pd(pw + i);
    __m256d var = _mm256_mul_pd(m, _mm256_sub_pd(one, m));
    __m256d good = _mm256_and_pd(_mm256_cmp_pd(w, zero, _CMP_GT_OQ), _mm256_cmp_pd(me, zero, _CMP_NEQ_UQ));
    __m256d r = _mm256_div_pd(_mm256_sub_pd(_mm256_loadu_pd(y + i), m), me);
    _mm256_storeu_pd(z + i, _mm256_add_pd(_mm256_loadu_pd(eta + i), r));
    _mm256_storeu_pd(wt + i, _mm256_and_pd(good, _mm256_div_pd(_mm256_mul_pd(_mm256_mul_pd(w, me), me), var)));
  }
  working_rows(n - i, y + i, pw + i, eta + i, mu + i, wt + i, z + i);
}
/* eval_rows of 4 rows in AVX2 registers, with libmvec's exp and log (the rest of each row's
 * arithmetic as there). */
__attribute__((target("avx2,fma"))) static void eval4(const double *eta, const double *y, const double *pw, double *mu,
                                                      double *me, double *devi) {
  const __m256d one = _mm256_set1_pd(1), two = _mm256_set1_pd(2), eps = _mm256_set1_pd(DBL_EPSILON);
  const __m256d lo = _mm256_set1_pd(MTHRESH), hi = _mm256_set1_pd(THRESH), big = _mm256_set1_pd(INVEPS);
  __m256d e = _mm256_loadu_pd(eta), below = _mm256_cmp_pd(e, lo, _CMP_LT_OQ), above = _mm256_cmp_pd(e, hi, _CMP_GT_OQ);
  __m256d t = _mm256_blendv_pd(_mm256_blendv_pd(_ZGVdN4v_exp(e), big, above), eps, below);
  __m256d opexp = _mm256_add_pd(one, t), m = _mm256_div_pd(t, opexp);
  __m256d d = _mm256_blendv_pd(_mm256_div_pd(t, _mm256_mul_pd(opexp, opexp)), eps, _mm256_or_pd(below, above));
  __m256d q = _mm256_blendv_pd(_mm256_div_pd(one, _mm256_sub_pd(one, m)), _mm256_div_pd(one, m),
                               _mm256_cmp_pd(_mm256_loadu_pd(y), one, _CMP_EQ_OQ));
  _mm256_storeu_pd(mu, m), _mm256_storeu_pd(me, d);
  _mm256_storeu_pd(devi, _mm256_mul_pd(_mm256_mul_pd(two, _mm256_loadu_pd(pw)), _ZGVdN4v_log(q)));
}
/* eval_rows by eval4, 4 rows at a time from the block's first row; a last group of fewer than 4
 * rows padded, so that every row takes the same path (and gets the same values at any rank count:
 * blocks are whole on one rank). */
__attribute__((target("avx2,fma"))) static void eval_rows_avx2(const double *eta, const double *y, const double *pw,
                                                               int64_t n, double *mu, double *me, double *devi) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    eval4(eta + i, y + i, pw + i, mu + i, me + i, devi + i);
  if (i == n) return;
  double in[3][4] = {{0}}, out[3][4];
  size_t k = (size_t)(n - i) * sizeof(double);
  memcpy(in[0], eta + i, k), memcpy(in[1], y + i, k), memcpy(in[2], pw + i, k);
  eval4(in[0], in[1], in[2], out[0], out[1], out[2]);
  memcpy(mu + i, out[0], k), memcpy(me + i, out[1], k), memcpy(devi + i, out[2], k);
}
#define SM_GLM_MVEC 1
#else
#define SM_GLM_MVEC 0
#endif

static void working(int64_t n, const double *y, const double *pw, const double *eta, const double *mu, double *wt,
                    double *z) {
#if SM_GLM_MVEC
  if (sm__cpu_avx2_fma()) {
    working_avx2(n, y, pw, eta, mu, wt, z);
    return;
  }
#endif
  working_rows(n, y, pw, eta, mu, wt, z);
}

/* mu, mu.eta and the unit deviances (devi) of block b's rows from their eta; the sum of the
 * deviances in row order. */
static double eval_block(const sm_frame *f, int b, const double *pw, const double *eta, double *mu, double *me,
                         double *devi) {
  int64_t o = f->blk_off[b], nb = f->blk_off[b + 1] - o;
#if SM_GLM_MVEC
  if (sm__cpu_avx2_fma())
    eval_rows_avx2(eta + o, f->y + o, pw + o, nb, mu + o, me + o, devi + o);
  else
#endif
    eval_rows(eta + o, f->y + o, pw + o, nb, mu + o, me + o, devi + o);
  double sum = 0;
  for (int64_t i = o; i < o + nb; i++)
    sum += devi[i];
  return sum;
}

/* eta = X coef (sm__residuals' kernel), then eval_block, and the deviance: the blocks' sums added
 * by the block tree. */
static sm_status eval_fit(sm_ctx *ctx, const sm_frame *f, const double *pw, const double *coef, double *eta, double *mu,
                          double *me, double *devi, double *dev) {
  double *part = calloc((size_t)f->nblk + 1, sizeof *part);
  SM_TRY(ctx, sm_ctx_agree(ctx, part ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory")));
  int p = f->p;
  for (int b = 0; b < f->nblk; b++) {
    int64_t o = f->blk_off[b];
    sm__residuals(f->x + o * p, NULL, f->blk_off[b + 1] - o, p, coef, eta + o, NULL, NULL, NULL);
    part[b] = eval_block(f, b, pw, eta, mu, me, devi);
  }
  sm_status st = sm__block_sum(ctx, f, 1, part, dev);
  free(part);
  return st;
}

static sm_status check_response(sm_ctx *ctx, const sm_frame *f) {
  int64_t bad = -1;
  for (int64_t i = 0; i < f->n && bad < 0; i++)
    if (f->y[i] != 0 && f->y[i] != 1) bad = i;
  sm_status st = SM_OK;
  if (bad >= 0)
    st = SM_ERR(ctx, SM_ERR_DATA,
                "row %lld: response %s = %g; a binomial model needs 0/1 (or a two-level string column)",
                (long long)f->row[bad] + 1, f->response, f->y[bad]);
  return sm_ctx_agree(ctx, st);
}

/* The null deviance: the intercept-only fit has mu = weighted mean of y (R: glm.fit's wtdmu). */
static sm_status null_deviance(sm_ctx *ctx, const sm_frame *f, const double *pw, double *nd) {
  double *part = calloc(2 * (size_t)f->nblk + 2, sizeof *part), tot[2];
  SM_TRY(ctx, sm_ctx_agree(ctx, part ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory")));
  for (int b = 0; b < f->nblk; b++)
    for (int64_t i = f->blk_off[b]; i < f->blk_off[b + 1]; i++)
      part[2 * b] += pw[i] * f->y[i], part[2 * b + 1] += pw[i];
  sm_status st = sm__block_sum(ctx, f, 2, part, tot);
  /* y is 0/1: each row's unit deviance is 2 w log(1/mu0) or 2 w log(1/(1 - mu0)) */
  double mu = f->intercept ? tot[0] / tot[1] : linkinv(0);
  *nd = dev_unit(1, mu, tot[0]) + dev_unit(0, mu, tot[1] - tot[0]);
  free(part);
  return st;
}

/* Inference of the converged fit: covariance (R'WR)^-1, standard errors, z and p values, counts,
 * degrees of freedom, null deviance and AIC. Collective. */
static sm_status glm_inference(sm_ctx *ctx, const sm_frame *f, const double *pw, const double *mu, const double *R,
                               double dev, sm_glm *m) {
  int p = f->p;
  SM_TRY(ctx, sm_ctx_agree(ctx, sm__solve_r(ctx, f, R, m->coef, m->cov))); /* the same coef, and (R'WR)^-1 */
  sm_status st = SM_OK;
  for (int j = 0; j < p; j++) {
    m->se[j] = sqrt(m->cov[j + j * p]);
    m->zval[j] = m->coef[j] / m->se[j];
    m->pval[j] = sm__pnorm_two_sided(m->zval[j]);
  }
  m->deviance = dev;
  int64_t npos = 0, N = 0;
  for (int64_t i = 0; i < f->n; i++)
    npos += pw[i] > 0;
  MPI_Allreduce(&npos, &N, 1, MPI_INT64_T, MPI_SUM, ctx->comm);
  m->n = N;
  m->df_residual = N - p;
  m->df_null = N - f->intercept;
  st = null_deviance(ctx, f, pw, &m->null_deviance);
  int unit = 1; /* weights all 0 or 1: log dbinom(y; 1, mu) = -devi/2, so AIC = deviance + 2p */
  for (int64_t i = 0; i < f->n; i++)
    unit &= pw[i] == 0 || pw[i] == 1;
  int all_unit = 0;
  MPI_Allreduce(&unit, &all_unit, 1, MPI_INT, MPI_MIN, ctx->comm);
  if (all_unit)
    m->aic = dev + 2 * p;
  else if (st == SM_OK)
    st = binomial_aic(ctx, f, pw, mu, &m->aic);
  return st;
}

sm_status sm_glm_fit(sm_ctx *ctx, const sm_frame *f, int maxit, double epsilon, int allow_gram, sm_glm **out) {
  *out = NULL;
  int p = f->p, K = p + 1;
  SM_CHECK(ctx, p > 0, SM_ERR_ARG, "the model has no coefficients (no terms and no intercept)");
  SM_TRY(ctx, check_response(ctx, f));
  sm_glm *m = calloc(1, sizeof *m);
  /* eta, mu; z: working response, then the unit deviances; wt: mu.eta, then the working weights;
   * pw: prior weights - in one allocation, so that they share huge pages (sm__alloc_big: five
   * arrays of 500000 rows are just under its 4 MiB each, and faulting them in 4 KiB pages cost
   * more than an IRLS step) */
  size_t n1 = (size_t)f->n + 1;
  double *eta = sm__alloc_big(5 * n1 * sizeof *eta), *mu = eta ? eta + n1 : NULL, *z = eta ? eta + 2 * n1 : NULL;
  double *wt = eta ? eta + 3 * n1 : NULL, *pw = eta ? eta + 4 * n1 : NULL, *R = calloc((size_t)K * K, sizeof *R);
  for (int64_t i = 0; pw && i < f->n; i++)
    pw[i] = f->tag[i] == 1 ? f->w[i] : 0; /* held-out rows: weight 0 */
  if (m) {
    m->p = p;
    m->coef = calloc((size_t)p + 1, sizeof(double)), m->se = calloc((size_t)p + 1, sizeof(double));
    m->zval = calloc((size_t)p + 1, sizeof(double)), m->pval = calloc((size_t)p + 1, sizeof(double));
    m->cov = calloc((size_t)p * p + 1, sizeof(double));
  }
  sm_status st = (m && eta && R && m->coef && m->se && m->zval && m->pval && m->cov)
                     ? SM_OK
                     : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory");
  st = sm_ctx_agree(ctx, st);
  double devold = 0, dev = 0;
  if (st == SM_OK) {
    double *part = calloc((size_t)f->nblk + 1, sizeof *part);
    st = sm_ctx_agree(ctx, part ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory"));
    double seen[4] = {NAN, NAN, NAN, NAN}, lf[4]; /* mustart takes few values (3 with weights 0/1): */
    int next = 0;                                 /* a log for each, remembered */
    for (int b = 0; st == SM_OK && b < f->nblk; b++) {
      for (int64_t i = f->blk_off[b]; i < f->blk_off[b + 1]; i++) {
        double mus = (pw[i] * f->y[i] + 0.5) / (pw[i] + 1);
        int c = 0;
        while (c < 4 && !(seen[c] == mus))
          c++;
        if (c == 4) c = next, next = (next + 1) % 4, seen[c] = mus, lf[c] = log(mus / (1 - mus));
        eta[i] = lf[c];
      }
      part[b] = eval_block(f, b, pw, eta, mu, wt, z); /* wt: mu.eta, z: the unit deviances */
    }
    if (st == SM_OK) st = sm__block_sum(ctx, f, 1, part, &devold);
    free(part);
  }
  for (int it = 1; st == SM_OK && it <= maxit; it++) {
    m->iter = it;
    working(f->n, f->y, pw, eta, mu, wt, z);
    st = sm__fit_r(ctx, f, wt, z, allow_gram, R, NULL);
    if (st == SM_OK) st = sm__solve_r(ctx, f, R, m->coef, NULL);
    st = sm_ctx_agree(ctx, st);
    if (st == SM_OK) st = eval_fit(ctx, f, pw, m->coef, eta, mu, wt, z, &dev);
    if (st != SM_OK) break;
    if (fabs(dev - devold) / (fabs(dev) + 0.1) < epsilon) {
      m->converged = 1;
      break;
    }
    devold = dev;
  }
  if (st == SM_OK) st = glm_inference(ctx, f, pw, mu, R, dev, m);
  /* deviance residuals for their quantiles */
  if (st == SM_OK) {
    int64_t k = 0;
    for (int64_t i = 0; i < f->n; i++)
      if (pw[i] > 0) z[k++] = (f->y[i] > mu[i] ? 1 : -1) * sqrt(fmax(0, z[i])); /* z holds the unit deviances */
    st = sm__quantiles5(ctx, z, k, m->dev_resid_q);
  }
  free(eta), free(R);
  if (st == SM_OK && !m->converged) sm_warn(ctx, "glm: IRLS did not converge in %d iterations", maxit);
  if (st != SM_OK) {
    sm_glm_destroy(&m);
    return st;
  }
  *out = m;
  return SM_OK;
}

void sm_glm_print(FILE *to, const sm_glm *m, const sm_frame *f, const char *call) {
  static const char *const qn[5] = {"Min", "1Q", "Median", "3Q", "Max"};
  static const char *const hdr[4] = {"Estimate", "Std. Error", "z value", "Pr(>|z|)"};
  const int digits = 4;
  fprintf(to, "\nCall:\n");
  sm__r_print_call(to, call);
  fprintf(to, "\nDeviance Residuals: \n");
  double q[5];
  memcpy(q, m->dev_resid_q, sizeof q);
  sm__r_zapsmall(q, 5, digits + 1);
  sm__r_print_named(to, 5, qn, q, digits, 2);
  fprintf(to, "\nCoefficients:\n");
  sm__r_print_coefmat(to, m->p, (const char *const *)f->names, m->coef, m->se, m->zval, m->pval, hdr, digits);
  double dv[2] = {m->null_deviance, m->deviance}, df[2] = {(double)m->df_null, (double)m->df_residual};
  char sd[2][SM_RFMT_MAX], sf[2][SM_RFMT_MAX], aic[64];
  sm__rfmt_vec(dv, 2, 5, sd);
  sm__rfmt_vec(df, 2, 7, sf);
  fprintf(to, "\n(Dispersion parameter for binomial family taken to be 1)\n\n");
  fprintf(to, "    Null deviance: %s  on %s  degrees of freedom\n", sd[0], sf[0]);
  fprintf(to, "Residual deviance: %s  on %s  degrees of freedom\n", sd[1], sf[1]);
  if (f->n_dropped > 0)
    fprintf(to, "  (%lld observation%s deleted due to missingness)\n", (long long)f->n_dropped,
            f->n_dropped == 1 ? "" : "s");
  sm__rfmt_one(m->aic, 5, aic, sizeof aic);
  fprintf(to, "AIC: %s\n\nNumber of Fisher Scoring iterations: %d\n\n", aic, m->iter);
}
