/* Unsupervised learning over row-sharded matrices: k-means (Lloyd, k-means++, k-means||) and
 * PCA (ScaLAPACK, TSQR, randomized SVD). docs/unsupervised.md has the equations and choices.
 *
 * Data: an sm_rows view, rank r holding the contiguous rows [first, first + count) of an n x d
 * float64 matrix (any split, empty ranks allowed). Every reduction that decides a result runs
 * over fixed blocks of rows aligned to global indices and is combined by a fixed binary tree over
 * those blocks, so centres, labels, components and scores are bit-identical for every rank count
 * (except the ScaLAPACK path, whose results depend on the process grid: there they agree to
 * ~1e-12 relative). Random draws come from the counter-based generator (sisma/rng.h) keyed by
 * global row indices, so the chosen seeds do not depend on the rank count either.
 * Start reading at sm_kmeans_fit and sm_pca_fit. */
#ifndef SISMA_UNSUPERVISED_H
#define SISMA_UNSUPERVISED_H

#include "sisma/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A borrowed row-sharded matrix: this rank's rows [first, first + count) of n x d. */
typedef struct {
  int64_t n, first, count, d;
  const double *x; /* [count][d] row-major, borrowed */
} sm_rows;

/* ---------------------------------------------------------------- k-means */

typedef enum {
  SM_KMEANS_INIT_PLUSPLUS = 0, /* greedy k-means++ (D^2 sampling, 2 + ln k trials per centre) */
  SM_KMEANS_INIT_PARALLEL,     /* k-means|| (Bahmani et al. 2012), then weighted k-means++ */
  SM_KMEANS_INIT_RANDOM,       /* k distinct rows drawn uniformly */
  SM_KMEANS_INIT_GIVEN,        /* init_centers */
} sm_kmeans_init;

typedef struct {
  int k;                       /* clusters, 1..n */
  sm_kmeans_init init;
  const double *init_centers;  /* [k][d] for SM_KMEANS_INIT_GIVEN, borrowed */
  int n_init;                  /* initialisations; the lowest inertia wins (GIVEN: 1) */
  int max_iter;                /* Lloyd iterations per initialisation */
  double tol;                  /* relative tolerance: stop when sum_j |c_j' - c_j|^2 <= tol * mean column variance */
  uint64_t seed;
  int oversampling;            /* k-means||: expected candidates per round = oversampling * k (0: 2) */
  int rounds;                  /* k-means||: sampling rounds (0: 5) */
  int64_t silhouette_sample;   /* rows drawn for the silhouette (0: skip) */
  double reassignment_ratio;   /* mini-batch: clusters lighter than this fraction of the heaviest move
                                  to random rows of the batch (scikit-learn's, 0.01; 0: never) */
  int verbose;                 /* 1: "iteration 01 (inertia: 3622.78)" per iteration on rank 0 */
} sm_kmeans_opts;

void sm_kmeans_opts_default(sm_kmeans_opts *o); /* k-means++, n_init 1, max_iter 300, tol 1e-4 */

typedef struct {
  int k;
  int64_t d;
  double *centers;       /* [k][d], replicated */
  int64_t *sizes;        /* [k] rows per cluster, replicated */
  double inertia;        /* sum of squared distances to the assigned centre */
  int n_iter;            /* Lloyd iterations of the best run */
  int converged;         /* 1 if the best run met tol (or labels stopped changing) */
  int best_init;         /* which initialisation won */
  int32_t *labels;       /* [count] cluster of each of this rank's rows */
  double *distance;      /* [count] Euclidean distance of each row to its centre */
  double silhouette;     /* mean silhouette over the sample (NaN if not computed) */
  double davies_bouldin; /* Davies-Bouldin index (NaN if k < 2) */
  double iter_seconds;   /* wall time of the best run's Lloyd iterations (no set-up, no final E-step) */
} sm_kmeans_result;

/* Fit k-means to the rows. Collective. Fills res (free with sm_kmeans_result_fini). Returns
 * SM_ERR_ARG for bad options (k > n, d mismatch), SM_ERR_DATA naming the row and column of a
 * NaN/Inf value, SM_ERR_NOMEM. */
sm_status sm_kmeans_fit(sm_ctx *ctx, const sm_rows *x, const sm_kmeans_opts *opts, sm_kmeans_result *res);
void sm_kmeans_result_fini(sm_kmeans_result *res);

/* Rows that are not held in memory (a catalog larger than the ranks' memory): read rows
 * idx[0..m) (global, ascending, all inside this rank's range [first, first + count)) into
 * out [m][d]. Collective: every rank calls it the same number of times, m may be 0. */
typedef sm_status (*sm_rows_read_fn)(void *u, int64_t m, const int64_t *idx, double *out);
typedef struct {
  int64_t n, first, count, d;
  sm_rows_read_fn read;
  void *u;
} sm_row_source;

