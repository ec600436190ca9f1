/* The synthetic sequence: stations, events and source-station paths (docs/synthetic.md).
 *
 * Draw order is part of the format: changing which draw comes first changes every catalog.
 *   station j : stream SM__SYNTH_STREAM_STATION | j   -> latitude, longitude
 *   event e   : stream SM__SYNTH_STREAM_EVENT | e     -> time, magnitude, hypocentre, stress drop,
 *                                                        split, station order
 *   trace i   : stream i                              -> P sample, amplitude scatter, noise, keys
 * Start reading at sm_synth_trace. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define CENTER_LAT 42.35  /* mainshock epicentre, deg (central Apennines) */
#define CENTER_LON 13.40
#define STRIKE_DEG 140.0  /* fault strike: aftershocks spread along it */
#define KM_PER_DEG 111.19 /* km per degree of latitude */
#define OMORI_C_S 600.0   /* Omori-Utsu c, s */
#define KAPPA0_S 0.01     /* site attenuation, s */
#define Q_PATH 600.0      /* path quality factor */

void sm_synth_params_default(sm_synth_params *p) {
  *p = (sm_synth_params){.n_traces = 1000, .n_samples = 3000, .rate_hz = 100.0, .seed = 1,
                         .traces_per_event = 10, .n_stations = 16, .mainshock_fraction = 0.5,
                         .start_epoch_s = 1577836800.0 /* 2020-01-01 */, .duration_s = 30 * 86400.0,
                         .magnitude_min = 2.0, .magnitude_max = 5.5, .b_value = 1.0,
                         .stress_fore_mpa = 1.0, .stress_after_mpa = 3.0, .stress_sigma_log10 = 0.35,
                         .noise_log10_min = -3.0, .noise_log10_max = -2.0, .amp_sigma_log10 = 0.15,
                         .vp_km_s = 6.0};
}

static sm_status check_params(sm_ctx *ctx, const sm_synth_params *p) {
  SM_CHECK(ctx, p->n_traces >= 1, SM_ERR_ARG, "synth: traces must be >= 1 (got %lld)", (long long)p->n_traces);
  SM_CHECK(ctx, p->n_samples >= 16, SM_ERR_ARG, "synth: samples must be >= 16 (got %lld)", (long long)p->n_samples);
  SM_CHECK(ctx, p->rate_hz >= 1.0, SM_ERR_ARG, "synth: rate must be >= 1 Hz (got %g)", p->rate_hz);
  SM_CHECK(ctx, p->n_stations >= 1 && p->n_stations <= SM__SYNTH_MAX_STATIONS, SM_ERR_ARG,
           "synth: stations must be in 1..%d (got %lld)", SM__SYNTH_MAX_STATIONS, (long long)p->n_stations);
  SM_CHECK(ctx, p->traces_per_event >= 1 && p->traces_per_event <= p->n_stations, SM_ERR_ARG,
           "synth: traces_per_event (%lld) must be in 1..stations (%lld): one trace per station and event",
           (long long)p->traces_per_event, (long long)p->n_stations);
  SM_CHECK(ctx, p->mainshock_fraction >= 0 && p->mainshock_fraction <= 1, SM_ERR_ARG,
           "synth: mainshock_fraction must be in [0, 1] (got %g)", p->mainshock_fraction);
  SM_CHECK(ctx, p->magnitude_min < p->magnitude_max, SM_ERR_ARG, "synth: magnitude_min (%g) must be < magnitude_max (%g)",
           p->magnitude_min, p->magnitude_max);
  SM_CHECK(ctx, p->noise_log10_min <= p->noise_log10_max, SM_ERR_ARG,
           "synth: noise_log10_min (%g) must be <= noise_log10_max (%g)", p->noise_log10_min, p->noise_log10_max);
  SM_CHECK(ctx, p->b_value > 0 && p->vp_km_s > 0 && p->duration_s > 0 && p->stress_fore_mpa > 0 &&
                    p->stress_after_mpa > 0 && p->stress_sigma_log10 >= 0 && p->amp_sigma_log10 >= 0,
           SM_ERR_ARG, "synth: b_value, vp, duration and stress drops must be > 0, spreads >= 0");
  return SM_OK;
}

