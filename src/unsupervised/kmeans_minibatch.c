/* Mini-batch k-means for rows that do not fit in memory (see sm_kmeans_minibatch in
 * sisma/unsupervised.h). Reproducibility: batches are global (a seeded permutation cut into
 * batches, each rank reading the members in its own rows), and the batch sums are accumulated in
 * 64-bit fixed point -- each value x becomes llrint(x 2^s) with 2^s chosen from the batch's
 * largest |x| so that no sum can overflow -- which is exact, hence independent of the order and
 * of the rank count. The centre update is then the same floating-point arithmetic on every rank.
 * Random reassignment of light clusters (scikit-learn's reassignment_ratio) draws batch positions
 * from a seeded stream, the same on every rank. The final inertia, silhouette and Davies-Bouldin
 * come from float64 sums over ranks (they may differ in the last bits between rank counts;
 * labels, distances, sizes and centres do not). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kmeans_internal.h"
#include "sisma/rng.h"
#include "sisma/shard.h"

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static int nearest(const double *x, const double *c, int k, int64_t d, double *d2) {
  int best = 0;
  double bv = INFINITY;
  for (int j = 0; j < k; j++) {
    double v = sm__sqdist(x, c + j * d, d);
    if (v < bv) bv = v, best = j;
  }
  *d2 = bv;
  return best;
}

/* Initial centres: k-means (opts) on a seeded sample of m rows, read into memory. */
static sm_status init_centers(sm_ctx *ctx, const sm_row_source *src, const sm_kmeans_opts *o, int64_t m,
                              double *centers) {
  int64_t n = src->n, d = src->d, *idx = NULL, mine = 0;
  double *rows = NULL;
  sm_status st = SM_ALLOC(ctx, idx, m);
  st = sm_ctx_agree(ctx, st);
  if (st != SM_OK) return st;
  sm_perm perm;
  sm_perm_init(&perm, n, o->seed, SM_RNG_STREAM_INIT + 4);
  for (int64_t i = 0; i < m; i++) idx[i] = m == n ? i : sm_perm_at(&perm, i);
  qsort(idx, (size_t)m, sizeof *idx, cmp_i64);
  int64_t lo = 0;
  while (lo < m && idx[lo] < src->first) lo++;
  while (lo + mine < m && idx[lo + mine] < src->first + src->count) mine++;
  st = sm_ctx_agree(ctx, SM_ALLOC(ctx, rows, mine * d + 1));
  if (st == SM_OK) st = src->read(src->u, mine, idx + lo, rows);
  if (st == SM_OK) {
    sm_rows x = {m, lo, mine, d, rows};
    sm_kmeans_opts so = *o;
    so.silhouette_sample = 0, so.verbose = 0;
    sm_kmeans_result r;
    st = sm_kmeans_fit(ctx, &x, &so, &r);
    if (st == SM_OK) memcpy(centers, r.centers, (size_t)(o->k * d) * sizeof *centers);
    if (st == SM_OK) sm_kmeans_result_fini(&r);
  }
  free(idx), free(rows);
  return st;
}

/* One batch step: labels of this rank's members, exact fixed-point sums, the update. */
static sm_status batch_step(sm_ctx *ctx, const sm_row_source *src, int k, const int64_t *idx, int64_t m,
                            int64_t batch, double *x, int64_t *q, double *centers, double *weight, double *inertia) {
  int64_t d = src->d;
  SM_TRY(ctx, src->read(src->u, m, idx, x));
  double mx = 0;
  for (int64_t i = 0; i < m * d; i++) mx = fmax(mx, fabs(x[i]));
  SM_MPI(ctx, MPI_Allreduce(MPI_IN_PLACE, &mx, 1, MPI_DOUBLE, MPI_MAX, ctx->comm));
  int e = 0, bits = 1;
  frexp(mx > 0 ? mx : 1.0, &e);             /* mx < 2^e */
  while (((int64_t)1 << bits) <= batch) bits++; /* batch < 2^bits */
  double scale = ldexp(1.0, 62 - bits - e);   /* |x| 2^s < 2^(62 - bits): sums fit */
  memset(q, 0, (size_t)(k * d + k) * sizeof *q);
  double in = 0;
  for (int64_t i = 0; i < m; i++) {
    double d2;
    int j = nearest(x + i * d, centers, k, d, &d2);
    in += d2;
    for (int64_t t = 0; t < d; t++) q[j * d + t] += llrint(x[i * d + t] * scale);
    q[k * d + j]++;
  }
  SM_MPI(ctx, MPI_Allreduce(MPI_IN_PLACE, q, (int)(k * d + k), MPI_INT64_T, MPI_SUM, ctx->comm));
  SM_MPI(ctx, MPI_Allreduce(MPI_IN_PLACE, &in, 1, MPI_DOUBLE, MPI_SUM, ctx->comm));
  *inertia += in;
  for (int j = 0; j < k; j++) {
    int64_t b = q[k * d + j];
    if (!b) continue;
    for (int64_t t = 0; t < d; t++)
      centers[j * d + t] = (centers[j * d + t] * weight[j] + (double)q[j * d + t] / scale) / (weight[j] + (double)b);
    weight[j] += (double)b;
  }
  return SM_OK;
}

