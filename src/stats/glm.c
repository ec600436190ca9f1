/* Logistic regression: binomial GLM with the logit link by iteratively reweighted least squares,
 * step for step as R's glm.fit (R 4.2, src/library/stats/R/glm.R) so that iteration counts and
 * printed figures agree: mu_0 = (w y + 0.5)/(w + 1); each iteration solves the weighted least
 * squares problem of the working response z = eta + (y - mu)/mu.eta with weights
 * w mu.eta^2/var(mu) by TSQR (tsqr.c, fixed block order: the fit is bit-identical at any rank
 * count); convergence when |dev - dev_old|/(|dev| + 0.1) < epsilon. The binomial link functions
 * clamp as R's C code does (family.c: eta beyond +-30 gives mu at DBL_EPSILON from 0 or 1).
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

static double mu_eta(double eta) {
  double opexp = 1 + exp(eta);
  return (eta > THRESH || eta < MTHRESH) ? DBL_EPSILON : exp(eta) / (opexp * opexp);
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

/* eta = X coef, mu, mu.eta (one exp per row: R's logit linkinv and mu.eta share exp(eta)), the
 * unit deviances devi and their sum (per block, added by the block tree). */
static sm_status eval_fit(sm_ctx *ctx, const sm_frame *f, const double *pw, const double *coef, double *eta, double *mu,
                          double *me, double *devi, double *dev) {
  double *part = calloc((size_t)f->nblk + 1, sizeof *part);
  SM_TRY(ctx, sm_ctx_agree(ctx, part ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory")));
  int p = f->p;
  for (int b = 0; b < f->nblk; b++)
    for (int64_t i = f->blk_off[b]; i < f->blk_off[b + 1]; i++) {
      const double *xi = f->x + i * p;
      double e = 0;
      for (int j = 0; j < p; j++)
        e += xi[j] * coef[j];
      int clamp = e < MTHRESH || e > THRESH;
      double t = e < MTHRESH ? DBL_EPSILON : (e > THRESH ? INVEPS : exp(e)), opexp = 1 + t;
      eta[i] = e, mu[i] = t / opexp, me[i] = clamp ? DBL_EPSILON : t / (opexp * opexp);
      devi[i] = dev_unit(f->y[i], mu[i], pw[i]);
      part[b] += devi[i];
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
  double *eta = malloc(((size_t)f->n + 1) * sizeof *eta), *mu = malloc(((size_t)f->n + 1) * sizeof *mu);
  /* z: working response, then the unit deviances; wt: mu.eta, then the working weights */
  double *z = malloc(((size_t)f->n + 1) * sizeof *z), *wt = malloc(((size_t)f->n + 1) * sizeof *wt);
  double *R = calloc((size_t)K * K, sizeof *R), *pw = malloc(((size_t)f->n + 1) * sizeof *pw);
  for (int64_t i = 0; pw && i < f->n; i++)
    pw[i] = f->tag[i] == 1 ? f->w[i] : 0; /* held-out rows: weight 0 */
  if (m) {
    m->p = p;
    m->coef = calloc((size_t)p + 1, sizeof(double)), m->se = calloc((size_t)p + 1, sizeof(double));
    m->zval = calloc((size_t)p + 1, sizeof(double)), m->pval = calloc((size_t)p + 1, sizeof(double));
    m->cov = calloc((size_t)p * p + 1, sizeof(double));
  }
  sm_status st = (m && eta && mu && z && wt && R && pw && m->coef && m->se && m->zval && m->pval && m->cov)
                     ? SM_OK
                     : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory");
  st = sm_ctx_agree(ctx, st);
  double devold = 0, dev = 0;
  if (st == SM_OK) {
    double *part = calloc((size_t)f->nblk + 1, sizeof *part);
    st = sm_ctx_agree(ctx, part ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory"));
    for (int b = 0; st == SM_OK && b < f->nblk; b++)
      for (int64_t i = f->blk_off[b]; i < f->blk_off[b + 1]; i++) {
        double mus = (pw[i] * f->y[i] + 0.5) / (pw[i] + 1);
        eta[i] = log(mus / (1 - mus)), mu[i] = linkinv(eta[i]), wt[i] = mu_eta(eta[i]);
        part[b] += dev_unit(f->y[i], mu[i], pw[i]);
      }
    if (st == SM_OK) st = sm__block_sum(ctx, f, 1, part, &devold);
    free(part);
  }
  for (int it = 1; st == SM_OK && it <= maxit; it++) {
    m->iter = it;
    for (int64_t i = 0; i < f->n; i++) {
      double me = wt[i], var = mu[i] * (1 - mu[i]);
      int good = pw[i] > 0 && me != 0;
      z[i] = eta[i] + (f->y[i] - mu[i]) / me;
      wt[i] = good ? pw[i] * me * me / var : 0;
    }
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
  free(eta), free(mu), free(z), free(wt), free(R), free(pw);
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
