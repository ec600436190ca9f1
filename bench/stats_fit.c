/* Fit timings for bench/stats.sh: open a table, build the model frame once, then run sm_lm_fit
 * (the work behind `sisma lm`'s "fit + summary" timer) REPS times on it, each fit paired with one
 * read-only pass over the same frame's X and y (the data a fit must read at least once), a barrier
 * before each. Usage: stats_fit SPEC FORMULA REPS. Prints one JSON line on rank 0: the median and
 * best wall time of a fit and of a pass (seconds, rank 0), the median of the per-pair ratios fit /
 * pass (each pair run back to back, so a slow spell of a shared machine falls on both), and the
 * median thread CPU time of a fit on the busiest rank. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sisma/sisma.h"
#include "sisma/stats.h"
#include "stats_pass.h"

static double cpu_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

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
  if (sm_table_open(ctx, argv[1], &t) != SM_OK) sm_ctx_abort(ctx, SM_ERR_IO);
  int nc = sm_table_ncols(t);
  const char **names = malloc((size_t)nc * sizeof *names);
  for (int j = 0; j < nc; j++)
    names[j] = sm_table_col_name(t, j);
  if (sm_formula_parse(ctx, argv[2], names, nc, &fm) != SM_OK) sm_ctx_abort(ctx, SM_ERR_ARG);
  if (sm_frame_create(ctx, t, fm, NULL, NULL, 4096, &fr) != SM_OK) sm_ctx_abort(ctx, SM_ERR_DATA);
  double *wall = malloc(3 * (size_t)reps * sizeof *wall), *cpu = malloc((size_t)reps * sizeof *cpu), sink = 0;
  double *one = wall + reps, *ratio = one + reps;
  for (int r = 0; r < reps; r++) {
    sm_lm *m = NULL;
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = sm_wtime();
    sink += pass(fr->x, fr->n * fr->p) + pass(fr->y, fr->n);
    MPI_Barrier(MPI_COMM_WORLD);
    one[r] = sm_wtime() - t0;
    t0 = sm_wtime();
    double c0 = cpu_s();
    if (sm_lm_fit(ctx, fr, 1, &m) != SM_OK) sm_ctx_abort(ctx, SM_ERR_NUMERIC);
    cpu[r] = cpu_s() - c0, wall[r] = sm_wtime() - t0;
    ratio[r] = wall[r] / one[r];
    sm_lm_destroy(&m);
  }
  qsort(wall, (size_t)reps, sizeof *wall, cmp);
  qsort(one, (size_t)reps, sizeof *one, cmp);
  qsort(ratio, (size_t)reps, sizeof *ratio, cmp);
  qsort(cpu, (size_t)reps, sizeof *cpu, cmp);
  double cmed = cpu[reps / 2], cmax = 0;
  MPI_Reduce(&cmed, &cmax, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
  if (!ctx->rank)
    printf("{\"fits\": %d, \"fit_median_s\": %.6f, \"fit_best_s\": %.6f, \"fit_cpu_median_s\": %.6f, "
           "\"pass_median_s\": %.6f, \"pass_best_s\": %.6f, \"pass_bytes\": %lld, \"ratio_median\": %.3f, "
           "\"check\": %g}\n",
           reps, wall[reps / 2], wall[0], cmax, one[reps / 2], one[0], (long long)(fr->n_total * (fr->p + 1) * 8),
           ratio[reps / 2], sink);
  free(wall), free(cpu), free(names);
  sm_frame_destroy(&fr);
  sm_formula_destroy(&fm);
  sm_table_close(&t);
  sm_ctx_destroy(&ctx);
  MPI_Finalize();
  return 0;
}