/* When to reassign (scikit-learn's _random_reassign, checked before each step there): whenever a
 * cluster has no weight, else once 10 k rows have gone by since the last time. */
static int reassign_due(const double *weight, int k, int64_t batch, int64_t *since) {
  int empty = 0;
  for (int j = 0; j < k; j++) empty |= weight[j] == 0;
  *since += batch;
  if (!empty && *since < 10 * (int64_t)k) return 0;
  *since = 0;
  return 1;
}

/* scikit-learn's random reassignment: clusters whose weight is below ratio x the largest (at most
 * half the batch, the lightest first) get as centres distinct rows of the batch drawn uniformly
 * (seeded; positions in the global batch, which every rank count orders the same way), and the
 * weight of the lightest cluster kept. x holds this rank's m of the batch's ng rows. Collective. */
static sm_status reassign_small(sm_ctx *ctx, double ratio, int k, int64_t d, const double *x, int64_t m, int64_t ng,
                                sm_rng *rng, double *centers, double *weight) {
  double wmax = 0, wkeep = INFINITY;
  for (int j = 0; j < k; j++) wmax = fmax(wmax, weight[j]);
  int *lo = malloc((size_t)k * sizeof *lo), n = 0;
  int64_t *pos = malloc((size_t)k * sizeof *pos), off = 0;
  double *rows = calloc((size_t)k * d + 1, sizeof *rows);
  sm_status st = sm_ctx_agree(ctx, lo && pos && rows ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory"));
  for (int j = 0; st == SM_OK && j < k; j++)
    if (weight[j] < ratio * wmax) lo[n++] = j;
  for (int a = 1; st == SM_OK && a < n; a++) /* lightest first, lowest index on ties (insertion sort) */
    for (int b = a; b > 0 && weight[lo[b]] < weight[lo[b - 1]]; b--) {
      int t = lo[b];
      lo[b] = lo[b - 1], lo[b - 1] = t;
    }
  if (n > ng / 2) n = (int)(ng / 2);
  for (int j = 0; st == SM_OK && j < k; j++) { /* the weight of the lightest cluster kept */
    int moved = 0;
    for (int a = 0; a < n; a++) moved |= lo[a] == j;
    if (!moved) wkeep = fmin(wkeep, weight[j]);
  }
  if (st == SM_OK) st = SM_MPI_STATUS(ctx, MPI_Exscan(&m, &off, 1, MPI_INT64_T, MPI_SUM, ctx->comm));
  if (ctx->rank == 0) off = 0;
  for (int a = 0; st == SM_OK && a < n; a++) { /* distinct positions by rejection: n <= ng / 2 */
    int dup;
    do {
      pos[a] = (int64_t)sm_rng_below(rng, (uint64_t)ng), dup = 0;
      for (int b = 0; b < a; b++) dup |= pos[b] == pos[a];
    } while (dup);
    if (pos[a] >= off && pos[a] < off + m) memcpy(rows + a * d, x + (pos[a] - off) * d, (size_t)d * sizeof *rows);
  }
  if (st == SM_OK && n > 0)
    st = SM_MPI_STATUS(ctx, MPI_Allreduce(MPI_IN_PLACE, rows, (int)(n * d), MPI_DOUBLE, MPI_SUM, ctx->comm));
  for (int a = 0; st == SM_OK && a < n; a++) {
    memcpy(centers + lo[a] * d, rows + a * d, (size_t)d * sizeof *rows);
    weight[lo[a]] = wkeep;
  }
  free(lo), free(pos), free(rows);
  return st;
}

/* Chunk c of this rank's rows (c may be past the end: m = 0) into x; *m its row count. */
static sm_status read_chunk(const sm_row_source *src, int64_t chunk, int64_t c, int64_t *idx, double *x, int64_t *m) {
  int64_t lo = c * chunk;
  *m = src->count - lo < chunk ? src->count - lo : chunk;
  if (*m < 0) *m = 0;
  for (int64_t i = 0; i < *m; i++) idx[i] = src->first + lo + i;
  return src->read(src->u, *m, idx, x);
}

/* Streamed passes over all rows in chunks (the same count on every rank). pass 0: labels,
 * distances, sizes, inertia and the per-cluster sums [k][d]; pass 1: the sums s [k] of the
 * distances to the centroids [k][d] of the final labels. Collective. */
static sm_status stream_pass(sm_ctx *ctx, const sm_row_source *src, int64_t chunk, int pass, sm_kmeans_result *r,
                             const double *centroid, double *sums) {
  int64_t d = src->d, k = r->k, nch = (src->count + chunk - 1) / chunk, *idx = NULL, m;
  double *x = NULL, in = 0;
  SM_MPI(ctx, MPI_Allreduce(MPI_IN_PLACE, &nch, 1, MPI_INT64_T, MPI_MAX, ctx->comm));
  sm_status st = SM_ALLOC(ctx, idx, chunk);
  if (st == SM_OK) st = SM_ALLOC(ctx, x, chunk * d);
  st = sm_ctx_agree(ctx, st);
  int64_t len = pass == 0 ? k * d : k;
  memset(sums, 0, (size_t)len * sizeof *sums);
  if (pass == 0) memset(r->sizes, 0, (size_t)k * sizeof *r->sizes);
  for (int64_t c = 0; st == SM_OK && c < nch; c++) {
    st = read_chunk(src, chunk, c, idx, x, &m);
    for (int64_t i = 0, at = c * chunk; st == SM_OK && i < m; i++) {
      const double *xi = x + i * d;
      if (pass == 1) {
        int j = r->labels[at + i];
        sums[j] += sqrt(sm__sqdist(xi, centroid + j * d, d));
        continue;
      }
      double d2;
      int j = nearest(xi, r->centers, (int)k, d, &d2);
      r->labels[at + i] = j, r->distance[at + i] = sqrt(d2);
      r->sizes[j]++;
      in += d2;
      for (int64_t t = 0; t < d; t++) sums[j * d + t] += xi[t];
    }
  }
  free(idx), free(x);
  SM_TRY(ctx, st);
  SM_MPI(ctx, MPI_Allreduce(MPI_IN_PLACE, sums, (int)len, MPI_DOUBLE, MPI_SUM, ctx->comm));
  if (pass == 1) return SM_OK;
  SM_MPI(ctx, MPI_Allreduce(MPI_IN_PLACE, r->sizes, (int)k, MPI_INT64_T, MPI_SUM, ctx->comm));
  SM_MPI(ctx, MPI_Allreduce(&in, &r->inertia, 1, MPI_DOUBLE, MPI_SUM, ctx->comm));
  return SM_OK;
}

/* The silhouette sample (sm__kmeans_sample) read through the source and replicated: rows x [m][d]
 * and labels lab [m]. Collective. */
static sm_status read_sample(sm_ctx *ctx, const sm_row_source *src, const sm_kmeans_result *r, int64_t m,
                             const int64_t *idx, double *x, int64_t *lab) {
  int64_t d = src->d, lo = 0, hi;
  while (lo < m && idx[lo] < src->first) lo++;
  for (hi = lo; hi < m && idx[hi] < src->first + src->count; hi++) continue;
  memset(x, 0, (size_t)(m * d) * sizeof *x);
  for (int64_t i = 0; i < m; i++) lab[i] = i >= lo && i < hi ? r->labels[idx[i] - src->first] : -1;
  SM_TRY(ctx, sm_ctx_agree(ctx, src->read(src->u, hi - lo, idx + lo, x + lo * d)));
  SM_MPI(ctx, MPI_Allreduce(MPI_IN_PLACE, x, (int)(m * d), MPI_DOUBLE, MPI_SUM, ctx->comm));
  SM_MPI(ctx, MPI_Allreduce(MPI_IN_PLACE, lab, (int)m, MPI_INT64_T, MPI_MAX, ctx->comm));
  return SM_OK;
}

/* Labels, distances, sizes and inertia (pass 0), then Davies-Bouldin (pass 1) and the silhouette
 * of the sample, as sm_kmeans_fit reports them. Collective. */
static sm_status final_pass(sm_ctx *ctx, const sm_row_source *src, const sm_kmeans_opts *o, int64_t chunk,
                            sm_kmeans_result *r) {
  int k = r->k;
  int64_t d = src->d, m = sm__kmeans_sample(src->n, o, NULL), *idx = NULL, *lab = NULL;
  double *sums = NULL, *s = NULL, *x = NULL;
  sm_status st = SM_ALLOC(ctx, sums, (size_t)k * d);
  if (st == SM_OK) st = SM_ALLOC(ctx, s, k);
  if (st == SM_OK) st = SM_ALLOC(ctx, idx, m + 1);
  if (st == SM_OK) st = SM_ALLOC(ctx, lab, m + 1);
  if (st == SM_OK) st = SM_ALLOC(ctx, x, m * d + 1);
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) st = stream_pass(ctx, src, chunk, 0, r, NULL, sums);
  for (int j = 0; st == SM_OK && j < k; j++) /* the centroids of the final labels */
    for (int64_t t = 0; t < d; t++) sums[j * d + t] = r->sizes[j] ? sums[j * d + t] / (double)r->sizes[j] : 0;
  if (st == SM_OK && k >= 2) st = stream_pass(ctx, src, chunk, 1, r, sums, s);
  if (st == SM_OK && k >= 2) {
    for (int j = 0; j < k; j++) s[j] = r->sizes[j] ? s[j] / (double)r->sizes[j] : 0;
    r->davies_bouldin = sm__kmeans_davies_bouldin(k, d, sums, s);
  }
  if (st == SM_OK && m >= 2 && k >= 2) {
    sm__kmeans_sample(src->n, o, idx);
    st = read_sample(ctx, src, r, m, idx, x, lab);
    if (st == SM_OK) st = sm__kmeans_silhouette(ctx, m, d, k, x, lab, &r->silhouette);
  }
  free(sums), free(s), free(idx), free(lab), free(x);
  return st;
}

