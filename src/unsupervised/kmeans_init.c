/* k-means initialisations, identical for every rank count.
 *
 * k-means++ (Arthur & Vassilvitskii 2007, greedy variant as scikit-learn: 2 + floor(ln k)
 * candidates per centre, keep the one that lowers the potential most). D^2 sampling over rows
 * spread across ranks needs a cumulative sum that does not depend on where the ranks split the
 * rows: the weights D^2 are quantised to integers (D^2 / max D^2 * 2^(62 - log2 n), floor), whose
 * sums are exact in any order, so the row hit by a draw r in [0, total) is the same for any rank
 * count. Draws come from the Philox stream of (seed, run).
 *
 * k-means|| (Bahmani, Moseley, Vattani, Kumar, Vassilvitskii, VLDB 2012): `rounds` rounds in which
 * row i joins the candidates with probability min(1, l D^2_i / phi), l = oversampling * k, the
 * draw for row i in round t being the Philox value (seed, row i, t); the candidates are weighted
 * by the rows closest to them and reduced to k by weighted k-means++ and weighted Lloyd, on every
 * rank identically. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kmeans_internal.h"
#include "sisma/rng.h"
#include "sisma/shard.h"

static uint64_t run_seed(const sm_kmeans_opts *o, int run) {
  return o->seed ^ (UINT64_C(0x9E3779B97F4A7C15) * (uint64_t)(run + 1));
}

/* closest[i] = min(closest[i], |x_i - c|^2) over the aligned rows (first: plain assignment). */
static void update_closest(const sm__blocks *bk, const double *c, double *closest, int first) {
  int64_t d = bk->x->d;
  for (int64_t i = bk->a0; i < bk->a1; i++) {
    double v = sm__sqdist(sm__aligned_row(bk, i), c, d);
    if (first || v < closest[i - bk->a0]) closest[i - bk->a0] = v;
  }
}

/* Rows hit by the integer draws r[0..m) under the quantised weights of closest. Collective. */
static sm_status d2_sample(sm_ctx *ctx, const sm__blocks *bk, const double *closest, sm_rng *rng, int m,
                           int64_t *rows) {
  int64_t na = bk->a1 - bk->a0, nbits = 1;
  while (((int64_t)1 << nbits) <= bk->x->n) nbits++;
  double mx = 0;
  for (int64_t i = 0; i < na; i++) mx = fmax(mx, closest[i]);
  SM_MPI(ctx, MPI_Allreduce(MPI_IN_PLACE, &mx, 1, MPI_DOUBLE, MPI_MAX, ctx->comm));
  double scale = mx > 0 ? ldexp(1.0, (int)(62 - nbits)) / mx : 0;
  uint64_t tot = 0, *all = NULL;
  for (int64_t i = 0; i < na; i++) tot += (uint64_t)(closest[i] * scale);
  SM_TRY(ctx, SM_ALLOC(ctx, all, ctx->size));
  sm_status st = SM_MPI_STATUS(ctx, MPI_Allgather(&tot, 1, MPI_UINT64_T, all, 1, MPI_UINT64_T, ctx->comm));
  uint64_t before = 0, total = 0;
  for (int r = 0; r < ctx->size; r++) before += r < ctx->rank ? all[r] : 0, total += all[r];
  for (int t = 0; st == SM_OK && t < m; t++) {
    if (total == 0) { /* every row sits on a centre: uniform draw */
      rows[t] = (int64_t)sm_rng_below(rng, (uint64_t)bk->x->n);
      continue;
    }
    uint64_t r = sm_rng_below(rng, total);
    rows[t] = -1;
    if (r < before || r >= before + tot) continue;
    uint64_t acc = before;
    for (int64_t i = 0; i < na; i++) {
      acc += (uint64_t)(closest[i] * scale);
      if (r < acc) {
        rows[t] = bk->a0 + i;
        break;
      }
    }
  }
  free(all);
  SM_TRY(ctx, st);
  SM_MPI(ctx, MPI_Allreduce(MPI_IN_PLACE, rows, m, MPI_INT64_T, MPI_MAX, ctx->comm));
  return SM_OK;
}

typedef struct {
  const sm__blocks *bk;
  const double *closest, *cand; /* [m][d] */
  int m;
} potential;

static sm_status potential_leaf(void *u, int64_t b, double *out) {
  potential *p = u;
  int64_t rows, d = p->bk->x->d, f = b * p->bk->B;
  const double *x = sm__block_rows(p->bk, b, &rows);
  for (int t = 0; t < p->m; t++) {
    double s = 0;
    for (int64_t i = 0; i < rows; i++)
      s += fmin(p->closest[f + i - p->bk->a0], sm__sqdist(x + i * d, p->cand + t * d, d));
    out[t] = s;
  }
  return SM_OK;
}

