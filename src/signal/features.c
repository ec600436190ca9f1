/* Per-trace features for regression, clustering and classification (docs/signal.md): amplitude,
 * energy and duration measures, spectral shape, a Brune corner frequency, and the P/S amplitude
 * ratio and S-P time from the picks. Spectra: the window demeaned, Hann-tapered and zero-padded
 * to a power of two (sm_fft); power |X(f)|^2 at f = k fs / nfft.
 * Corner frequency: the omega-square source of Brune (1970), displacement spectrum
 * Omega(f) = Omega0 / (1 + (f/fc)^2) (times 2 pi f for velocity), fitted to the amplitude spectrum
 * in [fmin, fmax] averaged in 24 log-spaced bins, by least squares in log amplitude: for each fc of
 * a 200-point log grid the best log Omega0 is the mean residual, and the fc with the smallest
 * residual sum of squares wins. Start at sm_trace_features. */
#include <complex.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sisma/signal.h"

int sm_feature_count(const sm_feature_params *fp, int C) { return C + 8 + fp->n_bands; }

void sm_feature_name(const sm_feature_params *fp, const char *order, int k, char *out, size_t n) {
  static const char *const head[] = {"rms", "log10_energy", "duration_s", "dominant_freq_hz", "mean_freq_hz"};
  static const char *const tail[] = {"corner_freq_hz", "log10_ps_ratio", "s_minus_p_s"};
  int C = (int)strlen(order);
  if (k < C)
    snprintf(out, n, "log10_peak_%c", order[k]);
  else if (k < C + 5)
    snprintf(out, n, "%s", head[k - C]);
  else if (k < C + 5 + fp->n_bands)
    snprintf(out, n, "spec_ratio_%g_%g", fp->band_hz[k - C - 5][0], fp->band_hz[k - C - 5][1]);
  else
    snprintf(out, n, "%s", tail[k - C - 5 - fp->n_bands]);
}

static int64_t nfft_for(int64_t n) {
  int64_t m = 1;
  while (m < n)
    m <<= 1;
  return m;
}

int64_t sm_feature_work(int64_t n) { return 2 * nfft_for(n) + n; }

/* Power spectrum of row x [a, b): pw [nfft/2 + 1] (in work as doubles after the complex buffer). */
static sm_status power_spectrum(sm_ctx *ctx, const double *x, int64_t a, int64_t b, double complex *z, int64_t nfft,
                                double *pw) {
  int64_t m = b - a;
  double mean = 0;
  for (int64_t i = a; i < b; i++)
    mean += x[i];
  mean /= (double)m;
  for (int64_t i = 0; i < nfft; i++) {
    double w = m > 1 ? 0.5 - 0.5 * cos(2 * M_PI * (double)i / (double)(m - 1)) : 1;
    z[i] = i < m ? (x[a + i] - mean) * w : 0;
  }
  SM_TRY(ctx, sm_fft(ctx, z, nfft, 0));
  for (int64_t k = 0; k <= nfft / 2; k++)
    pw[k] = creal(z[k]) * creal(z[k]) + cimag(z[k]) * cimag(z[k]);
  return SM_OK;
}

/* Brune corner frequency from the power spectrum pw [nfft/2+1] (see the file comment). */
static double brune_fc(const sm_feature_params *fp, const double *pw, int64_t nfft, double fs) {
  enum { NB = 24, NG = 200 };
  double lf[NB], la[NB], lo = log(fp->fmin_hz), hi = log(fp->fmax_hz), sum[NB] = {0};
  int cnt[NB] = {0}, nb = 0;
  for (int64_t k = 1; k <= nfft / 2; k++) {
    double f = (double)k * fs / (double)nfft;
    if (f < fp->fmin_hz || f > fp->fmax_hz) continue;
    int b = (int)((log(f) - lo) / (hi - lo) * NB);
    b = b >= NB ? NB - 1 : b;
    sum[b] += sqrt(pw[k]), cnt[b]++;
  }
  for (int b = 0; b < NB; b++)
    if (cnt[b] && sum[b] > 0) lf[nb] = exp(lo + (b + 0.5) * (hi - lo) / NB), la[nb] = log(sum[b] / cnt[b]), nb++;
  if (nb < 4) return NAN;
  double best = INFINITY, fc_best = NAN;
  for (int g = 0; g < NG; g++) {
    double fc = exp(lo + (hi - lo) * g / (NG - 1)), r[NB], c = 0, sse = 0;
    for (int b = 0; b < nb; b++) {
      double q = lf[b] / fc;
      r[b] = la[b] + log(1 + q * q) - (fp->velocity ? log(2 * M_PI * lf[b]) : 0);
      c += r[b];
    }
    c /= nb;
    for (int b = 0; b < nb; b++)
      sse += (r[b] - c) * (r[b] - c);
    if (sse < best) best = sse, fc_best = fc;
  }
  return fc_best;
}

static double peak(const double *x, int64_t a, int64_t b) {
  double m = 0;
  for (int64_t i = a; i < b; i++)
    m = fmax(m, fabs(x[i]));
  return m;
}

