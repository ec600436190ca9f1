/* Reductions over fixed blocks that give bit-identical results at every rank count (private to
 * the library; used by src/stats and src/unsupervised).
 *
 * Blocks: nb blocks with global indices 0..nb-1, whose layout depends on the data only, never on
 * the rank count; each rank holds the contiguous range [b0, b1) (b1 == b0: none), ranks in block
 * order. The callers decide what a block is (a model frame's row blocks, a matrix's B-row
 * blocks).
 *
 * Tree: block values are combined by the binary tree over block indices (node (l, j) covers
 * blocks [j 2^l, (j+1) 2^l), a node's value is left (+) right; a node without a right half is
 * its left half). Each rank evaluates the maximal nodes inside its range, the few node values are
 * gathered, and every rank finishes the tree the same way: the same floating-point operations in
 * the same order for any rank count.
 *
 * TSQR (Demmel, Grigori, Hoemmen & Langou 2012, "Communication-optimal parallel and sequential QR
 * and LU factorizations", SIAM J. Sci. Comput. 34): the tree whose leaves are the R factors of
 * the blocks' Householder QRs and whose combine is the QR of two stacked R factors. */
#ifndef SISMA_CORE_BLOCKTREE_H
#define SISMA_CORE_BLOCKTREE_H

#include "sisma/core.h"

/* A tree reduction: leaf writes the value of block b (len doubles) into out; combine does
 * acc = acc (+) right. */
typedef struct {
  int64_t len;
  sm_status (*leaf)(void *u, int64_t b, double *out);
  void (*combine)(void *u, int64_t len, double *acc, const double *right);
  void *u;
} sm__tree_op;
/* Reduce over blocks 0..nb-1 (this rank holds [b0, b1), leaf is called for those only); out
 * [len] replicated (zeros when nb == 0). Collective. */
sm_status sm__tree_reduce(sm_ctx *ctx, int64_t nb, int64_t b0, int64_t b1, const sm__tree_op *op, double *out);
/* combine for plain sums */
void sm__tree_add(void *u, int64_t len, double *acc, const double *right);

/* Rows of block b for TSQR: writes [*rows][c] row-major into out (*rows <= the max_rows given
 * to sm__tree_tsqr; 0 rows is allowed). */
typedef sm_status (*sm__rows_fn)(void *u, int64_t b, double *out, int64_t *rows);
/* R factor of the QR factorisation of the matrix stacked from the blocks' rows, c columns: R is
 * [c][c] column-major upper triangular (R[i + j c]), zeros when there are no rows. Collective. */
sm_status sm__tree_tsqr(sm_ctx *ctx, int64_t nb, int64_t b0, int64_t b1, int64_t c, int64_t max_rows, sm__rows_fn fn,
                        void *u, double *R);

#endif
