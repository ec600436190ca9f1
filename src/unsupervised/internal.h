/* Private machinery of src/unsupervised: fixed row blocks and the fixed reduction tree that make
 * k-means and PCA results independent of the rank count.
 *
 * Blocks: the n rows are cut into blocks of B rows aligned to global indices (B depends on n
 * only). Block b belongs to the rank that holds its first row; that rank also receives, once, the
 * few rows of its last block that live on the next ranks (the "edge"), so every block is
 * processed whole by one rank. Per-row work during the iterations is done in this aligned layout;
 * per-row outputs travel back to the rows' owners with sm__blocks_return.
 *
 * Tree: block values are combined by the fixed binary tree over block indices of
 * src/core/blocktree.h (sm__tree_reduce, sm__tree_tsqr over [b0, b1) of nb): the same
 * floating-point operations in the same order for any rank count. */
#ifndef SISMA_UNSUPERVISED_INTERNAL_H
#define SISMA_UNSUPERVISED_INTERNAL_H

#include "../core/blocktree.h"
#include "sisma/unsupervised.h"

typedef struct {
  const sm_rows *x;
  int64_t B;       /* rows per block */
  int64_t nb;      /* global block count ceil(n / B) */
  int64_t b0, b1;  /* this rank's blocks [b0, b1) */
  int64_t a0, a1;  /* aligned rows [a0, a1) = rows of blocks [b0, b1) */
  double *edge;    /* [a1 - edge_first][d]: rows of the last block, copied whole when it straddles */
  int64_t edge_first; /* global first row of edge (a1 when none) */
  int64_t *ranges; /* [size][2] first, count of every rank */
  int64_t *aligned;/* [size][2] a0, a1 - a0 of every rank */
} sm__blocks;

/* A status for an MPI return code inside an expression (SM_MPI returns instead). */
static inline sm_status sm__mpi_check(sm_ctx *ctx, int rc, const char *call, const char *file, int line) {
  return rc == MPI_SUCCESS ? SM_OK : sm__mpi_error(ctx, rc, call, file, line);
}
#define SM_MPI_STATUS(ctx, call) sm__mpi_check((ctx), (call), #call, __FILE__, __LINE__)

/* Set up the blocks of x with at least min_rows rows per block (a function of the shape only;
 * collective: gathers the ranges, fetches the edge rows). */
sm_status sm__blocks_init(sm_ctx *ctx, const sm_rows *x, int64_t min_rows, sm__blocks *bk);
void sm__blocks_fini(sm__blocks *bk);
/* Rows of block b (held by this rank): pointer to [*rows][d]. Local. */
const double *sm__block_rows(const sm__blocks *bk, int64_t b, int64_t *rows);
/* Move per-row values computed in the aligned layout (aligned [a1 - a0][width] bytes) back to the
 * rows' owners (mine [count][width] bytes). Collective. */
sm_status sm__blocks_return(sm_ctx *ctx, const sm__blocks *bk, const void *aligned, void *mine, size_t width);
/* Send rows need[r] (pairs first, count) of a row-sharded buffer (have[s]: the rows rank s holds,
 * `width` bytes each) to every rank r: a general exchange of row ranges. Collective. */
sm_status sm__exchange_rows(sm_ctx *ctx, const int64_t *have, const int64_t *need, const void *src, void *dst,
                            size_t width);
/* Rows idx[0..m) (global) of the matrix, replicated into out [m][d] (each held row sent by the
 * rank that holds it in the aligned layout). Collective. */
sm_status sm__blocks_fetch(sm_ctx *ctx, const sm__blocks *bk, int m, const int64_t *idx, double *out);

/* Column means and variances (ddof 0) of x, deterministic. Collective. */
sm_status sm__column_moments(sm_ctx *ctx, const sm__blocks *bk, double *mean, double *var);

/* Check that no value is NaN/Inf: SM_ERR_DATA naming the first bad row and column. Collective. */
sm_status sm__check_finite(sm_ctx *ctx, const sm_rows *x);

#endif
