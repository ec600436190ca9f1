/* Where a fit's time goes, for bench/stats.sh: build the frame once, then REPS times, a barrier
 * before each part: one read-only pass over the frame's X and y (the floor), the Gram pass with
 * its reduction and Cholesky (sm__fit_r), the residual pass over X as sm_lm_fit runs it (residuals,
 * range and the quantile histogram, sm__residuals block by block), the exact quantile selection
 * (sm__quantiles5_hist) and the whole sm_lm_fit. Usage: stats_parts SPEC FORMULA REPS. Prints one
 * JSON line on rank 0: the median and best wall time of each part (seconds, rank 0). Uses the
 * library's private stats interfaces (src/stats/internal.h). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "sisma/sisma.h"
#include "sisma/stats.h"
#include "stats_pass.h"

#define NPARTS 5
static const char *const part_name[NPARTS] = {"pass", "gram", "residuals", "quantiles", "fit"};

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  sm_ctx *ctx = NULL;
  sm_ctx_create(MPI_COMM_WORLD, &ctx);
  int reps = argc > 3 ? atoi(argv[3]) : 0;
  if (reps < 1 || reps > 1000) {
    if (!ctx->rank) fprintf(stderr, "usage: %s SPEC FORMULA REPS\n", argv[0]);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  sm_table *t = NULL;
  sm_formula *fm = NULL;
  sm_frame *fr = NULL;
  sm_lm *m = NULL;
  if (sm_table_open(ctx, argv[1], &t) != SM_OK) sm_ctx_abort(ctx, SM_ERR_IO);
  int nc = sm_table_ncols(t);
  const char **names = malloc((size_t)nc * sizeof *names);
  for (int j = 0; j < nc; j++)
    names[j] = sm_table_col_name(t, j);
  if (sm_formula_parse(ctx, argv[2], names, nc, &fm) != SM_OK) sm_ctx_abort(ctx, SM_ERR_ARG);
  if (sm_frame_create(ctx, t, fm, NULL, NULL, 4096, &fr) != SM_OK) sm_ctx_abort(ctx, SM_ERR_DATA);
  if (sm_lm_fit(ctx, fr, 1, &m) != SM_OK) sm_ctx_abort(ctx, SM_ERR_NUMERIC); /* the coefficients */
  int p = fr->p, K = p + 1;
  double *R = malloc((size_t)K * K * sizeof *R), *r = malloc(((size_t)fr->n + 1) * sizeof *r), sink = 0;
  double *T = malloc((size_t)NPARTS * reps * sizeof *T);
  int64_t *h = calloc(SM_QBINS, sizeof *h);
  double s4 = 4 * sqrt(m->rss / (double)m->n); /* the histogram's window, as lm.c's residual pass */
  sm__qbins bn = sm__qbins_over(-s4, s4);
  for (int k = 0; k < reps; k++) {
    double t0, q[5], mm[2] = {INFINITY, INFINITY};
    int used_gram;
    sm_lm *m2 = NULL;
    MPI_Barrier(MPI_COMM_WORLD), t0 = sm_wtime();
    sink += pass(fr->x, fr->n * p) + pass(fr->y, fr->n);
    MPI_Barrier(MPI_COMM_WORLD), T[k] = sm_wtime() - t0, t0 = sm_wtime();
    if (sm__fit_r(ctx, fr, fr->w, fr->y, 1, R, &used_gram) != SM_OK) sm_ctx_abort(ctx, SM_ERR_NUMERIC);
    MPI_Barrier(MPI_COMM_WORLD), T[reps + k] = sm_wtime() - t0, t0 = sm_wtime();
    memset(h, 0, SM_QBINS * sizeof *h);
    for (int b = 0; b < fr->nblk; b++) {
      int64_t o = fr->blk_off[b];
      sm__residuals(fr->x + o * p, fr->y + o, fr->blk_off[b + 1] - o, p, m->coef, r + o, &bn, h, mm);
    }
    MPI_Barrier(MPI_COMM_WORLD), T[2 * reps + k] = sm_wtime() - t0, t0 = sm_wtime();
    if (sm__quantiles5_hist(ctx, r, fr->n, fr->n_total, -INFINITY, INFINITY, &bn, h, q) != SM_OK)
      sm_ctx_abort(ctx, SM_ERR_NUMERIC);
    MPI_Barrier(MPI_COMM_WORLD), T[3 * reps + k] = sm_wtime() - t0, t0 = sm_wtime();
    if (sm_lm_fit(ctx, fr, 1, &m2) != SM_OK) sm_ctx_abort(ctx, SM_ERR_NUMERIC);
    MPI_Barrier(MPI_COMM_WORLD), T[4 * reps + k] = sm_wtime() - t0;
    sink += q[2] + m2->coef[0];
    sm_lm_destroy(&m2);
  }
  if (!ctx->rank) printf("{\"fits\": %d", reps);
  for (int i = 0; i < NPARTS; i++) {
    qsort(T + i * reps, (size_t)reps, sizeof *T, cmp);
    if (!ctx->rank)
      printf(", \"%s_median_s\": %.6f, \"%s_best_s\": %.6f", part_name[i], T[i * reps + reps / 2], part_name[i],
             T[i * reps]);
  }
  if (!ctx->rank) printf(", \"check\": %g}\n", sink);
  free(R), free(r), free(T), free(h), free(names);
  sm_lm_destroy(&m);
  sm_frame_destroy(&fr);
  sm_formula_destroy(&fm);
  sm_table_close(&t);
  sm_ctx_destroy(&ctx);
  MPI_Finalize();
  return 0;
}