static sm_status plusplus(sm_ctx *ctx, const sm__blocks *bk, int k, uint64_t seed, double *centers) {
  int64_t d = bk->x->d, na = bk->a1 - bk->a0;
  int trials = 2 + (int)log((double)k);
  sm_rng rng;
  sm_rng_init(&rng, seed, SM_RNG_STREAM_INIT);
  double *closest = NULL, *cand = NULL, *pot = NULL;
  int64_t *rows = NULL;
  sm_status st = SM_ALLOC(ctx, closest, na + 1);
  if (st == SM_OK) st = SM_ALLOC(ctx, cand, (size_t)trials * d);
  if (st == SM_OK) st = SM_ALLOC(ctx, pot, trials);
  if (st == SM_OK) st = SM_ALLOC(ctx, rows, trials);
  st = sm_ctx_agree(ctx, st);
  int64_t first = (int64_t)sm_rng_below(&rng, (uint64_t)bk->x->n);
  if (st == SM_OK) st = sm__blocks_fetch(ctx, bk, 1, &first, centers);
  if (st == SM_OK) update_closest(bk, centers, closest, 1);
  for (int c = 1; st == SM_OK && c < k; c++) {
    st = d2_sample(ctx, bk, closest, &rng, trials, rows);
    if (st == SM_OK) st = sm__blocks_fetch(ctx, bk, trials, rows, cand);
    potential p = {bk, closest, cand, trials};
    sm__tree_op op = {trials, potential_leaf, sm__tree_add, &p};
    if (st == SM_OK) st = sm__tree_reduce(ctx, bk->nb, bk->b0, bk->b1, &op, pot);
    if (st != SM_OK) break;
    int best = 0;
    for (int t = 1; t < trials; t++)
      if (pot[t] < pot[best]) best = t;
    memcpy(centers + c * d, cand + best * d, (size_t)d * sizeof *cand);
    update_closest(bk, centers + c * d, closest, 0);
  }
  free(closest), free(cand), free(pot), free(rows);
  return st;
}

/* Weighted greedy k-means++ and weighted Lloyd on m local candidates (same on every rank). */
static void reduce_candidates(int m, int64_t d, const double *cand, const double *w, int k, uint64_t seed,
                              double *centers, double *closest, int32_t *lab, double *sum) {
  sm_rng rng;
  sm_rng_init(&rng, seed, SM_RNG_STREAM_INIT + 1);
  int trials = 2 + (int)log((double)k);
  double tw = 0;
  for (int i = 0; i < m; i++) tw += w[i];
  double r = sm_rng_uniform(&rng) * tw, acc = 0;
  int first = m - 1;
  for (int i = 0; i < m; i++)
    if ((acc += w[i]) > r) {
      first = i;
      break;
    }
  memcpy(centers, cand + first * d, (size_t)d * sizeof *cand);
  for (int i = 0; i < m; i++) closest[i] = sm__sqdist(cand + i * d, centers, d);
  for (int c = 1; c < k; c++) {
    double pot = 0, best_pot = INFINITY;
    for (int i = 0; i < m; i++) pot += w[i] * closest[i];
    int best = 0;
    for (int t = 0; t < trials; t++) {
      double rr = sm_rng_uniform(&rng) * pot, a = 0;
      int pick = m - 1;
      for (int i = 0; i < m; i++)
        if ((a += w[i] * closest[i]) > rr) {
          pick = i;
          break;
        }
      double s = 0;
      for (int i = 0; i < m; i++) s += w[i] * fmin(closest[i], sm__sqdist(cand + i * d, cand + pick * d, d));
      if (s < best_pot) best_pot = s, best = pick;
    }
    memcpy(centers + c * d, cand + best * d, (size_t)d * sizeof *cand);
    for (int i = 0; i < m; i++) closest[i] = fmin(closest[i], sm__sqdist(cand + i * d, centers + c * d, d));
  }
  for (int it = 0; it < 30; it++) {
    int moved = 0;
    for (int i = 0; i < m; i++) {
      int b = 0;
      double bv = INFINITY;
      for (int j = 0; j < k; j++) {
        double v = sm__sqdist(cand + i * d, centers + j * d, d);
        if (v < bv) bv = v, b = j;
      }
      moved += it == 0 || lab[i] != b;
      lab[i] = b;
    }
    if (!moved) break;
    memset(sum, 0, (size_t)(k * d + k) * sizeof *sum);
    for (int i = 0; i < m; i++) {
      for (int64_t t = 0; t < d; t++) sum[lab[i] * d + t] += w[i] * cand[i * d + t];
      sum[k * d + lab[i]] += w[i];
    }
    for (int j = 0; j < k; j++)
      if (sum[k * d + j] > 0)
        for (int64_t t = 0; t < d; t++) centers[j * d + t] = sum[j * d + t] / sum[k * d + j];
  }
}

