/* The set-up bench/stats_fit.c and bench/stats_parts.c share: MPI and a context, the arguments
 * SPEC FORMULA REPS, the table, the formula and the model frame (blocks of 4096 rows), and their
 * release; a comparison of doubles for the medians. */
#ifndef SISMA_BENCH_STATS_FRAME_H
#define SISMA_BENCH_STATS_FRAME_H
#include <stdio.h>
#include <stdlib.h>

#include "sisma/sisma.h"
#include "sisma/stats.h"

typedef struct {
  sm_ctx *ctx;
  sm_table *t;
  sm_formula *fm;
  sm_frame *fr;
  const char **names;
  int reps;
} bench_fit;

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void bench_open(int *argc, char ***argv, bench_fit *b) {
  MPI_Init(argc, argv);
  char **av = *argv;
  *b = (bench_fit){0};
  sm_ctx_create(MPI_COMM_WORLD, &b->ctx);
  b->reps = *argc > 3 ? atoi(av[3]) : 0;
  if (b->reps < 1 || b->reps > 1000) {
    if (!b->ctx->rank) fprintf(stderr, "usage: %s SPEC FORMULA REPS\n", av[0]);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  if (sm_table_open(b->ctx, av[1], &b->t) != SM_OK) sm_ctx_abort(b->ctx, SM_ERR_IO);
  int nc = sm_table_ncols(b->t);
  b->names = malloc((size_t)nc * sizeof *b->names);
  for (int j = 0; j < nc; j++)
    b->names[j] = sm_table_col_name(b->t, j);
  if (sm_formula_parse(b->ctx, av[2], b->names, nc, &b->fm) != SM_OK) sm_ctx_abort(b->ctx, SM_ERR_ARG);
  if (sm_frame_create(b->ctx, b->t, b->fm, NULL, NULL, 4096, &b->fr) != SM_OK) sm_ctx_abort(b->ctx, SM_ERR_DATA);
}

static void bench_close(bench_fit *b) {
  free(b->names);
  sm_frame_destroy(&b->fr);
  sm_formula_destroy(&b->fm);
  sm_table_close(&b->t);
  sm_ctx_destroy(&b->ctx);
  MPI_Finalize();
}
#endif
