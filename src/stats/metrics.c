/* Classification metrics of predicted probabilities against 0/1 labels, over all ranks: the
 * confusion matrix at a threshold (integer sums, exact), accuracy, precision, recall, F1, and the
 * ROC AUC as the Mann-Whitney statistic with average ranks for tied scores (the area under the
 * ROC curve with ties counted one half). The AUC is computed distributed, by a sample sort: each
 * rank sorts its pairs, regular samples give P - 1 splitters, the pairs go to the rank of their
 * score range (equal scores to the same rank), and each rank counts the statistic of its range
 * plus its positives times the negatives of the ranges below (one exclusive scan). Memory and sort
 * per rank are O(n / P); the count is an exact integer (twice U), so the AUC is the same at every
 * rank count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int cmp_score(const void *a, const void *b) {
  double x = ((const double *)a)[0], y = ((const double *)b)[0];
  return (x > y) - (x < y);
}

/* An unsigned key in the order of the doubles: negatives' bits flipped, the others' sign set. */
static uint64_t score_key(double s) {
  uint64_t u;
  memcpy(&u, &s, sizeof u);
  return u >> 63 ? ~u : u | (uint64_t)1 << 63;
}

/* (score, label) pairs [n][2] sorted by score: an LSD radix sort on score_key, 11 bits a pass, the
 * passes whose digit every key shares skipped (probabilities share their high bits), stable; about
 * 5x faster than qsort (sm_roc_auc of 1e6 pairs: 38 ms, qsort alone 200 ms). qsort when the scratch
 * cannot be had. */
#define RADIX_BITS 11
static void sort_pairs(double *pairs, int64_t n) {
  double *tmp = n > 1 ? malloc((size_t)n * 2 * sizeof *tmp) : NULL, *src = pairs, *dst = tmp;
  if (!tmp) {
    qsort(pairs, (size_t)n, 2 * sizeof *pairs, cmp_score);
    return;
  }
  for (int shift = 0; shift < 64; shift += RADIX_BITS) {
    int64_t at[1 << RADIX_BITS] = {0}, sum = 0;
    for (int64_t i = 0; i < n; i++)
      at[score_key(src[2 * i]) >> shift & ((1 << RADIX_BITS) - 1)]++;
    if (at[score_key(src[0]) >> shift & ((1 << RADIX_BITS) - 1)] == n) continue; /* one digit: nothing moves */
    for (int d = 0; d < 1 << RADIX_BITS; d++) {
      int64_t c = at[d];
      at[d] = sum, sum += c;
    }
    for (int64_t i = 0; i < n; i++) {
      int64_t k = at[score_key(src[2 * i]) >> shift & ((1 << RADIX_BITS) - 1)]++;
      dst[2 * k] = src[2 * i], dst[2 * k + 1] = src[2 * i + 1];
    }
    double *t = src;
    src = dst, dst = t;
  }
  if (src != pairs) memcpy(pairs, src, (size_t)n * 2 * sizeof *pairs);
  free(tmp);
}

/* Twice the Mann-Whitney U of m sorted (score, label) pairs (an integer: ties count one half),
 * and their positives and negatives. */
static int64_t twice_u(const double *pairs, int64_t m, int64_t *npos, int64_t *nneg) {
  int64_t u2 = 0, below = 0;
  *npos = *nneg = 0;
  for (int64_t i = 0; i < m;) {
    int64_t j = i, pos = 0;
    while (j < m && pairs[2 * j] == pairs[2 * i])
      pos += pairs[2 * j + 1] > 0.5, j++;
    int64_t neg = (j - i) - pos;
    u2 += pos * (2 * below + neg); /* each positive beats the negatives below, ties count one half */
    below += neg, *npos += pos, *nneg += neg;
    i = j;
  }
  return u2;
}

double sm_roc_auc(double *pairs, int64_t m) {
  sort_pairs(pairs, m);
  int64_t npos, nneg, u2 = twice_u(pairs, m, &npos, &nneg);
  return npos > 0 && nneg > 0 ? (double)u2 / (2 * (double)npos * (double)nneg) : NAN;
}

/* The pairs [n][2] of this rank to the rank of their score range; *out the received pairs, sorted
 * ([*m][2], caller frees). pairs is sorted in place. Collective. */
