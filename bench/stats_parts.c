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
#include "stats_frame.h"
#include "stats_pass.h"

#define NPARTS 5
static const char *const part_name[NPARTS] = {"pass", "gram", "residuals", "quantiles", "fit"};

int main(int argc, char **argv) {
  bench_fit b;
  bench_open(&argc, &argv, &b);
  sm_ctx *ctx = b.ctx;
  const sm_frame *fr = b.fr;
  int reps = b.reps;
  sm_lm *m = NULL;
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
    qsort(T + i * reps, (size_t)reps, sizeof *T, cmp_double);
    if (!ctx->rank)
      printf(", \"%s_median_s\": %.6f, \"%s_best_s\": %.6f", part_name[i], T[i * reps + reps / 2], part_name[i],
             T[i * reps]);
  }
  if (!ctx->rank) printf(", \"check\": %g}\n", sink);
  free(R), free(r), free(T), free(h);
  sm_lm_destroy(&m);
  bench_close(&b);
  return 0;
}
