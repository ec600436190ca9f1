/* Polyphase FIR resampling (scipy.signal.resample_poly, SciPy >= 1.0 defaults).
 *
 * Design (SciPy's `_upfirdn` + `firwin`): with up, down reduced by their gcd and
 * m = max(up, down), the filter is h[i] = up * w[i] * fc * sinc(fc * (i - L)) / sum(w * fc * sinc),
 * i = 0..2L, L = 10 m, fc = 1/m (cutoff relative to Nyquist of the up-sampled rate), w the Kaiser
 * window with beta = 5 (Kaiser & Schafer 1980). The up-sampled, filtered signal is
 * v[j] = sum_k x[k] h[j - k up]; output y[q] = v[q down + L], which is SciPy's alignment
 * (the filter delay L is removed, output sample 0 sits at input sample 0), q < ceil(n up/down).
 * Polyphase: only the taps that meet a non-zero up-sampled input are summed, so each output
 * costs about (2L+1)/up multiply-adds. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sisma/signal.h"

static int64_t gcd64(int64_t a, int64_t b) {
  while (b) {
    int64_t t = a % b;
    a = b, b = t;
  }
  return a;
}

int64_t sm_resample_poly_len(int64_t n, int64_t up, int64_t down) {
  if (up < 1 || down < 1 || n < 0) return 0;
  int64_t g = gcd64(up, down);
  up /= g, down /= g;
  return (n * up + down - 1) / down;
}

/* Modified Bessel function of the first kind, order 0 (power series; converges for all x). */
static double bessel_i0(double x) {
  double sum = 1.0, term = 1.0, q = x * x / 4.0;
  for (int k = 1; k < 500; k++) {
    term *= q / ((double)k * (double)k);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return sum;
}

/* h [2L+1]: the windowed-sinc low-pass of the file comment, scaled to unit DC gain times up. */
static void design(double *h, int64_t half_len, int64_t up, double fc) {
  int64_t nt = 2 * half_len + 1;
  const double beta = 5.0, i0b = bessel_i0(beta);
  double sum = 0;
  for (int64_t i = 0; i < nt; i++) {
    double m = (double)(i - half_len), r = 2.0 * (double)i / (double)(nt - 1) - 1.0;
    double w = bessel_i0(beta * sqrt(fmax(0.0, 1.0 - r * r))) / i0b;
    double a = M_PI * fc * m, s = m == 0 ? 1.0 : sin(a) / a;
    h[i] = fc * s * w;
    sum += h[i];
  }
  for (int64_t i = 0; i < nt; i++)
    h[i] *= (double)up / sum;
}

/* y [ceil(n up / down)] = the polyphase product of x [n] with the filter h [2 half_len + 1]
 * (already scaled by up), aligned as SciPy's resample_poly (up, down reduced). */
static void polyphase(const double *x, int64_t n, int64_t up, int64_t down, const double *h, int64_t half_len,
                      double *y) {
  int64_t nout = sm_resample_poly_len(n, up, down), nt = 2 * half_len + 1;
  for (int64_t q = 0; q < nout; q++) {
    int64_t j = q * down + half_len; /* index in the up-sampled, filtered signal */
    /* taps i = j - k*up in [0, nt): k in [ceil((j-nt+1)/up), floor(j/up)] */
    int64_t klo = j - nt + 1 > 0 ? (j - nt + 1 + up - 1) / up : 0, khi = j / up;
    if (khi > n - 1) khi = n - 1;
    double acc = 0;
    for (int64_t k = klo; k <= khi; k++)
      acc += x[k] * h[j - k * up];
    y[q] = acc;
  }
}

sm_status sm_resample_poly_design(sm_ctx *ctx, int64_t up, int64_t down, double **h, int64_t *half_len) {
  *h = NULL, *half_len = 0;
  SM_CHECK(ctx, up >= 1 && down >= 1, SM_ERR_ARG, "resample: bad factors up=%lld down=%lld", (long long)up,
           (long long)down);
  int64_t g = gcd64(up, down);
  up /= g, down /= g;
  int64_t m = up > down ? up : down;
  *half_len = up == 1 && down == 1 ? 0 : 10 * m;
  SM_TRY(ctx, SM_ALLOC(ctx, *h, 2 * *half_len + 1));
  if (*half_len) design(*h, *half_len, up, 1.0 / (double)m);
  return SM_OK;
}

void sm_resample_poly_apply(const double *x, int64_t n, int64_t up, int64_t down, const double *h, int64_t half_len,
                            double *y) {
  int64_t g = gcd64(up, down);
  up /= g, down /= g;
  if (up == 1 && down == 1) {
    if (n) memmove(y, x, (size_t)n * sizeof *y);
    return;
  }
  polyphase(x, n, up, down, h, half_len, y);
}

sm_status sm_resample_poly(sm_ctx *ctx, const double *x, int64_t n, int64_t up, int64_t down, double *y) {
  SM_CHECK(ctx, up >= 1 && down >= 1 && n >= 0, SM_ERR_ARG, "resample: bad factors up=%lld down=%lld", (long long)up,
           (long long)down);
  double *h = NULL;
  int64_t half_len;
  SM_TRY(ctx, sm_resample_poly_design(ctx, up, down, &h, &half_len));
  sm_resample_poly_apply(x, n, up, down, h, half_len, y);
  free(h);
  return SM_OK;
}

/* scipy.signal.decimate(ftype='fir', zero_phase=True): h = firwin(20 q + 1, 1/q, window='hamming')
 * (windowed sinc scaled to unit DC gain), applied as resample_poly(x, 1, q, window=h). */
sm_status sm_decimate_iir(sm_ctx *ctx, const double *x, int64_t n, int64_t q, double *y) {
  SM_CHECK(ctx, q >= 1 && n >= 0, SM_ERR_ARG, "decimate: factor %lld must be >= 1", (long long)q);
  double sos[SM_BUTTER_MAX_ORDER][6], *t = NULL;
  int ns;
  SM_TRY(ctx, sm_cheby1_lowpass_sos(ctx, 8, 0.05, 0.8 / (double)q, &sos[0][0], &ns));
  SM_TRY(ctx, SM_ALLOC(ctx, t, n ? n : 1));
  memcpy(t, x, sizeof(double) * (size_t)n);
  sm_status st = sm_sosfiltfilt(ctx, &sos[0][0], ns, t, n);
  for (int64_t i = 0; st == SM_OK && i * q < n; i++)
    y[i] = t[i * q];
  free(t);
  return st;
}

sm_status sm_decimate(sm_ctx *ctx, const double *x, int64_t n, int64_t q, double *y) {
  SM_CHECK(ctx, q >= 1 && n >= 0, SM_ERR_ARG, "decimate: factor %lld must be >= 1", (long long)q);
  if (q == 1) {
    if (n) memmove(y, x, (size_t)n * sizeof *y);
    return SM_OK;
  }
  int64_t half_len = 10 * q, nt = 2 * half_len + 1;
  double *h = NULL, sum = 0, fc = 1.0 / (double)q;
  SM_TRY(ctx, SM_ALLOC(ctx, h, nt));
  for (int64_t i = 0; i < nt; i++) {
    double m = (double)(i - half_len), a = M_PI * fc * m, s = m == 0 ? 1.0 : sin(a) / a;
    h[i] = fc * s * (0.54 - 0.46 * cos(2 * M_PI * (double)i / (double)(nt - 1)));
    sum += h[i];
  }
  for (int64_t i = 0; i < nt; i++)
    h[i] /= sum;
  polyphase(x, n, 1, q, h, half_len, y);
  free(h);
  return SM_OK;
}

int sm_resample_ratio(double rate_in_hz, double rate_out_hz, int64_t max_factor, int64_t *up, int64_t *down) {
  if (!(rate_in_hz > 0) || !(rate_out_hz > 0)) return -1;
  double r = rate_out_hz / rate_in_hz;
  for (int64_t d = 1; d <= max_factor; d++) {
    double u = r * (double)d;
    int64_t ui = llround(u);
    if (ui >= 1 && ui <= max_factor && fabs((double)ui - u) <= 1e-9 * u) {
      int64_t g = gcd64(ui, d);
      *up = ui / g, *down = d / g;
      return 0;
    }
  }
  return -1;
}
