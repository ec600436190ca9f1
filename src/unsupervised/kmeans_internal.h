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

/* Davies-Bouldin index from the centroids [k][d] and the mean distances s [k] of each cluster's
 * rows to its centroid (NaN for k < 2). Local. */
double sm__kmeans_davies_bouldin(int k, int64_t d, const double *centroid, const double *s);
/* The silhouette sample: its size m = min(silhouette_sample, n), and (idx not NULL) its global
 * rows idx [m], ascending (a seeded permutation's first m). Local. */
int64_t sm__kmeans_sample(int64_t n, const sm_kmeans_opts *o, int64_t *idx);
/* Mean silhouette of the m sample rows x [m][d] with labels lab [m], replicated on every rank
 * (the rows' pairwise distances split over the ranks). Collective. */
sm_status sm__kmeans_silhouette(sm_ctx *ctx, int64_t m, int64_t d, int k, const double *x, const int64_t *lab,
                                double *out);

#endif