#define AUC_SAMPLES 32
static sm_status sample_sort(sm_ctx *ctx, double *pairs, int64_t n, double **out, int64_t *m) {
  int P = ctx->size, ns = 0, total = 0;
  sort_pairs(pairs, n);
  double samp[AUC_SAMPLES], *all = NULL;
  for (int k = 0; k < AUC_SAMPLES && n > 0; k++)
    samp[ns++] = pairs[2 * ((n * (2 * k + 1)) / (2 * AUC_SAMPLES))];
  int64_t *cnt = calloc((size_t)P, sizeof *cnt);
  sm_status st = sm_ctx_agree(ctx, cnt ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory"));
  if (st == SM_OK) st = sm__gather_all(ctx, samp, ns, &all, &total);
  if (st == SM_OK) qsort(all, (size_t)total, sizeof *all, cmp_score); /* (compares the first double) */
  /* rank r takes the scores s with (splitters < s) == r: splitter r - 1 < s <= splitter r, the
   * splitters the same on every rank, equal scores on one rank */
  for (int64_t i = 0, r = 0; st == SM_OK && i < n; i++) {
    while (r < P - 1 && total > 0 && all[(int64_t)total * (r + 1) / P] < pairs[2 * i])
      r++;
    cnt[r]++;
  }
  free(all);
  if (st == SM_OK) st = sm__exchange(ctx, pairs, 2, cnt, out, m);
  free(cnt);
  if (st == SM_OK) sort_pairs(*out, *m);
  return st;
}

/* The ROC AUC of the pairs [n][2] of every rank (sorted in place). Collective. */
static sm_status auc_distributed(sm_ctx *ctx, double *pairs, int64_t n, double *auc) {
  double *mine = NULL;
  int64_t m = 0, c[3], below = 0, g[3];
  SM_TRY(ctx, sample_sort(ctx, pairs, n, &mine, &m));
  int64_t npos, nneg, u2 = twice_u(mine, m, &npos, &nneg);
  free(mine);
  SM_MPI(ctx, MPI_Exscan(&nneg, &below, 1, MPI_INT64_T, MPI_SUM, ctx->comm));
  if (ctx->rank == 0) below = 0; /* (Exscan leaves rank 0's undefined) */
  c[0] = u2 + 2 * below * npos, c[1] = npos, c[2] = nneg;
  SM_MPI(ctx, MPI_Allreduce(c, g, 3, MPI_INT64_T, MPI_SUM, ctx->comm));
  *auc = g[1] > 0 && g[2] > 0 ? (double)g[0] / (2 * (double)g[1] * (double)g[2]) : NAN;
  return SM_OK;
}

sm_status sm_class_metrics_compute(sm_ctx *ctx, const double *prob, const double *label, const double *weight,
                                   int64_t n, double threshold, sm_class_metrics *out) {
  memset(out, 0, sizeof *out);
  int64_t c[4] = {0, 0, 0, 0}, g[4];
  double *pairs = malloc(((size_t)n + 1) * 2 * sizeof *pairs);
  SM_TRY(ctx, sm_ctx_agree(ctx, pairs ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory")));
  for (int64_t i = 0; i < n; i++) {
    int pred = prob[i] >= threshold, y = label[i] == 1;
    c[2 * y + pred]++; /* tn, fp, fn, tp */
    pairs[2 * i] = prob[i], pairs[2 * i + 1] = y;
  }
  (void)weight;
  SM_MPI(ctx, MPI_Allreduce(c, g, 4, MPI_INT64_T, MPI_SUM, ctx->comm));
  out->tn = g[0], out->fp = g[1], out->fn = g[2], out->tp = g[3];
  out->n = g[0] + g[1] + g[2] + g[3];
  double N = (double)out->n;
  out->accuracy = N > 0 ? (double)(out->tp + out->tn) / N : NAN;
  out->precision = out->tp + out->fp ? (double)out->tp / (double)(out->tp + out->fp) : NAN;
  out->recall = out->tp + out->fn ? (double)out->tp / (double)(out->tp + out->fn) : NAN;
  out->f1 = out->precision + out->recall > 0 ? 2 * out->precision * out->recall / (out->precision + out->recall) : NAN;
  sm_status st = auc_distributed(ctx, pairs, n, &out->auc);
  free(pairs);
  return st;
}