sm_status sm_synth_create(sm_ctx *ctx, const sm_synth_params *p, sm_synth **out) {
  *out = NULL;
  SM_TRY(ctx, check_params(ctx, p));
  sm_synth *s = calloc(1, sizeof *s);
  SM_CHECK(ctx, s, SM_ERR_NOMEM, "synth: out of memory");
  s->p = *p;
  s->ev.index = -1;
  s->n_events = (p->n_traces + p->traces_per_event - 1) / p->traces_per_event;
  s->n_fore = llround(p->mainshock_fraction * (double)s->n_events);
  s->mainshock_epoch_s = p->start_epoch_s + p->mainshock_fraction * p->duration_s;
  sm_status st = SM_ALLOC(ctx, s->st_lat, p->n_stations);
  if (st == SM_OK) st = SM_ALLOC(ctx, s->st_lon, p->n_stations);
  if (st == SM_OK) st = SM_ALLOC(ctx, s->burst, p->n_samples);
  if (st != SM_OK) {
    sm_synth_destroy(&s);
    return st;
  }
  for (int64_t j = 0; j < p->n_stations; j++) {
    sm_rng r;
    sm_rng_init(&r, p->seed, SM__SYNTH_STREAM_STATION | (uint64_t)j);
    s->st_lat[j] = CENTER_LAT + 0.8 * (2.0 * sm_rng_uniform(&r) - 1.0);
    s->st_lon[j] = CENTER_LON + 1.0 * (2.0 * sm_rng_uniform(&r) - 1.0);
  }
  *out = s;
  return SM_OK;
}

void sm_synth_destroy(sm_synth **s) {
  if (!s || !*s) return;
  free((*s)->st_lat);
  free((*s)->st_lon);
  free((*s)->burst);
  free(*s);
  *s = NULL;
}

const sm_synth_params *sm_synth_get_params(const sm_synth *s) { return &s->p; }

void sm_synth_sequence(const sm_synth *s, int64_t *n_events, int64_t *n_fore, double *mainshock_epoch_s) {
  if (n_events) *n_events = s->n_events;
  if (n_fore) *n_fore = s->n_fore;
  if (mainshock_epoch_s) *mainshock_epoch_s = s->mainshock_epoch_s;
}

/* Origin time of event e: stratified draws from the Omori-Utsu law (p = 1), whose cumulative
 * count N(t) ~ ln(1 + t/c) inverts to t = c ((1 + D/c)^q - 1). Foreshocks mirror it before the
 * mainshock (inverse Omori: the rate grows towards the mainshock). Monotone in e. */
static double origin_time(const sm_synth *s, int64_t e, double u) {
  const double tm = s->mainshock_epoch_s, c = OMORI_C_S;
  if (e < s->n_fore) {
    double d = tm - s->p.start_epoch_s, q = 1.0 - ((double)e + u) / (double)s->n_fore;
    return tm - c * (pow(1.0 + d / c, q) - 1.0);
  }
  double d = s->p.start_epoch_s + s->p.duration_s - tm;
  double q = ((double)(e - s->n_fore) + u) / (double)(s->n_events - s->n_fore);
  return tm + c * (pow(1.0 + d / c, q) - 1.0);
}

/* Brune corner frequency fc = 0.4906 beta (dsigma / M0)^(1/3) (SI units; Brune 1970 with the
 * 16/7 circular-crack factor), M0 from Mw by Hanks & Kanamori 1979: M0 = 10^(1.5 Mw + 9.1) N m. */
static double corner_frequency(double mw, double stress_mpa, double vs_km_s) {
  double m0 = pow(10.0, 1.5 * mw + 9.1);
  return 0.4906 * vs_km_s * 1e3 * cbrt(stress_mpa * 1e6 / m0);
}

