/* One read-only pass over a float64 table at memory bandwidth, split over the MPI ranks as sisma
 * splits a table: the floor for "within 3x of one pass over the data". The table is in huge pages
 * where the kernel grants them (as sisma's are, core/cpu.c) and summed by stats_pass.h. Usage:
 * stats_bw ROWS COLS. Prints the median time of 7 passes (after a warm-up) of the whole table
 * across ranks. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "stats_pass.h"

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  long rows = argc > 1 ? atol(argv[1]) : 1000000, cols = argc > 2 ? atol(argv[2]) : 16;
  long n = rows / size * cols;
  size_t huge = (size_t)2 << 20, bytes = ((size_t)n * sizeof(double) + huge - 1) & ~(huge - 1);
  double *x = aligned_alloc(huge, bytes), t[8], sum = 0;
  if (!x) MPI_Abort(MPI_COMM_WORLD, 1);
  (void)madvise(x, bytes, MADV_HUGEPAGE);
  for (long i = 0; i < n; i++)
    x[i] = (double)(i % 1000) * 1e-3;
  for (int r = 0; r < 8; r++) {
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    sum += pass(x, n);
    MPI_Barrier(MPI_COMM_WORLD);
    t[r] = MPI_Wtime() - t0;
  }
  qsort(t + 1, 7, sizeof *t, cmp);
  if (rank == 0)
    printf("{\"one_pass_s\": %.6f, \"bytes\": %ld, \"gb_per_s\": %.2f, \"check\": %g}\n", t[4], rows * cols * 8,
           (double)(rows * cols * 8) / t[4] / 1e9, sum);
  free(x);
  MPI_Finalize();
  return 0;
}
