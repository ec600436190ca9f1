/* Trend removal, tapers and normalisation scales on float64 series (all local, no MPI).
 *
 * demean / detrend_linear are scipy.signal.detrend(type='constant' / 'linear'); detrend_poly is
 * ObsPy's polynomial detrend (numpy.polyfit + polyval on the sample index), solved here by a
 * Householder QR (LAPACKE_dgels) on the index scaled to [-1, 1], which is the same least-squares
 * fit with a better-conditioned basis. The tapers reproduce ObsPy's Trace.taper window by window
 * (docs/signal.md has the formulas). */
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>

#include "sisma/signal.h"

void sm_demean(double *x, int64_t n) {
  if (n <= 0) return;
  double s = 0;
  for (int64_t i = 0; i < n; i++)
    s += x[i];
  s /= (double)n;
  for (int64_t i = 0; i < n; i++)
    x[i] -= s;
}

/* Least-squares line on the centred index t = i - (n-1)/2, where the normal equations decouple:
 * a = mean(x), b = sum(t x) / sum(t^2). */
void sm_detrend_linear(double *x, int64_t n) {
  if (n <= 1) {
    sm_demean(x, n);
    return;
  }
  double c = (double)(n - 1) / 2, sx = 0, stx = 0, stt = 0;
  for (int64_t i = 0; i < n; i++) {
    double t = (double)i - c;
    sx += x[i], stx += t * x[i], stt += t * t;
  }
  double a = sx / (double)n, b = stx / stt;
  for (int64_t i = 0; i < n; i++)
    x[i] -= a + b * ((double)i - c);
}

sm_status sm_detrend_poly(sm_ctx *ctx, double *x, int64_t n, int order) {
  SM_CHECK(ctx, order >= 0 && order <= SM_DETREND_MAX_ORDER, SM_ERR_ARG, "detrend: polynomial order %d outside [0, %d]",
           order, SM_DETREND_MAX_ORDER);
  SM_CHECK(ctx, n > order, SM_ERR_DATA, "detrend: %lld samples cannot fit a polynomial of order %d", (long long)n,
           order);
  const int m = order + 1;
  double *v = NULL, *r = NULL; /* v [m][n] column-major Vandermonde, r [n] right-hand side */
  SM_TRY(ctx, SM_ALLOC(ctx, v, n * m));
  sm_status st = SM_ALLOC(ctx, r, n);
  if (st == SM_OK) {
    double h = n > 1 ? 2.0 / (double)(n - 1) : 0;
    for (int64_t i = 0; i < n; i++) {
      double t = (double)i * h - 1, p = 1;
      for (int j = 0; j < m; j++, p *= t)
        v[(int64_t)j * n + i] = p;
      r[i] = x[i];
    }
    lapack_int info = LAPACKE_dgels(LAPACK_COL_MAJOR, 'N', (lapack_int)n, m, 1, v, (lapack_int)n, r, (lapack_int)n);
    if (info != 0)
      st = SM_ERR(ctx, SM_ERR_NUMERIC, "detrend: dgels info %d (order %d, %lld samples)", (int)info, order,
                  (long long)n);
    for (int64_t i = 0; st == SM_OK && i < n; i++) { /* Horner on the scaled index */
      double t = (double)i * h - 1, f = r[order];
      for (int j = order - 1; j >= 0; j--)
        f = f * t + r[j];
      x[i] -= f;
    }
  }
  free(v);
  free(r);
  return st;
}

int64_t sm_taper_width(int64_t n, double max_percentage, double max_length_s, double rate_hz) {
  int64_t w = (int64_t)(max_percentage * (double)n), half = (int64_t)((double)n / 2);
  if (max_length_s > 0) {
    int64_t l = (int64_t)(max_length_s * rate_hz);
    w = l < w ? l : w;
  }
  w = half < w ? half : w;
  return w < 0 ? 0 : w;
}

/* Value j of obspy.signal.invsim.cosine_taper(N = 2w + 1, p = 1.0): frac = int(N / 2) = w,
 * ramps over [0, w - 1] and [w + 1, 2w], with ObsPy's adjustment of coincident indices. */
static double cosine_taper_at(int64_t w, int64_t j) {
  int64_t npts = 2 * w + 1, i1 = 0, i2 = w - 1, i3 = npts - w, i4 = npts - 1;
  if (i1 == i2) i2++;
  if (i3 == i4) i3--;
  double v;
  if (j <= i2)
    v = 0.5 * (1 - cos(M_PI * (double)(j - i1) / (double)(i2 - i1)));
  else if (j < i3)
    v = 1;
  else
    v = 0.5 * (1 + cos(M_PI * (double)(i3 - j) / (double)(i4 - i3)));
  if ((i1 == i2 && j == i1) || (i3 == i4 && j == i3)) v = 0;
  return v;
}

void sm_taper_window(int64_t w, sm_taper_type type, double *win) {
  for (int64_t j = 0; j < w; j++) {
    int64_t jr = w + 1 + j;    /* index in the window of the right side */
    if (type == SM_TAPER_HANN) /* scipy.signal.windows.hann(2w + 1), symmetric */
      win[j] = 0.5 - 0.5 * cos(2 * M_PI * (double)j / (double)(2 * w)),
      win[w + j] = 0.5 - 0.5 * cos(2 * M_PI * (double)jr / (double)(2 * w));
    else
      win[j] = cosine_taper_at(w, j), win[w + j] = cosine_taper_at(w, jr);
  }
}

void sm_taper_apply(double *x, int64_t n, int64_t w, const double *win) {
  if (w <= 0 || 2 * w > n) return;
  for (int64_t j = 0; j < w; j++)
    x[j] *= win[j], x[n - w + j] *= win[w + j];
}

void sm_taper(double *x, int64_t n, int64_t w, sm_taper_type type) {
  if (w <= 0 || 2 * w > n) return;
  for (int64_t j = 0; j < w; j++) { /* one side at a time: no scratch needed */
    double l, r;
    if (type == SM_TAPER_HANN)
      l = 0.5 - 0.5 * cos(2 * M_PI * (double)j / (double)(2 * w)),
      r = 0.5 - 0.5 * cos(2 * M_PI * (double)(w + 1 + j) / (double)(2 * w));
    else
      l = cosine_taper_at(w, j), r = cosine_taper_at(w, w + 1 + j);
    x[j] *= l;
    x[n - w + j] *= r;
  }
}

double sm_peak_abs(const double *x, int64_t n) {
  double m = 0; /* a plain compare: fmax is a libm call at -O2 (NaN handling) */
  for (int64_t i = 0; i < n; i++) {
    double a = fabs(x[i]);
    m = a > m ? a : m;
  }
  return m;
}

double sm_std(const double *x, int64_t n) {
  if (n <= 0) return 0;
  double s = 0, q = 0;
  for (int64_t i = 0; i < n; i++)
    s += x[i];
  s /= (double)n;
  for (int64_t i = 0; i < n; i++)
    q += (x[i] - s) * (x[i] - s);
  return sqrt(q / (double)n);
}
