/* Classification metrics of predicted probabilities against 0/1 labels, over all ranks: the
 * confusion matrix at a threshold (integer sums, exact), accuracy, precision, recall, F1, and the
 * ROC AUC as the Mann-Whitney statistic with average ranks for tied scores (the area under the
 * ROC curve with ties counted one half), computed on the gathered (score, label) pairs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int cmp_score(const void *a, const void *b) {
  double x = ((const double *)a)[0], y = ((const double *)b)[0];
  return (x > y) - (x < y);
}

double sm_roc_auc(double *pairs, int64_t m) {
  qsort(pairs, (size_t)m, 2 * sizeof *pairs, cmp_score);
  double rank_pos = 0, npos = 0;
  for (int64_t i = 0; i < m;) {
    int64_t j = i;
    while (j < m && pairs[2 * j] == pairs[2 * i])
      j++;
    double avg = 0.5 * (double)(i + 1 + j); /* average 1-based rank of the tie group */
    for (int64_t k = i; k < j; k++)
      if (pairs[2 * k + 1] > 0.5) rank_pos += avg, npos++;
    i = j;
  }
  double nneg = (double)m - npos;
  return npos > 0 && nneg > 0 ? (rank_pos - npos * (npos + 1) / 2) / (npos * nneg) : NAN;
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
  double *all = NULL;
  int total = 0;
  sm_status st = sm__gather_all(ctx, pairs, (int)(2 * n), &all, &total);
  free(pairs);
  if (st != SM_OK) return st;
  int64_t m = total / 2;
  out->auc = sm_roc_auc(all, m);
  free(all);
  return SM_OK;
}