/* The k-means|| candidates: indices, rows and the D^2 of every aligned row to the nearest one. */
typedef struct {
  const sm__blocks *bk;
  double *closest; /* [a1 - a0] */
  double *cand;    /* [cap][d] */
  int64_t *cidx;   /* [cap] */
  int64_t m, cap;
} cands;

/* One sampling round t: row i joins with probability min(1, ell D^2_i / phi). Sets *stop when
 * every row already is a candidate (phi = 0). Collective. */
static sm_status par_round(sm_ctx *ctx, cands *c, double ell, uint64_t seed, int t, int *stop) {
  const sm__blocks *bk = c->bk;
  int64_t na = bk->a1 - bk->a0, d = bk->x->d, nbits = 1;
  while (((int64_t)1 << nbits) <= bk->x->n) nbits++;
  /* phi from the integer-exact total of the quantised D^2 (as d2_sample): the same for any rank
   * count, unlike a floating-point sum over ranks */
  double mx = 0;
  for (int64_t i = 0; i < na; i++) mx = fmax(mx, c->closest[i]);
  SM_MPI(ctx, MPI_Allreduce(MPI_IN_PLACE, &mx, 1, MPI_DOUBLE, MPI_MAX, ctx->comm));
  *stop = mx == 0;
  if (*stop) return SM_OK;
  double scale = ldexp(1.0, (int)(62 - nbits)) / mx;
  uint64_t q = 0;
  for (int64_t i = 0; i < na; i++) q += (uint64_t)(c->closest[i] * scale);
  SM_MPI(ctx, MPI_Allreduce(MPI_IN_PLACE, &q, 1, MPI_UINT64_T, MPI_SUM, ctx->comm));
  double phi = (double)q / scale;
  int64_t *pick = NULL, *all = NULL;
  int *cnt = NULL, n_pick = 0, tot = 0;
  sm_status st = SM_ALLOC(ctx, pick, na + 1);
  if (st == SM_OK) st = SM_ALLOC(ctx, cnt, 2 * (size_t)ctx->size);
  st = sm_ctx_agree(ctx, st);
  for (int64_t i = 0; st == SM_OK && i < na; i++) {
    double u = (double)(sm_rng_at(seed, (uint64_t)(bk->a0 + i), (uint64_t)t) >> 11) * 0x1.0p-53;
    if (u < ell * c->closest[i] / phi) pick[n_pick++] = bk->a0 + i;
  }
  if (st == SM_OK) st = SM_MPI_STATUS(ctx, MPI_Allgather(&n_pick, 1, MPI_INT, cnt, 1, MPI_INT, ctx->comm));
  if (st == SM_OK) {
    for (int r = 0; r < ctx->size; r++) cnt[ctx->size + r] = tot, tot += cnt[r];
    st = sm_ctx_agree(ctx, SM_ALLOC(ctx, all, tot + 1));
  }
  if (st == SM_OK)
    st = SM_MPI_STATUS(ctx, MPI_Allgatherv(pick, n_pick, MPI_INT64_T, all, cnt, cnt + ctx->size, MPI_INT64_T,
                                           ctx->comm));
  if (st == SM_OK) {
    if (c->m + tot > c->cap) tot = (int)(c->cap - c->m); /* far beyond the expected ell: keep the first */
    memcpy(c->cidx + c->m, all, (size_t)tot * sizeof *all);
    st = sm__blocks_fetch(ctx, bk, tot, c->cidx + c->m, c->cand + c->m * d);
  }
  for (int64_t j = c->m; st == SM_OK && j < c->m + tot; j++) update_closest(bk, c->cand + j * d, c->closest, 0);
  if (st == SM_OK) c->m += tot;
  free(pick), free(all), free(cnt);
  return st;
}

/* Weights: the rows closest to each candidate (exact integer counts). Collective. */
static sm_status par_weights(sm_ctx *ctx, const cands *c, double *w) {
  const sm__blocks *bk = c->bk;
  int64_t d = bk->x->d, *wc = NULL;
  SM_TRY(ctx, sm_ctx_agree(ctx, SM_ALLOC(ctx, wc, c->m)));
  memset(wc, 0, (size_t)c->m * sizeof *wc);
  for (int64_t i = bk->a0; i < bk->a1; i++) {
    const double *x = sm__aligned_row(bk, i);
    int64_t b = 0;
    double bv = INFINITY;
    for (int64_t j = 0; j < c->m; j++) {
      double v = sm__sqdist(x, c->cand + j * d, d);
      if (v < bv) bv = v, b = j;
    }
    wc[b]++;
  }
  sm_status st = SM_MPI_STATUS(ctx, MPI_Allreduce(MPI_IN_PLACE, wc, (int)c->m, MPI_INT64_T, MPI_SUM, ctx->comm));
  for (int64_t j = 0; j < c->m; j++) w[j] = (double)wc[j];
  free(wc);
  return st;
}

