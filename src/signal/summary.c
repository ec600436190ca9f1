/* Run-output helpers of the signal stages: gathering per-trace values to rank 0 in trace order
 * (so every statistic is computed in one fixed order, whatever the rank count), a one-line
 * description of a distribution with quantiles, and a text histogram. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

sm_status sm__gather_f64(sm_ctx *ctx, const double *v, int64_t count, double **all, int64_t *n_all) {
  int c = (int)count, *counts = NULL, *displs = NULL;
  *all = NULL, *n_all = 0;
  SM_CHECK(ctx, count < (1 << 30), SM_ERR_ARG, "gather: %lld values on one rank", (long long)count);
  sm_status st = SM_OK;
  if (ctx->rank == 0) {
    st = SM_ALLOC(ctx, counts, 2 * ctx->size);
    displs = counts ? counts + ctx->size : NULL;
  }
  st = sm_ctx_agree(ctx, st);
  if (st != SM_OK) return free(counts), st;
  SM_MPI(ctx, MPI_Gather(&c, 1, MPI_INT, counts, 1, MPI_INT, 0, ctx->comm));
  if (ctx->rank == 0) {
    int64_t tot = 0;
    for (int r = 0; r < ctx->size; r++)
      displs[r] = (int)tot, tot += counts[r];
    st = SM_ALLOC(ctx, *all, tot ? tot : 1);
    *n_all = tot;
  }
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) {
    int rc = MPI_Gatherv(v, c, MPI_DOUBLE, *all, counts, displs, MPI_DOUBLE, 0, ctx->comm);
    if (rc != MPI_SUCCESS) st = sm__mpi_error(ctx, rc, "MPI_Gatherv", __FILE__, __LINE__);
  }
  free(counts);
  return st;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Quantile q of sorted s [n] with linear interpolation (numpy's default). */
static double quantile(const double *s, int64_t n, double q) {
  double h = q * (double)(n - 1);
  int64_t i = (int64_t)floor(h);
  return i + 1 < n ? s[i] + (h - (double)i) * (s[i + 1] - s[i]) : s[n - 1];
}

void sm__describe(const double *v, int64_t n, const char *name, const char *unit, int bins, char *out,
                  size_t out_size) {
  double *s = malloc(sizeof(double) * (size_t)(n ? n : 1));
  int64_t m = 0;
  for (int64_t i = 0; s && i < n; i++)
    if (isfinite(v[i])) s[m++] = v[i];
  if (!s || m == 0) {
    snprintf(out, out_size, "%s: no finite values\n", name);
    free(s);
    return;
  }
  double mean = 0, var = 0;
  for (int64_t i = 0; i < m; i++)
    mean += s[i];
  mean /= (double)m;
  for (int64_t i = 0; i < m; i++)
    var += (s[i] - mean) * (s[i] - mean);
  qsort(s, (size_t)m, sizeof *s, cmp_d);
  size_t l = (size_t)snprintf(
      out, out_size,
      "%s: n %lld, mean %.4g, std %.4g %s; quantiles 5%% %.4g, 25%% %.4g, 50%% %.4g, 75%% %.4g, "
      "95%% %.4g; min %.4g max %.4g\n",
      name, (long long)m, mean, m > 1 ? sqrt(var / (double)(m - 1)) : 0.0, unit, quantile(s, m, 0.05),
      quantile(s, m, 0.25), quantile(s, m, 0.5), quantile(s, m, 0.75), quantile(s, m, 0.95), s[0], s[m - 1]);
  double lo = s[0], hi = s[m - 1], w = (hi - lo) / (bins > 0 ? bins : 1);
  for (int b = 0; b < bins && l < out_size && w > 0; b++) {
    int64_t c = 0;
    for (int64_t i = 0; i < m; i++) {
      int k = (int)((s[i] - lo) / w);
      c += (k >= bins ? bins - 1 : k) == b;
    }
    char bar[41];
    int len = (int)(40 * c / m);
    memset(bar, '#', (size_t)len), bar[len] = '\0';
    l += (size_t)snprintf(out + l, out_size - l, "  [%9.3g, %9.3g) %8lld %s\n", lo + b * w, lo + (b + 1) * w,
                          (long long)c, bar);
  }
  free(s);
}
