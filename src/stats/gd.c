/* Gradient descent for least squares and logistic regression, with ridge (L2) and lasso (L1 by the
 * proximal step: soft thresholding after each gradient step, ISTA; Beck & Teboulle 2009). The
 * columns are standardized over the fitted rows first (means and scales from block sums), which
 * makes a safe step 1/L computable: the Hessian of the mean loss is at most trace(X'WX)/sum(w)
 * = number of columns (times 1/4 for the logistic loss). Each iteration: every rank computes the
 * gradient partial sums of its fixed blocks, sm__block_sum adds them by the fixed block tree (the
 * "allreduce" that makes the result independent of the rank count). SGD draws global minibatches
 * from sm_batches (a seeded permutation of the frame rows, identical at any rank count). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void sm_gd_result_destroy(sm_gd_result **rp) {
  if (!rp || !*rp) return;
  free((*rp)->coef);
  free(*rp);
  *rp = NULL;
}

typedef struct {
  const sm_frame *f;
  const sm_gd_opts *o;
  double *mu, *sc; /* [p] column means and scales (intercept: 0 and 1) */
  double *pw;      /* [n] prior weights of fitted rows, 0 for held-out rows */
  double *part;    /* [nblk][p + 2] */
} gd_state;

/* Add row i's gradient and loss to acc[p + 2] (standardized coefficients beta). */
static void row_grad(const gd_state *g, int64_t i, const double *beta, double *acc) {
  const sm_frame *f = g->f;
  int p = f->p;
  double w = g->pw[i];
  if (!(w > 0)) return;
  const double *xi = f->x + i * p;
  double z[512], eta = 0;
  for (int j = 0; j < p; j++)
    z[j] = (xi[j] - g->mu[j]) / g->sc[j], eta += z[j] * beta[j];
  double r, loss;
  if (g->o->binomial) {
    double mu = 1 / (1 + exp(-eta));
    r = mu - f->y[i];
    loss = (eta > 0 ? eta + log1p(exp(-eta)) : log1p(exp(eta))) - f->y[i] * eta;
  } else {
    r = eta - f->y[i];
    loss = 0.5 * r * r;
  }
  for (int j = 0; j < p; j++)
    acc[j] += w * r * z[j];
  acc[p] += w * loss;
  acc[p + 1] += w;
}

