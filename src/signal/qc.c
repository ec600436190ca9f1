/* Bad-trace policies of the preprocess stage: NaN (gaps), Inf, empty (no finite sample), flat
 * (a constant component: a dead channel) and a trace rate that disagrees with the catalog. Each
 * is rejected with its reason or filled, as the job file declares; the counts go to the run
 * summary so nothing is dropped silently. Gaps are runs of NaN (what the importers write for
 * missing data); `interpolate` joins the samples either side by a straight line (and holds the
 * edge value at a trace end), `zero` writes zeros. */
#include <math.h>

#include "internal.h"

const char *const sm__qc_text[SM__QC_COUNT] = {"ok", "nan", "inf", "empty", "flat", "rate"};

/* Fill non-finite runs of row x [T]: mode 1 zero, 2 linear interpolation. Returns gaps seen. */
static int64_t fill_row(double *x, int64_t T, int mode, int64_t *filled) {
  int64_t gaps = 0;
  for (int64_t i = 0; i < T;) {
    if (isfinite(x[i])) {
      i++;
      continue;
    }
    int64_t j = i;
    while (j < T && !isfinite(x[j]))
      j++;
    double a = i > 0 ? x[i - 1] : (j < T ? x[j] : 0), b = j < T ? x[j] : a;
    for (int64_t k = i; k < j; k++)
      x[k] = mode == 1 ? 0 : a + (b - a) * (double)(k - i + 1) / (double)(j - i + 1);
    *filled += j - i, gaps++;
    i = j;
  }
  return gaps;
}

sm__qc_reason sm__qc_trace(const sm__qc_policy *p, const float *t, int C, int64_t T, double rate_hz,
                           double catalog_rate_hz, double *x, int64_t stride, sm__qc_counts *counts) {
  int64_t nan = 0, inf = 0, flat = 0;
  for (int c = 0; c < C; c++) {
    const float *r = t + (int64_t)c * T;
    double *o = x + c * stride;
    float lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < T; i++) {
      float v = r[i];
      o[i] = v;
      nan += isnan(v), inf += isinf(v);
      if (isfinite(v)) lo = v < lo ? v : lo, hi = v > hi ? v : hi;
    }
    flat += lo == hi;
  }
  counts->with_nan += nan > 0, counts->with_inf += inf > 0;
  sm__qc_reason why = SM__QC_OK;
  if (nan + inf == (int64_t)C * T)
    why = SM__QC_EMPTY;
  else if (!p->rate_ignore && isfinite(rate_hz) && fabs(rate_hz - catalog_rate_hz) > 1e-6 * catalog_rate_hz)
    why = SM__QC_RATE;
  else if (inf && !p->inf_fill)
    why = SM__QC_INF;
  else if (nan && !p->nan_fill)
    why = SM__QC_NAN;
  else if (flat && !p->keep_flat)
    why = SM__QC_FLAT;
  if (why == SM__QC_OK && nan + inf > 0) {
    /* Inf is always filled with zeros; NaN runs (gaps) per nan_policy */
    for (int c = 0; c < C; c++) {
      double *o = x + c * stride;
      for (int64_t i = 0; i < T; i++)
        if (isinf(o[i])) o[i] = 0, counts->filled_samples++;
      counts->gaps += fill_row(o, T, p->nan_fill ? p->nan_fill : 1, &counts->filled_samples);
    }
  }
  counts->rejected[why]++;
  return why;
}