/* Spectral features of the vertical signal window into f[0..4 + n_bands + 1). */
static sm_status spectral(sm_ctx *ctx, const sm_feature_params *fp, const double *z, int64_t a, int64_t b, double fs,
                          double *work, double *dom, double *mean, double *ratio, double *fc) {
  int64_t nfft = nfft_for(b - a);
  double complex *zz = (double complex *)work;
  double *pw = work + 2 * nfft; /* nfft/2 + 1 <= n doubles: reuses the envelope room */
  SM_TRY(ctx, power_spectrum(ctx, z, a, b, zz, nfft, pw));
  double tot = 0, fsum = 0, pmax = -1;
  for (int64_t k = 0; k <= nfft / 2; k++) {
    double f = (double)k * fs / (double)nfft;
    if (f < fp->fmin_hz || f > fp->fmax_hz) continue;
    tot += pw[k], fsum += f * pw[k];
    if (pw[k] > pmax) pmax = pw[k], *dom = f;
  }
  *mean = tot > 0 ? fsum / tot : NAN;
  if (!(tot > 0)) *dom = NAN;
  for (int j = 0; j < fp->n_bands; j++) {
    double e = 0;
    for (int64_t k = 0; k <= nfft / 2; k++) {
      double f = (double)k * fs / (double)nfft;
      if (f >= fp->band_hz[j][0] && f < fp->band_hz[j][1]) e += pw[k];
    }
    ratio[j] = tot > 0 && e > 0 ? log10(e / tot) : NAN;
  }
  *fc = brune_fc(fp, pw, nfft, fs);
  return SM_OK;
}

/* Duration above noise: P to the last sample whose envelope (mean energy over envelope_s,
 * trailing, all components) exceeds duration_factor^2 x the mean noise energy. */
static double duration(const sm_feature_params *fp, const double *x, int C, int64_t stride, int64_t n, int64_t p,
                       int64_t noise0, double fs, double *env) {
  if (noise0 >= p) return NAN;
  double en = 0;
  for (int c = 0; c < C; c++)
    for (int64_t i = noise0; i < p; i++)
      en += x[c * stride + i] * x[c * stride + i];
  en /= (double)(p - noise0);
  int64_t w = (int64_t)llround(fp->envelope_s * fs), last = p;
  w = w < 1 ? 1 : w;
  double run = 0, thr = fp->duration_factor * fp->duration_factor * en;
  for (int64_t i = 0; i < n; i++) {
    double e = 0;
    for (int c = 0; c < C; c++)
      e += x[c * stride + i] * x[c * stride + i];
    env[i] = e, run += e;
    if (i >= w) run -= env[i - w];
    if (i >= p && run / (double)(i < w ? i + 1 : w) > thr) last = i;
  }
  return en > 0 ? (double)(last - p) / fs : NAN;
}

sm_status sm_trace_features(sm_ctx *ctx, const sm_feature_params *fp, const double *x, int C, int64_t stride, int64_t n,
                            double fs, double p, double s, double *f, double *work) {
  int nf = sm_feature_count(fp, C);
  for (int k = 0; k < nf; k++)
    f[k] = NAN;
  for (int c = 0; c < C; c++) {
    double m = peak(x + c * stride, 0, n);
    f[c] = m > 0 ? log10(m) : NAN;
  }
  int havep = isfinite(p) && p >= 0 && p < (double)n, haves = isfinite(s) && s >= 0 && s < (double)n;
  int64_t ip = havep ? (int64_t)llround(p) : 0, is = haves ? (int64_t)llround(s) : 0;
  int64_t b = havep ? ip + (int64_t)llround(fp->signal_s * fs) : n;
  b = b > n ? n : b;
  double e = 0;
  for (int c = 0; c < C; c++)
    for (int64_t i = ip; i < b; i++)
      e += x[c * stride + i] * x[c * stride + i];
  double *g = f + C;
  if (b - ip >= 1) g[0] = sqrt(e / (double)((b - ip) * C)), g[1] = e > 0 ? log10(e / fs) : NAN;
  if (havep) {
    int64_t n0 = ip - (int64_t)llround(fp->noise_s * fs);
    g[2] = duration(fp, x, C, stride, n, ip, n0 < 0 ? 0 : n0, fs, work + 2 * nfft_for(n));
  }
  if (b - ip >= 8)
    SM_TRY(ctx,
           spectral(ctx, fp, x + (int64_t)fp->z * stride, ip, b, fs, work, &g[3], &g[4], g + 5, &g[5 + fp->n_bands]));
  double *t = g + 5 + fp->n_bands;
  if (havep && haves && is > ip) {
    int64_t w = (int64_t)llround(fp->ps_window_s * fs), pe = ip + w < is ? ip + w : is, se = is + w < n ? is + w : n;
    double pz = peak(x + (int64_t)fp->z * stride, ip, pe), sh = 0;
    for (int c = 0; c < C; c++)
      if (c != fp->z) sh = fmax(sh, peak(x + c * stride, is, se));
    t[1] = pz > 0 && sh > 0 ? log10(pz / sh) : NAN;
    t[2] = (double)(is - ip) / fs;
  }
  return SM_OK;
}
