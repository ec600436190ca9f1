/* STA/LTA detectors, the trigger state machine, the AIC onset picker and the SNR of a window.
 *
 * The detectors follow ObsPy's conventions (obspy.signal.trigger: classic_sta_lta,
 * recursive_sta_lta, trigger_onset) so thresholds tuned in ObsPy carry over; the AIC picker is
 * Maeda (1985), "A method for reading and checking phase times in autoprocessing system of
 * seismic wave data", Zisin 38, 365-379, computed on the waveform itself (no AR model) in O(n)
 * from running sums. All functions are local. */
#include <float.h>
#include <math.h>

#include "sisma/signal.h"

sm_status sm_sta_lta_classic(sm_ctx *ctx, const double *x, int64_t n, int64_t nsta, int64_t nlta, double *cf) {
  SM_CHECK(ctx, nsta >= 1 && nlta > nsta, SM_ERR_ARG,
           "sta_lta: windows sta=%lld lta=%lld samples (need 1 <= sta < lta)", (long long)nsta, (long long)nlta);
  double sta = 0, lta = 0;
  for (int64_t i = 0; i < n; i++) {
    double e = x[i] * x[i];
    sta += e, lta += e;
    if (i >= nsta) sta -= x[i - nsta] * x[i - nsta];
    if (i >= nlta) lta -= x[i - nlta] * x[i - nlta];
    double l = lta / (double)nlta;
    cf[i] = i < nlta - 1 ? 0.0 : (sta / (double)nsta) / (l < DBL_MIN ? DBL_MIN : l);
  }
  return SM_OK;
}

sm_status sm_sta_lta_recursive(sm_ctx *ctx, const double *x, int64_t n, int64_t nsta, int64_t nlta, double *cf) {
  SM_CHECK(ctx, nsta >= 1 && nlta > nsta, SM_ERR_ARG,
           "sta_lta: windows sta=%lld lta=%lld samples (need 1 <= sta < lta)", (long long)nsta, (long long)nlta);
  const double cs = 1.0 / (double)nsta, cl = 1.0 / (double)nlta, ics = 1 - cs, icl = 1 - cl;
  double sta = 0, lta = DBL_MIN;
  if (n > 0) cf[0] = 0;
  for (int64_t i = 1; i < n; i++) {
    double e = x[i] * x[i];
    sta = cs * e + ics * sta;
    lta = cl * e + icl * lta;
    cf[i] = i < nlta ? 0.0 : sta / lta;
  }
  return SM_OK;
}

int64_t sm_trigger_onset(const double *cf, int64_t n, double thr_on, double thr_off, int64_t max_len, int64_t *trig,
                         int64_t max_trig) {
  int64_t nt = 0, on = -1, last_above_off = -1;
  for (int64_t i = 0; i <= n; i++) {
    if (on >= 0) {
      if (i < n && cf[i] > thr_off) {
        last_above_off = i;
        continue;
      }
      int64_t off = last_above_off;
      if (max_len > 0 && off - on > max_len) off = on + max_len;
      if (nt < max_trig) trig[2 * nt] = on, trig[2 * nt + 1] = off;
      nt++, on = -1;
    }
    if (i < n && cf[i] > thr_on) on = i, last_above_off = i;
  }
  return nt;
}

/* AIC(k) from running sums over the centred series: var of x[0..k-1] and of x[k..n-1]
 * (population variances), k = 1..n-1. */
int64_t sm_aic_pick(const double *x, int64_t n, double *aic) {
  if (n < 4) return -1;
  double mean = 0, tot = 0, tot2 = 0;
  for (int64_t i = 0; i < n; i++)
    mean += x[i];
  mean /= (double)n; /* centred sums of squares lose fewer digits */
  for (int64_t i = 0; i < n; i++)
    tot += x[i] - mean, tot2 += (x[i] - mean) * (x[i] - mean);
  double s = 0, s2 = 0, best = INFINITY;
  int64_t kbest = -1;
  if (aic) aic[0] = INFINITY;
  for (int64_t k = 1; k < n; k++) {
    double d = x[k - 1] - mean;
    s += d, s2 += d * d;
    double n1 = (double)k, n2 = (double)(n - k), r = tot - s;
    double v1 = s2 / n1 - (s / n1) * (s / n1), v2 = (tot2 - s2) / n2 - (r / n2) * (r / n2);
    double a = v1 > 0 && v2 > 0 ? (double)k * log(v1) + (double)(n - k - 1) * log(v2) : INFINITY;
    if (aic) aic[k] = a;
    if (a < best) best = a, kbest = k;
  }
  return kbest;
}

double sm_snr_db(const double *x, int64_t n, int64_t pick, int64_t noise_len, int64_t gap, int64_t sig_len) {
  int64_t n0 = pick - gap - noise_len, n1 = pick - gap;
  if (noise_len < 1 || sig_len < 1 || n0 < 0 || pick < 0 || pick + sig_len > n) return NAN;
  double pn = 0, ps = 0;
  for (int64_t i = n0; i < n1; i++)
    pn += x[i] * x[i];
  for (int64_t i = pick; i < pick + sig_len; i++)
    ps += x[i] * x[i];
  pn /= (double)noise_len, ps /= (double)sig_len;
  return pn > 0 ? 10 * log10(ps / pn) : NAN;
}
