/* Regression diagnostics (R's hatvalues, rstudent, cooks.distance; car::vif; lmtest::bptest with
 * studentize = TRUE; lmtest::dwtest's statistic), each with the remedy it suggests.
 *   h_i = w_i x_i' (X'WX)^-1 x_i, e_i = sqrt(w_i)(y_i - x_i'b), s^2 = RSS/(n-p)
 *   rstudent_i = e_i / (s_(i) sqrt(1-h_i)),  s_(i)^2 = (RSS - e_i^2/(1-h_i)) / (n-p-1)
 *   Cook's D_i = (e_i / (s (1-h_i)))^2 h_i / p
 *   GVIF_t = det(C_tt) det(C_-t,-t) / det(C), C the correlation of the coefficients without the
 *            intercept (Fox & Monette 1992); GVIF^(1/(2 df)) is comparable to sqrt(VIF)
 *   BP = n * sum(fitted^2) / sum(u^2), u = e^2 - RSS/n regressed on X (Koenker 1981), df = p - 1
 *   DW = sum (e_i - e_{i-1})^2 / sum e_i^2 over the rows in table order, across block boundaries. */
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void sm_lm_diag_destroy(sm_lm_diag **dp) {
  if (!dp || !*dp) return;
  sm_lm_diag *d = *dp;
  free(d->hat), free(d->rstudent), free(d->cooks), free(d->gvif), free(d->gvif_adj), free(d->vif_df);
  free(d);
  *dp = NULL;
}

/* log det of the sub-matrix of the correlation matrix C (q x q) on the index set sel (n of them). */
static double logdet(const double *C, int q, const int *sel, int n) {
  double *a = malloc(((size_t)n * n + 1) * sizeof *a);
  if (!a) return NAN;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      a[i + j * n] = C[sel[i] + sel[j] * q];
  double ld = 0;
  if (n && LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'U', n, a, n) != 0) ld = NAN;
  for (int i = 0; i < n && !isnan(ld); i++)
    ld += 2 * log(a[i + i * n]);
  free(a);
  return ld;
}

static void vif(const sm_frame *f, const sm_lm *m, sm_lm_diag *d) {
  int p = f->p, o = f->intercept, q = p - o;
  d->nvif = 0;
  if (!o || f->nterms < 2) return; /* car::vif needs an intercept and two terms */
  double *C = malloc(((size_t)q * q + 1) * sizeof *C);
  int *in = malloc(((size_t)q + 1) * sizeof *in), *out = malloc(((size_t)q + 1) * sizeof *out),
      *all = malloc(((size_t)q + 1) * sizeof *all);
  d->gvif = calloc((size_t)f->nterms, sizeof *d->gvif);
  d->gvif_adj = calloc((size_t)f->nterms, sizeof *d->gvif_adj);
  d->vif_df = calloc((size_t)f->nterms, sizeof *d->vif_df);
  if (C && in && out && all && d->gvif && d->gvif_adj && d->vif_df) {
    const double *V = m->cov_unscaled;
    for (int i = 0; i < q; i++)
      for (int j = 0; j < q; j++)
        C[i + j * q] = V[(i + o) + (j + o) * p] / sqrt(V[(i + o) * (p + 1)] * V[(j + o) * (p + 1)]);
    for (int i = 0; i < q; i++)
      all[i] = i;
    double ldall = logdet(C, q, all, q);
    for (int t = 0; t < f->nterms; t++) {
      int ni = 0, no = 0;
      for (int i = 0; i < q; i++) {
        if (f->col_term[i + o] == t)
          in[ni++] = i;
        else
          out[no++] = i;
      }
      d->gvif[t] = exp(logdet(C, q, in, ni) + logdet(C, q, out, no) - ldall);
      d->vif_df[t] = ni;
      d->gvif_adj[t] = pow(d->gvif[t], 1.0 / (2.0 * ni));
    }
    d->nvif = f->nterms;
  }
  free(C), free(in), free(out), free(all);
}

