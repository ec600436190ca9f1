/* Private to the PCA files: the solvers. Each fills components [k][d] and singular_values [k]
 * of Z = (X - mean) / scale, with r->mean and r->scale already set. Collective. */
#ifndef SISMA_PCA_INTERNAL_H
#define SISMA_PCA_INTERNAL_H

#include "internal.h"

/* z [rows][d] = (x - mean) / scale. Local. */
void sm__pca_block(const double *x, int64_t rows, int64_t d, const double *mean, const double *scale, double *z);

sm_status sm__pca_tsqr(sm_ctx *ctx, const sm__blocks *bk, sm_pca_result *r);
sm_status sm__pca_randomized(sm_ctx *ctx, const sm__blocks *bk, const sm_pca_opts *o, sm_pca_result *r);
sm_status sm__pca_scalapack(sm_ctx *ctx, const sm__blocks *bk, const sm_pca_opts *o, sm_pca_result *r);

/* R factor (upper triangular, [c][c] row-major) of the QR factorisation of the distributed
 * matrix whose block b rows are produced by rows_fn (rows x c). Tree of QRs (TSQR, Demmel et al.
 * 2012), identical for every rank count. Collective. */
typedef sm_status (*sm__rows_fn)(void *u, int64_t b, int64_t rows, double *out);
sm_status sm__tsqr(sm_ctx *ctx, const sm__blocks *bk, int64_t c, sm__rows_fn fn, void *u, double *R);

#endif
