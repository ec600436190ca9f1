/* Linear models: OLS/WLS by TSQR of sqrt(w)[X y] (tsqr.c) and the quantities of R's summary.lm,
 * printed in its layout (print.summary.lm, R 4.2). From the K x K factor R of [X y]:
 *   coefficients  R[0:p,0:p] b = R[0:p,p]              (back substitution)
 *   RSS           R[p,p]^2                              (the residual norm falls out of the QR)
 *   MSS           sum_j R[j,p]^2 over j >= 1 with an intercept in column 0 (Q'y without the mean)
 *   (X'WX)^-1     (R'R)^-1 by LAPACKE_dpotri on R[0:p,0:p]
 * One more pass over X, block by block, computes the residuals, their range, their histogram and
 * sum(log w) for the log-likelihood (logLik.lm); the exact residual quantiles
 * (sm__quantiles5_hist) then read only the residual vector, once. */
#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void sm_lm_destroy(sm_lm **mp) {
  if (!mp || !*mp) return;
  sm_lm *m = *mp;
  free(m->coef), free(m->se), free(m->tval), free(m->pval), free(m->cov_unscaled), free(m->R);
  free(m);
  *mp = NULL;
}

sm_status sm__solve_r(sm_ctx *ctx, const sm_frame *f, const double *R, double *coef, double *cov) {
  int p = f->p, K = p + 1;
  double dmax = 0;
  for (int j = 0; j < p; j++)
    dmax = fmax(dmax, fabs(R[j + j * K]));
  for (int j = 0; j < p; j++)
    SM_CHECK(ctx, fabs(R[j + j * K]) > 1e-7 * dmax && dmax > 0, SM_ERR_NUMERIC,
             "the design is rank deficient: column %s is (nearly) a linear combination of the columns before it; "
             "drop it or a collinear feature (R would report its coefficient as NA)",
             f->names[j]);
  for (int j = p - 1; j >= 0; j--) {
    double s = R[j + p * K];
    for (int k = j + 1; k < p; k++)
      s -= R[j + k * K] * coef[k];
    coef[j] = s / R[j + j * K];
  }
  if (!cov) return SM_OK;
  for (int j = 0; j < p; j++)
    for (int i = 0; i < p; i++)
      cov[i + j * p] = i <= j ? R[i + j * K] : 0;
  SM_CHECK(ctx, LAPACKE_dpotri(LAPACK_COL_MAJOR, 'U', p, cov, p) == 0, SM_ERR_NUMERIC, "inverting R'R failed");
  for (int j = 0; j < p; j++)
    for (int i = j + 1; i < p; i++)
      cov[i + j * p] = cov[j + i * p];
  return SM_OK;
}