static void event_draw(sm_synth *s, int64_t e) {
  const sm_synth_params *p = &s->p;
  sm__synth_event *ev = &s->ev;
  sm_rng r;
  sm_rng_init(&r, p->seed, SM__SYNTH_STREAM_EVENT | (uint64_t)e);
  ev->index = e;
  ev->origin_epoch_s = origin_time(s, e, sm_rng_uniform(&r));
  ev->aftershock = e >= s->n_fore;
  /* Truncated Gutenberg-Richter: M = Mmin - log10(1 - u (1 - 10^(-b (Mmax - Mmin)))) / b. */
  double u = sm_rng_uniform(&r);
  ev->magnitude = p->magnitude_min - log10(1.0 - u * (1.0 - pow(10.0, -p->b_value * (p->magnitude_max - p->magnitude_min)))) / p->b_value;
  double along = 6.0 * sm_rng_normal(&r), across = 1.5 * sm_rng_normal(&r); /* km */
  double st = STRIKE_DEG * M_PI / 180.0;
  double dn = along * cos(st) - across * sin(st), de = along * sin(st) + across * cos(st);
  ev->lat_deg = CENTER_LAT + dn / KM_PER_DEG;
  ev->lon_deg = CENTER_LON + de / (KM_PER_DEG * cos(CENTER_LAT * M_PI / 180.0));
  ev->depth_km = 4.0 + 10.0 * sm_rng_uniform(&r);
  double med = ev->aftershock ? p->stress_after_mpa : p->stress_fore_mpa;
  ev->stress_mpa = med * pow(10.0, p->stress_sigma_log10 * sm_rng_normal(&r));
  ev->fc_hz = corner_frequency(ev->magnitude, ev->stress_mpa, p->vp_km_s / sqrt(3.0));
  u = sm_rng_uniform(&r);
  ev->split = u < 0.70 ? 0 : u < 0.85 ? 1 : 2;
  /* Which stations record it: a Fisher-Yates shuffle of the network, first traces_per_event. */
  int n = (int)p->n_stations;
  for (int j = 0; j < n; j++) ev->station_order[j] = j;
  for (int j = n - 1; j > 0; j--) {
    int k = (int)sm_rng_below(&r, (uint64_t)j + 1), t = ev->station_order[j];
    ev->station_order[j] = ev->station_order[k], ev->station_order[k] = t;
  }
}

/* Great-circle distance (haversine, R = 6371 km) and azimuth from (la1, lo1) to (la2, lo2). */
static void geodesic(double la1, double lo1, double la2, double lo2, double *km, double *az_rad) {
  const double d2r = M_PI / 180.0;
  double p1 = la1 * d2r, p2 = la2 * d2r, dl = (lo2 - lo1) * d2r;
  double h = pow(sin((p2 - p1) / 2), 2) + cos(p1) * cos(p2) * pow(sin(dl / 2), 2);
  *km = 2.0 * 6371.0 * asin(sqrt(fmin(1.0, h)));
  *az_rad = atan2(sin(dl) * cos(p2), cos(p1) * sin(p2) - sin(p1) * cos(p2) * cos(dl));
}

/* Hutton & Boore 1987 local magnitude: log10 A = ML - 1.110 log10(r/100) - 0.00189 (r - 100) - 3.0,
 * A the Wood-Anderson peak amplitude in mm, r the hypocentral distance in km. */
static double ml_amplitude_log10(double ml, double r_km) {
  return ml - 1.110 * log10(r_km / 100.0) - 0.00189 * (r_km - 100.0) - 3.0;
}

