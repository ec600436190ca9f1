/* Zero-phase Butterworth band-pass throughput of sisma on a catalog (bench/signal.sh).
 *
 *   mpirun -n P signal_bench CATALOG [batch|scalar] [BUDGET_MIB]
 *
 * Each rank streams its shard through the shard reader, converts blocks of traces to float64 and
 * filters every component with the order-4 1-45 Hz band-pass (sosfiltfilt semantics): `batch`
 * uses sm_sosfiltfilt_batch (4 series per vector), `scalar` calls sm_sosfiltfilt per series.
 * Prints one line: "BENCH sisma_<mode> ranks=P traces=N samples=S compute_s=... total_s=...
 * msamples_per_s_per_core=..." where compute_s is the slowest rank's filter time, total_s the
 * wall time including reads, and samples per second per core = S / compute_s / P. The checksum
 * (sum of the filtered samples whose global index is a multiple of 97, as the SciPy peer computes it) guards against
 * dead-code elimination and lets runs be compared. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sisma/signal.h"
#include "sisma/sisma.h"

#define BLOCK 256 /* traces converted and filtered per step */

static int bench(sm_ctx *ctx, const char *path, int batch, int64_t budget) {
  sm_catalog *cat = NULL;
  if (sm_catalog_open(ctx, path, &cat) != SM_OK) return 1;
  const sm_catalog_info *in = sm_catalog_get_info(cat);
  int64_t T = in->n_samples, C = in->n_components;
  double sos[SM_BUTTER_MAX_ORDER][6];
  int ns;
  if (sm_butter_sos(ctx, 4, 1, 45, in->sampling_rate_hz, SM_BAND_BANDPASS, &sos[0][0], &ns) != SM_OK) return 1;
  double *x = malloc(sizeof(double) * (size_t)(BLOCK * C * T));
  double *work = malloc(sizeof(double) * (size_t)sm_sosfiltfilt_work(&sos[0][0], ns, T));
  sm_reader *rd = NULL;
  MPI_Barrier(ctx->comm);
  double t0 = sm_wtime(), tc = 0, sum = 0;
  sm_range mine = sm_catalog_shard(cat, ctx->rank, ctx->size);
  if (sm_reader_create(cat, mine, budget, &rd) != SM_OK) return 1;
  int64_t first, count;
  const float *t;
  while (sm_reader_next(rd, &first, &count, &t) == SM_OK && count > 0)
    for (int64_t b = 0; b < count; b += BLOCK) {
      int64_t m = (count - b < BLOCK ? count - b : BLOCK) * C;
      for (int64_t i = 0; i < m * T; i++)
        x[i] = t[b * C * T + i];
      double a = sm_wtime();
      if (batch)
        sm_sosfiltfilt_batch(ctx, &sos[0][0], ns, x, m, T, T, work);
      else
        for (int64_t r = 0; r < m; r++)
          sm_sosfiltfilt(ctx, &sos[0][0], ns, x + r * T, T);
      tc += sm_wtime() - a;
      int64_t g0 = (first + b) * C * T; /* checksum: global sample indices divisible by 97 */
      for (int64_t i = (97 - g0 % 97) % 97; i < m * T; i += 97)
        sum += x[i];
    }
  sm_reader_destroy(&rd);
  double total = sm_wtime() - t0, tmax = 0, gsum = 0;
  MPI_Allreduce(&tc, &tmax, 1, MPI_DOUBLE, MPI_MAX, ctx->comm);
  MPI_Allreduce(&sum, &gsum, 1, MPI_DOUBLE, MPI_SUM, ctx->comm);
  MPI_Allreduce(MPI_IN_PLACE, &total, 1, MPI_DOUBLE, MPI_MAX, ctx->comm);
  double samples = (double)in->n_traces * (double)C * (double)T;
  if (ctx->rank == 0)
    printf("BENCH sisma_%s ranks=%d traces=%lld samples=%.0f compute_s=%.3f total_s=%.3f msamples_per_s_per_core=%.2f "
           "checksum=%.6e\n",
           batch ? "batch" : "scalar", ctx->size, (long long)in->n_traces, samples, tmax, total,
           samples / tmax / ctx->size / 1e6, gsum);
  free(x), free(work);
  sm_catalog_close(&cat);
  return 0;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  sm_ctx *ctx = NULL;
  if (argc < 2 || sm_ctx_create(MPI_COMM_WORLD, &ctx) != SM_OK) {
    fprintf(stderr, "usage: signal_bench CATALOG [batch|scalar] [BUDGET_MIB]\n");
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  int batch = argc < 3 || strcmp(argv[2], "scalar") != 0;
  int64_t budget = (argc > 3 ? atoll(argv[3]) : 512) << 20;
  int rc = bench(ctx, argv[1], batch, budget);
  sm_ctx_destroy(&ctx);
  MPI_Finalize();
  return rc;
}