/* Standardization: weighted means and standard deviations of the columns over the fitted rows. */
static sm_status standardize(sm_ctx *ctx, gd_state *g) {
  const sm_frame *f = g->f;
  int p = f->p;
  double *part = calloc((size_t)f->nblk * (2 * p + 1) + 1, sizeof *part), *tot = calloc(2 * (size_t)p + 1, sizeof *tot);
  SM_TRY(ctx, sm_ctx_agree(ctx, part && tot ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory")));
  for (int b = 0; b < f->nblk; b++) {
    double *pp = part + (size_t)b * (2 * p + 1);
    for (int64_t i = f->blk_off[b]; i < f->blk_off[b + 1]; i++)
      for (int j = 0; j < p; j++)
        pp[j] += g->pw[i] * f->x[i * p + j], pp[p + j] += g->pw[i] * f->x[i * p + j] * f->x[i * p + j];
    for (int64_t i = f->blk_off[b]; i < f->blk_off[b + 1]; i++)
      pp[2 * p] += g->pw[i];
  }
  sm_status st = sm__block_sum(ctx, f, 2 * p + 1, part, tot);
  for (int j = 0; st == SM_OK && j < p; j++) {
    double m = tot[j] / tot[2 * p], v = tot[p + j] / tot[2 * p] - m * m;
    int icpt = f->intercept && j == 0;
    g->mu[j] = (icpt || !f->intercept) ? 0 : m;
    g->sc[j] = icpt ? 1 : sqrt(f->intercept ? fmax(v, 0) : tot[p + j] / tot[2 * p]);
    if (!(g->sc[j] > 0)) st = SM_ERR(ctx, SM_ERR_NUMERIC, "gradient descent: column %s is constant", f->names[j]);
  }
  free(part), free(tot);
  return st;
}

/* One step: beta -= lr (grad + l2 beta), then the lasso's soft threshold; returns max |change|. */
static double step(const gd_state *g, const double *acc, double lr, double *beta) {
  int p = g->f->p;
  double maxd = 0;
  for (int j = 0; j < p; j++) {
    int pen = !(g->f->intercept && j == 0);
    double grad = acc[j] / acc[p + 1] + (pen ? g->o->l2 * beta[j] : 0), nb = beta[j] - lr * grad;
    if (pen && g->o->l1 > 0)
      nb = nb > lr * g->o->l1 ? nb - lr * g->o->l1 : nb < -lr * g->o->l1 ? nb + lr * g->o->l1 : 0;
    maxd = fmax(maxd, fabs(nb - beta[j]));
    beta[j] = nb;
  }
  return maxd;
}

static double penalized(const gd_state *g, const double *acc, const double *beta) {
  int p = g->f->p;
  double c = acc[p] / acc[p + 1];
  for (int j = g->f->intercept; j < p; j++)
    c += 0.5 * g->o->l2 * beta[j] * beta[j] + g->o->l1 * fabs(beta[j]);
  return c;
}

/* Gradient over the whole frame (per block, summed by the fixed block tree). */
static sm_status full_grad(sm_ctx *ctx, gd_state *g, const double *beta, double *acc) {
  const sm_frame *f = g->f;
  int K = f->p + 2;
  memset(g->part, 0, (size_t)f->nblk * K * sizeof *g->part);
  for (int b = 0; b < f->nblk; b++)
    for (int64_t i = f->blk_off[b]; i < f->blk_off[b + 1]; i++)
      row_grad(g, i, beta, g->part + (size_t)b * K);
  return sm__block_sum(ctx, f, K, g->part, acc);
}

static sm_status run_gd(sm_ctx *ctx, gd_state *g, double lr0, double *beta, sm_gd_result *r) {
  const sm_gd_opts *o = g->o;
  double acc[514];
  for (r->iter = 0; r->iter < o->max_iter; r->iter++) {
    SM_TRY(ctx, full_grad(ctx, g, beta, acc));
    r->cost = penalized(g, acc, beta);
    if (o->log && ctx->rank == 0) fprintf(o->log, "%lld,%.17g\n", (long long)r->iter, r->cost);
    double maxb = 0;
    for (int j = 0; j < g->f->p; j++)
      maxb = fmax(maxb, fabs(beta[j]));
    if (step(g, acc, lr0 / (1 + o->decay * (double)r->iter), beta) < o->tol * fmax(1, maxb)) {
      r->converged = 1;
      r->iter++;
      break;
    }
  }
  return SM_OK;
}

/* Minibatch SGD: the batch members of each rank, grouped by block so the sums keep block order. */
static sm_status run_sgd(sm_ctx *ctx, gd_state *g, double lr0, double *beta, sm_gd_result *r) {
  const sm_frame *f = g->f;
  const sm_gd_opts *o = g->o;
  int K = f->p + 2;
  int64_t off = 0, N = 0;
  SM_MPI(ctx, MPI_Exscan(&f->n, &off, 1, MPI_INT64_T, MPI_SUM, ctx->comm));
  SM_MPI(ctx, MPI_Allreduce(&f->n, &N, 1, MPI_INT64_T, MPI_SUM, ctx->comm));
  if (ctx->rank == 0) off = 0;
  double acc[514];
  r->iter = 0;
  for (int64_t e = 0; e < o->max_iter; e++) {
    sm_batches *bt = NULL;
    sm_range mine = {off, f->n};
    SM_TRY(ctx, sm_batches_create(ctx, N, o->batch, o->seed, (uint64_t)e, 1, mine, &bt));
    sm_status st = SM_OK;
    for (int64_t k = 0; st == SM_OK && k < sm_batches_count(bt); k++) {
      const int64_t *idx;
      int64_t nl, ng;
      st = sm_batches_get(bt, k, &idx, &nl, &ng);
      memset(g->part, 0, (size_t)f->nblk * K * sizeof *g->part);
      for (int64_t m = 0; st == SM_OK && m < nl; m++) {
        int64_t i = idx[m] - off;
        int lo = 0, hi = f->nblk - 1; /* the block of row i */
        while (lo < hi) {
          int mid = (lo + hi + 1) / 2;
          if (f->blk_off[mid] <= i)
            lo = mid;
          else
            hi = mid - 1;
        }
        row_grad(g, i, beta, g->part + (size_t)lo * K);
      }
      if (st == SM_OK) st = sm__block_sum(ctx, f, K, g->part, acc);
      if (st == SM_OK && acc[f->p + 1] > 0) {
        step(g, acc, lr0 / (1 + o->decay * (double)r->iter), beta);
        r->iter++;
      }
    }
    sm_batches_destroy(&bt);
    SM_TRY(ctx, st);
    SM_TRY(ctx, full_grad(ctx, g, beta, acc)); /* the epoch's cost on all rows */
    r->cost = penalized(g, acc, beta);
    if (o->log && ctx->rank == 0) fprintf(o->log, "%lld,%.17g\n", (long long)e, r->cost);
  }
  r->converged = 1;
  return SM_OK;
}

sm_status sm_gd_fit(sm_ctx *ctx, const sm_frame *f, const sm_gd_opts *o, sm_gd_result **out) {
  *out = NULL;
  int p = f->p;
  SM_CHECK(ctx, p > 0, SM_ERR_ARG, "the model has no coefficients (no terms and no intercept)");
  SM_CHECK(ctx, p <= 512, SM_ERR_UNSUPPORTED, "gradient descent handles at most 512 columns (%d)", p);
  gd_state g = {f,
                o,
                calloc((size_t)p + 1, sizeof(double)),
                calloc((size_t)p + 1, sizeof(double)),
                malloc(((size_t)f->n + 1) * sizeof(double)),
                malloc(((size_t)f->nblk * (p + 2) + 1) * sizeof(double))};
  sm_gd_result *r = calloc(1, sizeof *r);
  double *beta = calloc((size_t)p + 1, sizeof *beta);
  if (r) r->p = p, r->coef = calloc((size_t)p + 1, sizeof *r->coef);
  sm_status st =
      (g.mu && g.sc && g.pw && g.part && r && r->coef && beta) ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory");
  st = sm_ctx_agree(ctx, st);
  for (int64_t i = 0; st == SM_OK && i < f->n; i++)
    g.pw[i] = f->tag[i] == 1 ? f->w[i] : 0;
  if (st == SM_OK) st = standardize(ctx, &g);
  if (st == SM_OK) {
    double L = (f->p - f->intercept) + (f->intercept ? 1 : 0);
    if (o->binomial) L /= 4;
    double lr = o->lr > 0 ? o->lr : 1 / L;
    st = o->sgd ? run_sgd(ctx, &g, lr, beta, r) : run_gd(ctx, &g, lr, beta, r);
  }
  if (st == SM_OK) { /* back to the original scale */
    double shift = 0;
    for (int j = 0; j < p; j++) {
      r->coef[j] = beta[j] / g.sc[j];
      shift += r->coef[j] * g.mu[j];
    }
    if (f->intercept) r->coef[0] -= shift;
  }
  free(g.mu), free(g.sc), free(g.pw), free(g.part), free(beta);
  if (st != SM_OK) {
    sm_gd_result_destroy(&r);
    return st;
  }
  *out = r;
  return SM_OK;
}
