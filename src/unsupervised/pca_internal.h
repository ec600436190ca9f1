/* Private to the PCA files: the solvers. Each fills components [k][d] and singular_values [k]
 * of Z = (X - mean) / scale, with r->mean and r->scale already set. Collective. */
#ifndef SISMA_PCA_INTERNAL_H
#define SISMA_PCA_INTERNAL_H

#include "internal.h"

/* z [rows][d] = (x - mean) / scale. Local. */
void sm__pca_block(const double *x, int64_t rows, int64_t d, const double *mean, const double *scale, double *z);

sm_status sm__pca_tsqr(sm_ctx *ctx, const sm__blocks *bk, sm_pca_result *r);
sm_status sm__pca_randomized(sm_ctx *ctx, const sm__blocks *bk, const sm_pca_opts *o, sm_pca_result *r);
/* gram_z: the d x d Gram matrix Z^T Z (tall data: pdsyevd) or NULL (pdgesvd of Z). */
sm_status sm__pca_scalapack(sm_ctx *ctx, const sm__blocks *bk, const sm_pca_opts *o, sm_pca_result *r,
                            const double *gram_z);
/* One pass: column means, variances (ddof 0) and the d x d Gram matrix C of the centred data
 * (center) or of the raw data, from sums of (x - x0) with x0 = row 0 (the shifted-data algorithm:
 * C = sum (x - x0)(x - x0)^T - S S^T / n, no cancellation against a large mean). single: the
 * products in float32 (sums of rows and of chunks in float64). Also the check for non-finite
 * values (SM_ERR_DATA, as sm__check_finite), from the sums, without a pass of its own. Collective. */
sm_status sm__pca_gram(sm_ctx *ctx, const sm__blocks *bk, int center, int single, double *mean, double *var,
                       double *C);

#endif