/* Mini-batch k-means (Sculley 2010; scikit-learn's MiniBatchKMeans update and its random
 * reassignment of light clusters, opts->reassignment_ratio): centres from k-means on a sample of
 * 3 x batch_size rows (at least 3k; opts->init, n_init), then max_iter epochs of global batches of
 * batch_size rows drawn by a seeded permutation (sisma/shard.h batches), c_j <- (W_j c_j + S_j) /
 * (W_j + b_j) with the batch's per-cluster sums S_j (64-bit fixed point: exact, so identical for
 * every rank count) and counts b_j, W_j += b_j; then a streamed pass for labels, distances, sizes
 * and inertia, one for Davies-Bouldin, and the silhouette of the sample as sm_kmeans_fit. Only one
 * batch, one chunk of rows and the silhouette sample are in memory at a time. Collective. */
sm_status sm_kmeans_minibatch(sm_ctx *ctx, const sm_row_source *src, const sm_kmeans_opts *opts, int64_t batch_size,
                              sm_kmeans_result *res);

/* ---------------------------------------------------------------- PCA */

typedef enum {
  SM_PCA_AUTO = 0,   /* tsqr when d <= 64; randomized when k <= d / 20 and d > 4096; else exact */
  SM_PCA_EXACT,      /* pdgesvd of the data (n <= 4 d); eigenpairs of the covariance (n > 4 d): pdsyevd, or
                        LAPACK dsyevr on rank 0 when d^2 < 1e6 and no grid is asked */
  SM_PCA_TSQR,       /* tall-skinny QR over the block tree, then the SVD of the d x d factor R */
  SM_PCA_RANDOMIZED, /* Halko-Martinsson-Tropp randomized SVD with power iterations */
} sm_pca_method;

typedef struct {
  int k;                /* components, 1..min(n, d) */
  sm_pca_method method;
  int center, scale;    /* subtract the column mean; divide by the column standard deviation (ddof 0) */
  int whiten;           /* scores divided by sqrt(explained variance) */
  int grid_rows, grid_cols; /* ScaLAPACK grid (0, 0: the squarest grid of all ranks) */
  int block;            /* ScaLAPACK block size (0: 64) */
  int single;           /* exact, n > 4d: the Gram matrix from float32 products (summed in float64):
                           faster, explained variances to ~1e-9 relative on the benchmark (tested to
                           1e-6, scikit-learn's float32 accuracy) instead of ~1e-12; 0 (default): float64 */
  int oversamples;      /* randomized: extra columns (0: 10) */
  int power_iters;      /* randomized: power iterations (-1: 7 if k < 0.1 min(n,d) else 4, as sklearn) */
  uint64_t seed;
} sm_pca_opts;

void sm_pca_opts_default(sm_pca_opts *o); /* auto, center, no scale, no whiten */

typedef struct {
  int k;
  int64_t n, d;
  sm_pca_method method;          /* the method actually used */
  char solver[64];               /* e.g. "pdsyevd 2x2 nb 64", "tsqr", "randomized q=7 p=10" */
  double *components;            /* [k][d] rows are unit principal axes, sign fixed as svd_flip */
  double *singular_values;       /* [k] of the centred (scaled) data */
  double *explained_variance;    /* [k] s^2 / (n - 1) */
  double *explained_variance_ratio; /* [k] over the total variance */
  double *cumulative_ratio;      /* [k] */
  double total_variance;         /* sum of the column variances (ddof 1) */
  double *mean;                  /* [d] column means (zeros without center) */
  double *scale;                 /* [d] column standard deviations (ones without scale) */
  int whiten;
} sm_pca_result;

/* Fit PCA. Collective. The sign of every component is fixed as scikit-learn's svd_flip: the
 * largest |score| of each component (lowest row index on ties) is positive. */
sm_status sm_pca_fit(sm_ctx *ctx, const sm_rows *x, const sm_pca_opts *opts, sm_pca_result *res);
/* Scores of this rank's rows: scores [count][k] (whitened if the fit was). Local. */
sm_status sm_pca_transform(sm_ctx *ctx, const sm_pca_result *p, const sm_rows *x, double *scores);
/* Reconstruction from the scores (inverse transform) into out [count][d]. Local. */
void sm_pca_inverse_transform(const sm_pca_result *p, int64_t count, const double *scores, double *out);
/* Root mean square of x - inverse_transform(transform(x)) over all n*d values. Collective. */
sm_status sm_pca_reconstruction_error(sm_ctx *ctx, const sm_pca_result *p, const sm_rows *x, double *rmse);
void sm_pca_result_fini(sm_pca_result *res);

#ifdef __cplusplus
}
#endif
#endif
