/* Private to the k-means files: the shared state of one fit and the initialisations. */
#ifndef SISMA_KMEANS_INTERNAL_H
#define SISMA_KMEANS_INTERNAL_H

#include "internal.h"

/* Squared Euclidean distance of two d-vectors. */
static inline double sm__sqdist(const double *a, const double *b, int64_t d) {
  double s = 0;
  for (int64_t j = 0; j < d; j++) {
    double t = a[j] - b[j];
    s += t * t;
  }
  return s;
}

/* Row i (global, inside this rank's aligned range) of the matrix. */
static inline const double *sm__aligned_row(const sm__blocks *bk, int64_t i) {
  int64_t rows, b = i / bk->B;
  return sm__block_rows(bk, b, &rows) + (i - b * bk->B) * bk->x->d;
}

/* Choose k initial centres [k][d] for initialisation number `run`. Collective. */
sm_status sm__kmeans_init(sm_ctx *ctx, const sm__blocks *bk, const sm_kmeans_opts *o, int run, double *centers);

/* Silhouette (mean over a sample) and Davies-Bouldin of the labelling. Collective. */
sm_status sm__kmeans_metrics(sm_ctx *ctx, const sm__blocks *bk, const sm_kmeans_opts *o, const int32_t *label_aligned,
                             const double *sums, const int64_t *sizes, int k, double *silhouette, double *db);

#endif