sm_status sm_kmeans_minibatch(sm_ctx *ctx, const sm_row_source *src, const sm_kmeans_opts *o, int64_t batch,
                              sm_kmeans_result *r) {
  memset(r, 0, sizeof *r);
  int k = o->k;
  int64_t n = src->n, d = src->d;
  SM_CHECK(ctx, k >= 1 && k <= n && d >= 1, SM_ERR_ARG, "mini-batch k-means: k = %d for %lld rows x %lld columns", k,
           (long long)n, (long long)d);
  SM_CHECK(ctx, batch >= 1, SM_ERR_ARG, "mini-batch k-means: batch_size must be >= 1");
  int64_t m0 = 3 * batch > 3 * k ? 3 * batch : 3 * k;
  if (m0 > n) m0 = n;
  r->k = k, r->d = d, r->silhouette = r->davies_bouldin = NAN;
  double *weight = NULL, *x = NULL;
  int64_t *q = NULL, *idx = NULL;
  sm_status st = SM_ALLOC(ctx, r->centers, (size_t)k * d);
  if (st == SM_OK) st = SM_ALLOC(ctx, r->sizes, k);
  if (st == SM_OK) st = SM_ALLOC(ctx, r->labels, src->count + 1);
  if (st == SM_OK) st = SM_ALLOC(ctx, r->distance, src->count + 1);
  if (st == SM_OK) st = SM_ALLOC(ctx, weight, k);
  if (st == SM_OK) st = SM_ALLOC(ctx, q, (size_t)k * d + k);
  if (st == SM_OK) st = SM_ALLOC(ctx, x, batch * d);
  if (st == SM_OK) st = SM_ALLOC(ctx, idx, batch);
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK && o->init == SM_KMEANS_INIT_GIVEN)
    memcpy(r->centers, o->init_centers, (size_t)(k * d) * sizeof *r->centers);
  else if (st == SM_OK)
    st = init_centers(ctx, src, o, m0, r->centers);
  if (st == SM_OK) memset(weight, 0, (size_t)k * sizeof *weight);
  sm_range mine = {src->first, src->count};
  sm_rng rng;
  sm_rng_init(&rng, o->seed, SM_RNG_STREAM_INIT + 5);
  int64_t since = 0;
  double t0 = sm_wtime();
  for (int ep = 0; st == SM_OK && ep < o->max_iter; ep++) {
    sm_batches *b = NULL;
    st = sm_ctx_agree(ctx, sm_batches_create(ctx, n, batch, o->seed, (uint64_t)ep, 1, mine, &b));
    double inertia = 0;
    for (int64_t s = 0; st == SM_OK && s < sm_batches_count(b); s++) {
      const int64_t *mem;
      int64_t nl, ng;
      st = sm_batches_get(b, s, &mem, &nl, &ng);
      if (st == SM_OK) {
        memcpy(idx, mem, (size_t)nl * sizeof *idx);
        qsort(idx, (size_t)nl, sizeof *idx, cmp_i64);
        int due = o->reassignment_ratio > 0 && reassign_due(weight, k, batch, &since);
        st = batch_step(ctx, src, k, idx, nl, batch, x, q, r->centers, weight, &inertia);
        if (st == SM_OK && due) st = reassign_small(ctx, o->reassignment_ratio, k, d, x, nl, ng, &rng, r->centers, weight);
      }
    }
    sm_batches_destroy(&b);
    if (st == SM_OK && o->verbose && ctx->rank == 0) {
      printf("iteration %02d (inertia: %.2f)\n", ep + 1, inertia); /* summed over the epoch's batches */
      fflush(stdout);
    }
    r->n_iter = ep + 1;
  }
  r->iter_seconds = sm_wtime() - t0;
  if (st == SM_OK) st = final_pass(ctx, src, o, batch, r);
  free(weight), free(q), free(x), free(idx);
  if (st != SM_OK) sm_kmeans_result_fini(r);
  return st;
}
