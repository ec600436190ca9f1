/* k-means and PCA timings for bench/unsupervised.sh. Reads a 2-D dataset as a table
 * ("file.h5:/x", float32 or float64, converted to float64 rows), then:
 *   unsupervised_bench kmeans SPEC K ITERS   Lloyd from the first K rows as centres, tol 0
 *   unsupervised_bench pca SPEC K METHOD     METHOD = exact | single | randomized | tsqr
 *                                            (single: exact with float32 Gram products)
 * and prints one "BENCH key=value ..." line on rank 0 (times are MPI_Wtime around the fit, after
 * a barrier, and cpu_s the CPU time of the fit summed over the ranks; the load is not timed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sisma/sisma.h"
#include "sisma/table.h"
#include "sisma/unsupervised.h"

/* CPU seconds of this process. */
static double cpu_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* CPU seconds since c0, summed over the ranks (on rank 0). Collective. */
static double cpu_sum(sm_ctx *ctx, double c0) {
  double c = cpu_now() - c0, sum = 0;
  MPI_Reduce(&c, &sum, 1, MPI_DOUBLE, MPI_SUM, 0, ctx->comm);
  return sum;
}

static double *load(sm_ctx *ctx, const char *spec, sm_rows *x) {
  sm_table *t = NULL;
  if (sm_table_open(ctx, spec, &t) != SM_OK) sm_ctx_abort(ctx, SM_ERR_IO);
  sm_range r = sm_table_range(t);
  int d = sm_table_ncols(t);
  double *v = malloc((size_t)(r.count * d + 1) * sizeof *v);
  for (int j = 0; j < d; j++) {
    const double *c = sm_table_num(t, j);
    for (int64_t i = 0; i < r.count; i++) v[i * d + j] = c[i];
  }
  *x = (sm_rows){sm_table_nrows(t), r.first, r.count, d, v};
  sm_table_close(&t);
  return v;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  sm_ctx *ctx = NULL;
  sm_ctx_create(MPI_COMM_WORLD, &ctx);
  if (argc < 5) {
    if (!ctx->rank) fprintf(stderr, "usage: %s kmeans|pca SPEC K ITERS|METHOD\n", argv[0]);
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  sm_rows x;
  double *v = load(ctx, argv[2], &x);
  int k = atoi(argv[3]);
  sm_status st;
  if (!strcmp(argv[1], "kmeans")) {
    double *c = calloc((size_t)k * x.d, sizeof *c); /* the first k rows (on rank 0: tables split in order) */
    if (ctx->rank == 0) memcpy(c, v, (size_t)k * x.d * sizeof *c);
    MPI_Bcast(c, (int)(k * x.d), MPI_DOUBLE, 0, ctx->comm);
    sm_kmeans_opts o;
    sm_kmeans_opts_default(&o);
    o.k = k, o.init = SM_KMEANS_INIT_GIVEN, o.init_centers = c, o.max_iter = atoi(argv[4]), o.tol = 0;
    o.silhouette_sample = 0;
    sm_kmeans_result r;
    MPI_Barrier(ctx->comm);
    double t0 = MPI_Wtime(), c0 = cpu_now();
    st = sm_kmeans_fit(ctx, &x, &o, &r);
    double t = MPI_Wtime() - t0, cpu = cpu_sum(ctx, c0);
    if (st == SM_OK && ctx->rank == 0)
      printf("BENCH kind=kmeans ranks=%d n=%lld d=%lld k=%d n_iter=%d fit_s=%.4f cpu_s=%.4f per_iter_ms=%.3f "
             "lloyd_ms=%.3f inertia=%.10g\n",
             ctx->size, (long long)x.n, (long long)x.d, k, r.n_iter, t, cpu, 1e3 * t / r.n_iter,
             1e3 * r.iter_seconds / r.n_iter, r.inertia);
    if (st == SM_OK) sm_kmeans_result_fini(&r);
    free(c);
  } else {
    sm_pca_opts o;
    sm_pca_opts_default(&o);
    o.k = k;
    o.single = !strcmp(argv[4], "single");
    o.method = !strcmp(argv[4], "exact") || o.single ? SM_PCA_EXACT
               : !strcmp(argv[4], "tsqr")            ? SM_PCA_TSQR
                                                     : SM_PCA_RANDOMIZED;
    sm_pca_result r;
    MPI_Barrier(ctx->comm);
    double t0 = MPI_Wtime(), c0 = cpu_now();
    st = sm_pca_fit(ctx, &x, &o, &r);
    double t = MPI_Wtime() - t0, c = cpu_sum(ctx, c0);
    if (st == SM_OK && ctx->rank == 0) {
      printf("BENCH kind=pca method=%s ranks=%d n=%lld d=%lld k=%d fit_s=%.4f cpu_s=%.4f ev=", argv[4], ctx->size,
             (long long)x.n, (long long)x.d, k, t, c);
      for (int j = 0; j < k; j++) printf("%s%.12g", j ? "," : "", r.explained_variance[j]);
      printf(" solver=\"%s\"\n", r.solver);
    }
    if (st == SM_OK) sm_pca_result_fini(&r);
  }
  if (st != SM_OK) sm_ctx_print_error(ctx, 0);
  free(v);
  sm_ctx_destroy(&ctx);
  MPI_Finalize();
  return st == SM_OK ? 0 : 1;
}