/* Largest Cook's distances: local top 10, gathered, merged (ties by row). */
static sm_status worst_rows(sm_ctx *ctx, const sm_frame *f, sm_lm_diag *d) {
  double top[10][4];
  int nt = 0;
  for (int64_t i = 0; i < f->n; i++) {
    double c = d->cooks[i];
    if (isnan(c)) continue;
    int k;
    if (nt < 10)
      k = nt++;
    else if (c > top[9][0] || (c == top[9][0] && (double)f->row[i] < top[9][1]))
      k = 9; /* replaces the smallest of the ten */
    else
      continue;
    top[k][0] = c, top[k][1] = (double)f->row[i], top[k][2] = d->hat[i], top[k][3] = d->rstudent[i];
    for (; k > 0 && (top[k][0] > top[k - 1][0] || (top[k][0] == top[k - 1][0] && top[k][1] < top[k - 1][1])); k--) {
      double tmp[4];
      memcpy(tmp, top[k], sizeof tmp), memcpy(top[k], top[k - 1], sizeof tmp), memcpy(top[k - 1], tmp, sizeof tmp);
    }
  }
  double *all = calloc((size_t)ctx->size * 40 + 1, sizeof *all), mine[40];
  SM_TRY(ctx, sm_ctx_agree(ctx, all ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory")));
  for (int k = 0; k < 10; k++) {
    mine[4 * k] = k < nt ? top[k][0] : -1;
    for (int j = 1; j < 4; j++)
      mine[4 * k + j] = k < nt ? top[k][j] : 0;
  }
  MPI_Allgather(mine, 40, MPI_DOUBLE, all, 40, MPI_DOUBLE, ctx->comm);
  d->nworst = 0;
  for (int k = 0; k < 10; k++) {
    int best = -1;
    for (int i = 0; i < ctx->size * 10; i++) {
      double *c = all + 4 * i;
      if (c[0] < 0) continue;
      if (best < 0 || c[0] > all[4 * best] || (c[0] == all[4 * best] && c[1] < all[4 * best + 1])) best = i;
    }
    if (best < 0) break;
    double *c = all + 4 * best;
    d->worst_cooks[k] = c[0], d->worst_row[k] = (int64_t)c[1], d->worst_hat[k] = c[2], d->worst_rstudent[k] = c[3];
    c[0] = -1;
    d->nworst++;
  }
  free(all);
  return SM_OK;
}

/* Breusch-Pagan and Durbin-Watson from the residuals e (weighted, 0 for zero-weight rows). */
static sm_status bp_dw(sm_ctx *ctx, const sm_frame *f, const sm_lm *m, const double *e, sm_lm_diag *d) {
  int K = f->p + 1;
  double sigma2 = m->rss / (double)m->n;
  double *e2 = malloc(((size_t)f->n + 1) * sizeof *e2), *one = malloc(((size_t)f->n + 1) * sizeof *one);
  double *part = calloc((size_t)f->nblk * 5 + 1, sizeof *part), *R = calloc((size_t)K * K, sizeof *R);
  SM_TRY(ctx, sm_ctx_agree(ctx, e2 && one && part && R ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory")));
  for (int b = 0; b < f->nblk; b++) {
    double *pp = part + 5 * b;
    int first = 1;
    for (int64_t i = f->blk_off[b]; i < f->blk_off[b + 1]; i++) {
      one[i] = f->w[i] > 0;
      e2[i] = e[i] * e[i];
      if (!one[i]) continue;
      double u = e2[i] - sigma2;
      pp[0] += u * u;
      if (!first)
        pp[1] += (e[i] - pp[4]) * (e[i] - pp[4]);
      else
        pp[3] = e[i], first = 0;
      pp[2] += e2[i];
      pp[4] = e[i]; /* last residual of the block */
    }
  }
  sm_status st = sm__tsqr(ctx, f, one, e2, R);
  double *all = NULL;
  int nb = 0;
  if (st == SM_OK) st = sm__block_gather(ctx, f, 5, part, &all, &nb);
  if (st == SM_OK) {
    double su2 = 0, num = 0, den = 0, mss = 0, last = NAN;
    for (int b = 0; b < nb; b++) {
      double *pp = all + 5 * b;
      if (pp[2] == 0 && pp[0] == 0) continue; /* a block with no usable rows */
      su2 += pp[0], num += pp[1], den += pp[2];
      if (!isnan(last)) num += (pp[3] - last) * (pp[3] - last);
      last = pp[4];
    }
    for (int j = f->intercept; j < f->p; j++)
      mss += R[j + f->p * K] * R[j + f->p * K];
    d->bp = (double)m->n * mss / su2;
    d->bp_df = f->p - f->intercept;
    d->bp_pval = sm__pchisq_upper(d->bp, d->bp_df);
    d->dw = num / den;
  }
  free(all), free(e2), free(one), free(part), free(R);
  return st;
}

sm_status sm_lm_diagnose(sm_ctx *ctx, const sm_frame *f, const sm_lm *m, sm_lm_diag **out) {
  *out = NULL;
  int p = f->p;
  sm_lm_diag *d = calloc(1, sizeof *d);
  double *e = malloc(((size_t)f->n + 1) * sizeof *e);
  if (d) {
    d->n = f->n;
    d->hat = malloc(((size_t)f->n + 1) * sizeof *d->hat);
    d->rstudent = malloc(((size_t)f->n + 1) * sizeof *d->rstudent);
    d->cooks = malloc(((size_t)f->n + 1) * sizeof *d->cooks);
  }
  sm_status st = (d && e && d->hat && d->rstudent && d->cooks) ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory");
  st = sm_ctx_agree(ctx, st);
  double s2 = m->rss / (double)m->rdf, n = (double)m->n;
  int64_t cnt[3] = {0, 0, 0}, tot[3];
  for (int64_t i = 0; st == SM_OK && i < f->n; i++) {
    const double *xi = f->x + i * p;
    double fit = 0, h = 0;
    for (int j = 0; j < p; j++)
      fit += xi[j] * m->coef[j];
    for (int j = 0; j < p; j++) {
      double s = 0;
      for (int k = 0; k < p; k++)
        s += m->cov_unscaled[j + k * p] * xi[k];
      h += xi[j] * s;
    }
    e[i] = sqrt(f->w[i]) * (f->y[i] - fit);
    if (!(f->w[i] > 0)) {
      d->hat[i] = 0, d->rstudent[i] = d->cooks[i] = NAN;
      continue;
    }
    h *= f->w[i];
    double si2 = (m->rss - e[i] * e[i] / (1 - h)) / (double)(m->rdf - 1);
    d->hat[i] = h;
    d->rstudent[i] = e[i] / (sqrt(si2) * sqrt(1 - h));
    d->cooks[i] = pow(e[i] / (sqrt(s2) * (1 - h)), 2) * h / p;
    cnt[0] += h > 2.0 * p / n, cnt[1] += fabs(d->rstudent[i]) > 3, cnt[2] += d->cooks[i] > 4 / n;
  }
  if (st == SM_OK && MPI_Allreduce(cnt, tot, 3, MPI_INT64_T, MPI_SUM, ctx->comm))
    st = SM_ERR(ctx, SM_ERR_MPI, "allreduce");
  if (st == SM_OK) {
    d->n_high_leverage = tot[0], d->n_outliers = tot[1], d->n_influential = tot[2];
    st = worst_rows(ctx, f, d);
  }
  if (st == SM_OK) st = bp_dw(ctx, f, m, e, d);
  if (st == SM_OK) vif(f, m, d);
  free(e);
  if (st != SM_OK) {
    sm_lm_diag_destroy(&d);
    return st;
  }
  *out = d;
  return SM_OK;
}

void sm_lm_diag_print(FILE *to, const sm_lm_diag *d, const sm_frame *f, const sm_lm *m, const char *const *labels) {
  double n = (double)m->n;
  fprintf(to, "\nRegression diagnostics (n = %lld)\n", (long long)m->n);
  fprintf(to, "Leverage: %lld row(s) with hat > 2p/n = %.4g\n", (long long)d->n_high_leverage, 2.0 * f->p / n);
  fprintf(to, "Studentized residuals: %lld row(s) with |rstudent| > 3\n", (long long)d->n_outliers);
  fprintf(to, "Cook's distance: %lld row(s) with D > 4/n = %.4g; largest:\n", (long long)d->n_influential, 4 / n);
  for (int i = 0; i < d->nworst && i < 5; i++)
    fprintf(to, "  %-24s D = %-10.4g hat = %-10.4g rstudent = %.4g\n", labels ? labels[i] : "", d->worst_cooks[i],
            d->worst_hat[i], d->worst_rstudent[i]);
  if (d->n_outliers || d->n_influential > 0.05 * n)
    fprintf(to, "  -> check these rows for data errors and refit without them to see how much the estimates move;\n"
                "     residuals that curve against a predictor call for a polynomial term, e.g. poly(x, 2)\n");
  if (d->nvif) {
    int multi = 0;
    double worst = 0;
    for (int t = 0; t < d->nvif; t++)
      multi |= d->vif_df[t] > 1, worst = fmax(worst, d->gvif_adj[t] * d->gvif_adj[t]);
    fprintf(to, "Variance inflation factors%s:\n", multi ? " (GVIF, Df, GVIF^(1/(2 Df)))" : "");
    for (int t = 0; t < d->nvif; t++)
      if (multi)
        fprintf(to, "  %-24s %10.4f %3d %10.4f\n", f->term_labels[t], d->gvif[t], d->vif_df[t], d->gvif_adj[t]);
      else
        fprintf(to, "  %-24s %10.4f\n", f->term_labels[t], d->gvif[t]);
    if (worst > 10)
      fprintf(to, "  -> collinear terms (VIF > 10): drop one of the collinear features or combine them\n");
    else if (worst > 5)
      fprintf(to, "  -> moderate collinearity (VIF > 5): standard errors are inflated\n");
  }
  char pv[1][SM_RFMT_MAX];
  sm__r_format_pval(&d->bp_pval, 1, 4, pv);
  fprintf(to, "Breusch-Pagan (studentized): BP = %.5g, df = %g, p-value = %s\n", d->bp, d->bp_df, pv[0]);
  if (d->bp_pval < 0.05)
    fprintf(to, "  -> heteroscedastic residuals: use weighted least squares (--weights), a variance-stabilising\n"
                "     transform of the response (log, sqrt), or robust standard errors\n");
  fprintf(to, "Durbin-Watson (table row order): DW = %.4f\n", d->dw);
  if (d->dw < 1.5 || d->dw > 2.5)
    fprintf(to, "  -> serially correlated residuals: sort the table in time order, add time or lagged terms\n");
}