static sm_status parallel_init(sm_ctx *ctx, const sm__blocks *bk, const sm_kmeans_opts *o, uint64_t seed,
                               double *centers) {
  int k = o->k, rounds = o->rounds > 0 ? o->rounds : 5;
  double ell = (o->oversampling > 0 ? o->oversampling : 2) * (double)k;
  int64_t d = bk->x->d, na = bk->a1 - bk->a0;
  cands c = {bk, NULL, NULL, NULL, 1, 1 + (int64_t)(rounds * ell * 2) + 64 + k};
  double *w = NULL, *cl = NULL, *sum = NULL;
  int32_t *lab = NULL;
  sm_status st = SM_ALLOC(ctx, c.closest, na + 1);
  if (st == SM_OK) st = SM_ALLOC(ctx, c.cidx, c.cap);
  if (st == SM_OK) st = SM_ALLOC(ctx, c.cand, c.cap * d);
  st = sm_ctx_agree(ctx, st);
  sm_rng rng;
  sm_rng_init(&rng, seed, SM_RNG_STREAM_INIT);
  if (st == SM_OK) {
    c.cidx[0] = (int64_t)sm_rng_below(&rng, (uint64_t)bk->x->n);
    st = sm__blocks_fetch(ctx, bk, 1, c.cidx, c.cand);
  }
  if (st == SM_OK) update_closest(bk, c.cand, c.closest, 1);
  int stop = 0;
  for (int t = 1; st == SM_OK && !stop && t <= rounds; t++) st = par_round(ctx, &c, ell, seed, t, &stop);
  /* fewer candidates than clusters: add rows in a seeded random order */
  sm_perm perm;
  sm_perm_init(&perm, bk->x->n, seed, SM_RNG_STREAM_INIT + 2);
  for (int64_t i = 0; st == SM_OK && c.m < k && i < bk->x->n; i++) {
    int64_t r = sm_perm_at(&perm, i), dup = 0;
    for (int64_t j = 0; j < c.m; j++) dup |= c.cidx[j] == r;
    if (dup) continue;
    c.cidx[c.m] = r;
    st = sm__blocks_fetch(ctx, bk, 1, &r, c.cand + c.m * d);
    c.m++;
  }
  if (st == SM_OK) {
    st = SM_ALLOC(ctx, w, c.m);
    if (st == SM_OK) st = SM_ALLOC(ctx, cl, c.m);
    if (st == SM_OK) st = SM_ALLOC(ctx, lab, c.m);
    if (st == SM_OK) st = SM_ALLOC(ctx, sum, (size_t)k * d + k);
    st = sm_ctx_agree(ctx, st);
  }
  if (st == SM_OK) st = par_weights(ctx, &c, w);
  if (st == SM_OK) reduce_candidates((int)c.m, d, c.cand, w, k, seed, centers, cl, lab, sum);
  free(w), free(cl), free(sum), free(lab), free(c.closest), free(c.cand), free(c.cidx);
  return st;
}

sm_status sm__kmeans_init(sm_ctx *ctx, const sm__blocks *bk, const sm_kmeans_opts *o, int run, double *centers) {
  int64_t d = bk->x->d;
  uint64_t seed = run_seed(o, run);
  switch (o->init) {
  case SM_KMEANS_INIT_GIVEN:
    memcpy(centers, o->init_centers, (size_t)(o->k * d) * sizeof *centers);
    return SM_OK;
  case SM_KMEANS_INIT_RANDOM: {
    int64_t *idx = NULL;
    SM_TRY(ctx, SM_ALLOC(ctx, idx, o->k));
    sm_perm perm;
    sm_perm_init(&perm, bk->x->n, seed, SM_RNG_STREAM_INIT);
    for (int j = 0; j < o->k; j++) idx[j] = sm_perm_at(&perm, j);
    sm_status st = sm__blocks_fetch(ctx, bk, o->k, idx, centers);
    free(idx);
    return st;
  }
  case SM_KMEANS_INIT_PARALLEL:
    return parallel_init(ctx, bk, o, seed, centers);
  default:
    return plusplus(ctx, bk, o->k, seed, centers);
  }
}
