/* Phase picks on one processed trace: an STA/LTA trigger (classic or recursive, ObsPy
 * conventions) gives a rough onset, and the AIC picker (Maeda 1985) on a window around it gives
 * the sample. P is picked on the vertical component; S on the horizontal envelope
 * sqrt(N^2 + E^2), searched from P + s_min_gap, and refined by AIC on the horizontal component
 * with the larger energy in the window. Confidence = 1 - thr_on / max(cf over the trigger): 0 at
 * the threshold, towards 1 for a trigger far above it. */
#include <math.h>
#include <string.h>

#include "sisma/signal.h"

/* First trigger of cf [n] that starts at or after `from`: [on, off] and its peak; -1 if none. */
static int64_t first_trigger(const sm_pick_params *pp, const double *cf, int64_t n, int64_t from, double *peak) {
  int64_t t[2 * 64], nt = sm_trigger_onset(cf, n, pp->thr_on, pp->thr_off, pp->max_len, t, 64);
  for (int64_t k = 0; k < nt && k < 64; k++)
    if (t[2 * k] >= from) {
      double m = 0;
      for (int64_t i = t[2 * k]; i <= t[2 * k + 1]; i++)
        m = fmax(m, cf[i]);
      *peak = m;
      return t[2 * k];
    }
  return -1;
}

static sm_status sta_lta(sm_ctx *ctx, const sm_pick_params *pp, const double *x, int64_t n, double *cf) {
  return pp->recursive ? sm_sta_lta_recursive(ctx, x, n, pp->nsta, pp->nlta, cf)
                       : sm_sta_lta_classic(ctx, x, n, pp->nsta, pp->nlta, cf);
}

/* AIC refinement of a trigger at `on` on row x [n]: the window [on - before, on + after). */
static int64_t refine(const sm_pick_params *pp, const double *x, int64_t n, int64_t on) {
  int64_t a = on - pp->aic_before < 0 ? 0 : on - pp->aic_before, b = on + pp->aic_after > n ? n : on + pp->aic_after;
  int64_t k = sm_aic_pick(x + a, b - a, NULL);
  return k < 0 ? on : a + k;
}

sm_status sm_pick_trace(sm_ctx *ctx, const sm_pick_params *pp, const double *x, int C, int64_t stride, int64_t n,
                        double *cf, double *tmp, sm_picks *out) {
  out->p = out->p_conf = out->s = out->s_conf = NAN;
  if (n <= pp->nlta) return SM_OK;
  const double *z = x + (int64_t)pp->z * stride;
  double peak = 0;
  SM_TRY(ctx, sta_lta(ctx, pp, z, n, cf));
  int64_t on = first_trigger(pp, cf, n, 0, &peak);
  if (on < 0) return SM_OK;
  int64_t p = refine(pp, z, n, on);
  out->p = (double)p, out->p_conf = fmax(0.0, 1.0 - pp->thr_on / peak);
  int h[2], nh = 0;
  for (int c = 0; c < C && nh < 2; c++)
    if (c != pp->z) h[nh++] = c;
  if (nh == 0) return SM_OK;
  for (int64_t i = 0; i < n; i++) {
    double e = 0;
    for (int k = 0; k < nh; k++)
      e += x[h[k] * stride + i] * x[h[k] * stride + i];
    tmp[i] = sqrt(e);
  }
  SM_TRY(ctx, sta_lta(ctx, pp, tmp, n, cf));
  on = first_trigger(pp, cf, n, p + pp->s_min_gap, &peak);
  if (on < 0) return SM_OK;
  int best = h[0];
  double eb = -1;
  for (int k = 0; k < nh; k++) { /* the horizontal with more energy around the trigger */
    double e = 0;
    for (int64_t i = on; i < on + pp->aic_after && i < n; i++)
      e += x[h[k] * stride + i] * x[h[k] * stride + i];
    if (e > eb) eb = e, best = h[k];
  }
  int64_t s = refine(pp, x + best * stride, n, on);
  if (s <= p) s = on; /* AIC fell back onto the P coda: keep the trigger */
  out->s = (double)s, out->s_conf = fmax(0.0, 1.0 - pp->thr_on / peak);
  return SM_OK;
}
