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

#include "stats_frame.h"
#include "stats_pass.h"

static double cpu_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
  bench_fit b;
  bench_open(&argc, &argv, &b);
  sm_ctx *ctx = b.ctx;
  const sm_frame *fr = b.fr;
  int reps = b.reps;
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
  qsort(wall, (size_t)reps, sizeof *wall, cmp_double);
  qsort(one, (size_t)reps, sizeof *one, cmp_double);
  qsort(ratio, (size_t)reps, sizeof *ratio, cmp_double);
  qsort(cpu, (size_t)reps, sizeof *cpu, cmp_double);
  double cmed = cpu[reps / 2], cmax = 0;
  MPI_Reduce(&cmed, &cmax, 1, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);
  if (!ctx->rank)
    printf("{\"fits\": %d, \"fit_median_s\": %.6f, \"fit_best_s\": %.6f, \"fit_cpu_median_s\": %.6f, "
           "\"pass_median_s\": %.6f, \"pass_best_s\": %.6f, \"pass_bytes\": %lld, \"ratio_median\": %.3f, "
           "\"check\": %g}\n",
           reps, wall[reps / 2], wall[0], cmax, one[reps / 2], one[0], (long long)(fr->n_total * (fr->p + 1) * 8),
           ratio[reps / 2], sink);
  free(wall), free(cpu);
  bench_close(&b);
  return 0;
}