/* The trace's own draws: window placement, amplitude scatter, noise, and the white-noise keys. */
static void path_draw(const sm_synth *s, int64_t i, double ep, double hyp, sm__synth_path *w) {
  const sm_synth_params *p = &s->p;
  const sm__synth_event *ev = &s->ev;
  sm_rng r;
  sm_rng_init(&r, p->seed, (uint64_t)i);
  const double vp = p->vp_km_s, vs = vp / sqrt(3.0), tp = hyp / vp, ts = hyp / vs;
  w->n_samples = p->n_samples;
  w->rate_hz = p->rate_hz;
  w->p_sample = (int64_t)((double)p->n_samples * (0.05 + 0.25 * sm_rng_uniform(&r)));
  w->s_sample = w->p_sample + llround((ts - tp) * p->rate_hz);
  w->amplitude = pow(10.0, ml_amplitude_log10(ev->magnitude, hyp) + p->amp_sigma_log10 * sm_rng_normal(&r));
  w->noise_std = pow(10.0, p->noise_log10_min + (p->noise_log10_max - p->noise_log10_min) * sm_rng_uniform(&r));
  w->noise_ar = 0.5 + 0.45 * sm_rng_uniform(&r);
  w->noise_ms_hz = fmin(0.12 + 0.2 * sm_rng_uniform(&r), 0.4 * p->rate_hz);
  w->noise_ms_share = 0.2 + 0.6 * sm_rng_uniform(&r);
  w->p_to_s = pow(10.0, -0.8 + 0.4 * sm_rng_uniform(&r));
  w->key_noise = sm_rng_u64(&r);
  w->key_burst = sm_rng_u64(&r);
  w->fc_hz = ev->fc_hz;
  w->fatt_p_hz = 1.0 / (M_PI * (KAPPA0_S + tp / Q_PATH));
  w->fatt_s_hz = 1.0 / (M_PI * (KAPPA0_S + ts / Q_PATH));
  /* Coda e-folding grows with distance and magnitude; the rise with source duration and path. */
  w->tau_s_s = (1.5 + 0.03 * hyp) * pow(10.0, 0.2 * (ev->magnitude - 2.0));
  w->tau_p_s = 0.5 * w->tau_s_s;
  w->rise_s_s = fmin(w->tau_s_s / 3.0, fmax(1.0 / p->rate_hz, 0.2 / ev->fc_hz + 0.005 * ts));
  w->rise_p_s = fmin(w->tau_p_s / 3.0, fmax(1.0 / p->rate_hz, 0.2 / ev->fc_hz + 0.005 * tp));
  w->p_horizontal = 0.2 + 0.3 * ep / hyp;
}

void sm_synth_trace(sm_synth *s, int64_t i, float *rec, sm_synth_meta *m) {
  const sm_synth_params *p = &s->p;
  int64_t e = i / p->traces_per_event;
  if (s->ev.index != e) event_draw(s, e);
  const sm__synth_event *ev = &s->ev;
  int j = ev->station_order[i % p->traces_per_event];
  double ep, az;
  geodesic(ev->lat_deg, ev->lon_deg, s->st_lat[j], s->st_lon[j], &ep, &az);
  double hyp = sqrt(ep * ep + ev->depth_km * ev->depth_km);
  sm__synth_path w;
  path_draw(s, i, ep, hyp, &w);
  w.radial_n = cos(az), w.radial_e = sin(az);
  double snr = sm__synth_waveform(&w, s->burst, rec);

  static const char *const splits[] = {"train", "dev", "test"};
  memset(m, 0, sizeof *m);
  m->event = e, m->station = j;
  snprintf(m->station_network_code, sizeof m->station_network_code, "SY");
  snprintf(m->station_code, sizeof m->station_code, "S%03d", j + 1);
  snprintf(m->source_id, sizeof m->source_id, "ev%08lld", (long long)e);
  snprintf(m->trace_name, sizeof m->trace_name, "SY.%s.%s", m->station_code, m->source_id);
  m->label = ev->aftershock ? "aftershock" : "foreshock";
  m->split = splits[ev->split];
  m->origin_epoch_s = ev->origin_epoch_s;
  m->start_epoch_s = ev->origin_epoch_s + hyp / p->vp_km_s - (double)w.p_sample / p->rate_hz;
  sm_time_format(m->origin_epoch_s, m->source_origin_time);
  sm_time_format(m->start_epoch_s, m->trace_start_time);
  m->station_latitude_deg = s->st_lat[j], m->station_longitude_deg = s->st_lon[j];
  m->trace_sampling_rate_hz = p->rate_hz;
  m->trace_p_arrival_sample = (double)w.p_sample;
  m->trace_s_arrival_sample = w.s_sample < p->n_samples ? (double)w.s_sample : NAN;
  m->trace_snr_db = snr;
  m->source_latitude_deg = ev->lat_deg, m->source_longitude_deg = ev->lon_deg, m->source_depth_km = ev->depth_km;
  m->source_magnitude = ev->magnitude;
  m->path_hyp_distance_km = hyp, m->path_ep_distance_km = ep;
  m->source_stress_drop_mpa = ev->stress_mpa;
  m->source_corner_frequency_hz = ev->fc_hz;
  m->peak_amplitude = w.amplitude;
  m->noise_std = w.noise_std;
}
