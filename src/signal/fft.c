/* Discrete Fourier transform of any length and Fourier resampling (scipy.signal.resample).
 *
 * Powers of two use an iterative radix-2 decimation-in-time FFT with twiddles from sin/cos of the
 * exact angle (no recurrence, so errors stay O(eps log n)). Other lengths use Bluestein's chirp-z
 * algorithm: x_k w^{k^2/2} convolved with the chirp w^{-k^2/2} by three radix-2 FFTs of length
 * >= 2n - 1 (Bluestein 1970; the chirp index k^2 is reduced modulo 2n to keep the angle exact).
 * Local; start at sm_fft. */
#include <complex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sisma/signal.h"

static void fft_pow2(double complex *z, int64_t n, int inverse) {
  for (int64_t i = 1, j = 0; i < n; i++) { /* bit reversal */
    int64_t bit = n >> 1;
    for (; j & bit; bit >>= 1)
      j ^= bit;
    j ^= bit;
    if (i < j) {
      double complex t = z[i];
      z[i] = z[j], z[j] = t;
    }
  }
  double sgn = inverse ? 1.0 : -1.0;
  for (int64_t len = 2; len <= n; len <<= 1) {
    int64_t h = len / 2;
    for (int64_t k = 0; k < h; k++) {
      double a = sgn * 2 * M_PI * (double)k / (double)len;
      double complex w = cos(a) + I * sin(a);
      for (int64_t i = k; i < n; i += len) {
        double complex u = z[i], v = z[i + h] * w;
        z[i] = u + v, z[i + h] = u - v;
      }
    }
  }
}

sm_status sm_fft(sm_ctx *ctx, double complex *z, int64_t n, int inverse) {
  SM_CHECK(ctx, n >= 1, SM_ERR_ARG, "fft: length %lld", (long long)n);
  if ((n & (n - 1)) == 0) {
    fft_pow2(z, n, inverse);
    return SM_OK;
  }
  int64_t m = 1;
  while (m < 2 * n - 1)
    m <<= 1;
  double complex *a = NULL, *b = NULL, *w = NULL; /* [m], [m], chirp [n] */
  SM_TRY(ctx, SM_ALLOC(ctx, a, 2 * m + n));
  b = a + m, w = b + m;
  double sgn = inverse ? 1.0 : -1.0;
  for (int64_t k = 0; k < n; k++) {
    int64_t k2 = (k * k) % (2 * n); /* exp(i pi k^2 / n) has period 2n in k^2 */
    double ang = sgn * M_PI * (double)k2 / (double)n;
    w[k] = cos(ang) + I * sin(ang);
  }
  memset(a, 0, (size_t)(2 * m) * sizeof *a);
  for (int64_t k = 0; k < n; k++)
    a[k] = z[k] * w[k];
  b[0] = conj(w[0]);
  for (int64_t k = 1; k < n; k++)
    b[k] = b[m - k] = conj(w[k]);
  fft_pow2(a, m, 0);
  fft_pow2(b, m, 0);
  for (int64_t k = 0; k < m; k++)
    a[k] *= b[k];
  fft_pow2(a, m, 1);
  for (int64_t k = 0; k < n; k++)
    z[k] = a[k] * w[k] / (double)m;
  free(a);
  return SM_OK;
}

/* scipy.signal.resample(x, num) for real x: Y = rfft(x)[: min(n, num) / 2 + 1], with an even
 * min(n, num) bin doubled when down-sampling and halved when up-sampling, y = irfft(Y, num) *
 * num / n. The inverse real transform is a complex inverse DFT of the Hermitian extension of Y
 * (the imaginary part of an even-length Nyquist bin is dropped, as numpy's irfft does). */
sm_status sm_resample_fourier(sm_ctx *ctx, const double *x, int64_t n, int64_t num, double *y) {
  SM_CHECK(ctx, n >= 1 && num >= 1, SM_ERR_ARG, "resample (Fourier): %lld samples to %lld", (long long)n,
           (long long)num);
  double complex *X = NULL, *Y = NULL;
  SM_TRY(ctx, SM_ALLOC(ctx, X, n + num));
  Y = X + n;
  for (int64_t i = 0; i < n; i++)
    X[i] = x[i];
  sm_status st = sm_fft(ctx, X, n, 0);
  int64_t N = n < num ? n : num, nyq = N / 2 + 1, nh = num / 2 + 1;
  memset(Y, 0, (size_t)num * sizeof *Y);
  for (int64_t k = 0; k < nyq && k < nh; k++)
    Y[k] = X[k];
  if (N % 2 == 0 && num != n) Y[N / 2] *= num < n ? 2.0 : 0.5;
  if (num % 2 == 0) Y[num / 2] = creal(Y[num / 2]);
  Y[0] = creal(Y[0]);
  for (int64_t k = 1; k < nh; k++)
    if (num - k != k) Y[num - k] = conj(Y[k]);
  if (st == SM_OK) st = sm_fft(ctx, Y, num, 1);
  for (int64_t i = 0; st == SM_OK && i < num; i++)
    y[i] = creal(Y[i]) / (double)num * ((double)num / (double)n);
  free(X);
  return st;
}