static int cmp_pair(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* With at most 5 residual degrees of freedom (n <= p + 5 <= 16 rows here) R prints every
 * residual named by its row: gather (row, residual) pairs, in row order. */
static sm_status small_residuals(sm_ctx *ctx, const double *r, const double *rows, int n, sm_lm *m) {
  double mine[32], *all = NULL;
  int total = 0;
  for (int i = 0; i < n && i < 16; i++)
    mine[2 * i] = rows[i], mine[2 * i + 1] = r[i];
  SM_TRY(ctx, sm__gather_all(ctx, mine, 2 * (n < 16 ? n : 16), &all, &total));
  qsort(all, (size_t)total / 2, 2 * sizeof *all, cmp_pair);
  m->nsmall = total / 2 < 16 ? total / 2 : 16;
  for (int i = 0; i < m->nsmall; i++)
    m->small_row[i] = (int64_t)all[2 * i], m->small_resid[i] = all[2 * i + 1];
  free(all);
  return SM_OK;
}

/* The residual pass, block by block (the block's rows of X are read once, by sm__residuals, while
 * the block is in cache for the rest; unweighted, sm__residuals does it all as it goes): weighted
 * residuals of rows with w > 0, compacted in place in the frame's scratch vector, and the
 * histogram of the quantile selection over [-4 sigma, 4 sigma] (sigma^2 = RSS / N, known
 * from the factorisation; by Chebyshev at most N / 16 residuals lie beyond 4 sigma, so the
 * quartiles fall in the window's bins; outside values go to the end bins, which keeps the binning
 * monotone and the selection exact in any case); per block sum log w, the count, the residual
 * range and the weight range, reduced in block order by one gather. Then the exact quantiles
 * (sm__quantiles5_hist: one more pass over the residuals, not over X, for the values of the few
 * bins that hold the wanted ranks). */
#define RP_K 6
static sm_status residual_pass(sm_ctx *ctx, const sm_frame *f, sm_lm *m) {
  int p = f->p;
  double *r = f->work, *part = malloc(((size_t)f->nblk * RP_K + 1) * sizeof *part);
  int64_t *h = calloc(SM_QBINS, sizeof *h);
  SM_TRY(ctx, sm_ctx_agree(ctx, part && h ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory")));
  double s4 = 4 * sqrt(m->rss / (double)m->n);
  sm__qbins bn = sm__qbins_over(-s4, s4);
  int64_t n = 0;
  double rows[16];
  int want_rows = m->rdf <= 5 && m->n <= 16;
  int fused = f->unit_w && !want_rows; /* every row used, unweighted (so n == o): the kernel does all */
  for (int b = 0; b < f->nblk; b++) {
    int64_t o = f->blk_off[b], nb = f->blk_off[b + 1] - o;
    double lw = 0, cnt = 0, mm[2] = {INFINITY, INFINITY}, wmin = INFINITY, nwmax = INFINITY;
    sm__residuals(f->x + o * p, f->y + o, nb, p, m->coef, r + o, fused ? &bn : NULL, h, mm);
    if (fused) n += nb, cnt = (double)nb, wmin = 1, nwmax = -1;
    for (int64_t i = fused ? o + nb : o; i < o + nb; i++) {
      double w = f->w[i];
      if (!(w > 0)) continue;
      double e = w == 1 ? r[i] : sqrt(w) * r[i];
      r[n] = e;
      h[sm__qbin(&bn, e)]++;
      if (want_rows && n < 16) rows[n] = (double)f->row[i];
      n++;
      if (w != 1) lw += log(w); /* log(1) adds +0 */
      cnt += 1;
      mm[0] = e < mm[0] ? e : mm[0], mm[1] = -e < mm[1] ? -e : mm[1];
      wmin = w < wmin ? w : wmin, nwmax = -w < nwmax ? -w : nwmax;
    }
    double *pp = part + (size_t)b * RP_K;
    pp[0] = lw, pp[1] = cnt, pp[2] = mm[0], pp[3] = mm[1], pp[4] = wmin, pp[5] = nwmax;
  }
  double *all = NULL, tot[RP_K] = {0, 0, INFINITY, INFINITY, INFINITY, INFINITY};
  int nball = 0;
  sm_status st = sm__block_gather(ctx, f, RP_K, part, &all, &nball);
  for (int b = 0; st == SM_OK && b < nball; b++) { /* block order: sums, then minima */
    const double *pp = all + (size_t)b * RP_K;
    tot[0] += pp[0], tot[1] += pp[1];
    for (int k = 2; k < RP_K; k++)
      tot[k] = pp[k] < tot[k] ? pp[k] : tot[k];
  }
  free(all);
  if (st == SM_OK) st = sm__quantiles5_hist(ctx, r, n, (int64_t)tot[1], tot[2], -tot[3], &bn, h, m->resid_q);
  if (st == SM_OK && want_rows) st = small_residuals(ctx, r, rows, (int)n, m);
  if (st == SM_OK) {
    double N = tot[1];
    m->weighted = f->has_weights && tot[4] != -tot[5];
    m->loglik = 0.5 * (tot[0] - N * (log(2 * M_PI) + 1 - log(N) + log(m->rss)));
    m->aic = -2 * m->loglik + 2 * (p + 1);
    m->bic = -2 * m->loglik + log(N) * (p + 1);
  }
  free(part), free(h);
  return st;
}

sm_status sm_lm_fit(sm_ctx *ctx, const sm_frame *f, int allow_gram, sm_lm **out) {
  *out = NULL;
  int p = f->p, K = p + 1;
  sm_lm *m = calloc(1, sizeof *m);
  if (m) {
    m->p = p;
    m->coef = calloc((size_t)p + 1, sizeof(double)), m->se = calloc((size_t)p + 1, sizeof(double));
    m->tval = calloc((size_t)p + 1, sizeof(double)), m->pval = calloc((size_t)p + 1, sizeof(double));
    m->cov_unscaled = calloc((size_t)p * p + 1, sizeof(double)), m->R = calloc((size_t)K * K, sizeof(double));
  }
  sm_status st = (m && m->coef && m->se && m->tval && m->pval && m->cov_unscaled && m->R)
                     ? SM_OK
                     : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory");
  int64_t npos = f->unit_w ? f->n : 0, N = 0;
  for (int64_t i = 0; !f->unit_w && i < f->n; i++)
    npos += f->w[i] > 0;
  MPI_Allreduce(&npos, &N, 1, MPI_INT64_T, MPI_SUM, ctx->comm);
  if (st == SM_OK && p == 0)
    st = SM_ERR(ctx, SM_ERR_ARG,
                "the model has no coefficients (no terms and no intercept); R prints \"No Coefficients\"");
  else if (st == SM_OK && N <= p)
    st = SM_ERR(ctx, SM_ERR_NUMERIC, "%lld usable row(s) for %d coefficient(s): no residual degrees of freedom",
                (long long)N, p);
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) st = sm__fit_r(ctx, f, f->w, f->y, allow_gram, m->R, &m->used_gram);
  if (st == SM_OK) st = sm_ctx_agree(ctx, sm__solve_r(ctx, f, m->R, m->coef, m->cov_unscaled));
  if (st == SM_OK) {
    m->n = N;
    m->rdf = N - p;
    m->rss = m->R[p + p * K] * m->R[p + p * K];
    m->mss = 0;
    for (int j = f->intercept; j < p; j++)
      m->mss += m->R[j + p * K] * m->R[j + p * K];
    double resvar = m->rss / (double)m->rdf;
    m->sigma = sqrt(resvar);
    for (int j = 0; j < p; j++) {
      m->se[j] = sqrt(m->cov_unscaled[j + j * p] * resvar);
      m->tval[j] = m->coef[j] / m->se[j];
      m->pval[j] = sm__pt_two_sided(m->tval[j], (double)m->rdf);
    }
    int df_int = f->intercept;
    m->r2 = m->mss / (m->mss + m->rss);
    m->adj_r2 = 1 - (1 - m->r2) * ((double)(N - df_int) / (double)m->rdf);
    m->fstat = m->f_numdf = m->f_dendf = m->f_pval = NAN;
    if (p != df_int) {
      m->f_numdf = p - df_int;
      m->f_dendf = (double)m->rdf;
      m->fstat = (m->mss / m->f_numdf) / resvar;
      m->f_pval = sm__pf_upper(m->fstat, m->f_numdf, m->f_dendf);
    }
    st = residual_pass(ctx, f, m);
  }
  if (st != SM_OK) {
    sm_lm_destroy(&m);
    return st;
  }
  *out = m;
  return SM_OK;
}

static void print_missing(FILE *to, const sm_frame *f) {
  if (f->n_dropped > 0)
    fprintf(to, "  (%lld observation%s deleted due to missingness)\n", (long long)f->n_dropped,
            f->n_dropped == 1 ? "" : "s");
}

void sm_lm_print(FILE *to, const sm_lm *m, const sm_frame *f, const char *call) {
  static const char *const qn[5] = {"Min", "1Q", "Median", "3Q", "Max"};
  static const char *const hdr[4] = {"Estimate", "Std. Error", "t value", "Pr(>|t|)"};
  const int digits = 4; /* max(3, getOption("digits") - 3) */
  fprintf(to, "\nCall:\n");
  sm__r_print_call(to, call);
  fprintf(to, "\n%sResiduals:\n", m->weighted ? "Weighted " : "");
  double q[5];
  memcpy(q, m->resid_q, sizeof q);
  if (m->rdf > 5 || m->nsmall == 0) {
    sm__r_zapsmall(q, 5, digits + 1);
    sm__r_print_named(to, 5, qn, q, digits, 1);
  } else { /* print(resid, digits): every residual, named by its row */
    char names[16][24];
    const char *np[16];
    for (int i = 0; i < m->nsmall; i++)
      snprintf(names[i], sizeof names[i], "%lld", (long long)m->small_row[i] + 1), np[i] = names[i];
    sm__r_print_named(to, m->nsmall, np, m->small_resid, digits, 1);
  }
  fprintf(to, "\nCoefficients:\n");
  sm__r_print_coefmat(to, m->p, (const char *const *)f->names, m->coef, m->se, m->tval, m->pval, hdr, digits);
  char s[64];
  sm__rfmt_one(sm__r_signif(m->sigma, digits), 7, s, sizeof s);
  fprintf(to, "\nResidual standard error: %s on %lld degrees of freedom\n", s, (long long)m->rdf);
  print_missing(to, f);
  if (!isnan(m->fstat)) {
    char pv[1][SM_RFMT_MAX];
    sm__r_format_pval(&m->f_pval, 1, digits, pv);
    fprintf(
        to,
        "Multiple R-squared:  %.4g,\tAdjusted R-squared:  %.4g \nF-statistic: %.4g on %.7g and %.7g DF,  p-value: %s\n",
        m->r2, m->adj_r2, m->fstat, m->f_numdf, m->f_dendf, pv[0]);
  }
  fprintf(to, "\n");
}

void sm_lm_confint(const sm_lm *m, double level, double *lo, double *hi) {
  double t = sm__qt((1 + level) / 2, (double)m->rdf);
  for (int j = 0; j < m->p; j++)
    lo[j] = m->coef[j] - t * m->se[j], hi[j] = m->coef[j] + t * m->se[j];
}

/* print(confint(fit)): a numeric matrix, each column formatted on its own with 7 digits. */
void sm_lm_print_confint(FILE *to, const sm_lm *m, const sm_frame *f, double level) {
  int p = m->p;
  double *b = malloc(2 * ((size_t)p + 1) * sizeof *b);
  char(*s)[SM_RFMT_MAX] = calloc(2 * ((size_t)p + 1), SM_RFMT_MAX);
  if (!b || !s) {
    free(b), free(s);
    return;
  }
  sm_lm_confint(m, level, b, b + p);
  char h[2][32];
  char pa[32], pb[32];
  sm__rfmt_one(100 * (1 - level) / 2, 3, pa, sizeof pa);
  sm__rfmt_one(100 * (1 + level) / 2, 3, pb, sizeof pb);
  snprintf(h[0], sizeof h[0], "%s %%", pa);
  snprintf(h[1], sizeof h[1], "%s %%", pb);
  sm__rfmt_vec(b, p, 7, s);
  sm__rfmt_vec(b + p, p, 7, s + p);
  int rw = 0, cw[2];
  for (int j = 0; j < p; j++)
    rw = (int)fmax(rw, (double)strlen(f->names[j]));
  for (int c = 0; c < 2; c++)
    cw[c] = (int)fmax((double)strlen(h[c]), p ? (double)strlen(s[c * p]) : 0);
  fprintf(to, "%*s %*s %*s\n", rw, "", cw[0], h[0], cw[1], h[1]);
  for (int j = 0; j < p; j++)
    fprintf(to, "%-*s %*s %*s\n", rw, f->names[j], cw[0], s[j], cw[1], s[p + j]);
  free(b), free(s);
}
