/* Private structures of the synthetic-sequence generator: the event, the trace geometry, and the
 * generator object. model.c draws sources, stations and paths; waveform.c turns one trace's
 * draws into samples; writer.c writes the catalog; synth.c is the stage. */
#ifndef SISMA_SYNTH_INTERNAL_H
#define SISMA_SYNTH_INTERNAL_H

#include "sisma/rng.h"
#include "sisma/synth.h"

/* Stream tags: trace i uses stream i; events and stations use tagged streams so that no two uses
 * share a stream (all below the framework's reserved streams at 2^62). */
#define SM__SYNTH_STREAM_EVENT (UINT64_C(1) << 60)
#define SM__SYNTH_STREAM_STATION (UINT64_C(1) << 59)
#define SM__SYNTH_MAX_STATIONS 999

/* GNU C vector of four floats: lanes are [Z, N, E, -] for noise, [P, SV, SH, -] for the source
 * bursts, so the three components share one pass and one set of recursive filters. */
typedef float sm__v4f __attribute__((vector_size(16)));

typedef struct {
  int64_t index;                     /* event index */
  double origin_epoch_s;             /* s since 1970 */
  double lat_deg, lon_deg, depth_km; /* hypocentre */
  double magnitude;                  /* ML = Mw */
  double stress_mpa;                 /* Brune stress drop, MPa */
  double fc_hz;                      /* Brune corner frequency, Hz */
  int aftershock;                    /* 1 after the mainshock */
  int split;                         /* 0 train, 1 dev, 2 test */
  int station_order[SM__SYNTH_MAX_STATIONS]; /* stations recording it: the first traces_per_event */
} sm__synth_event;

/* Everything waveform.c needs to synthesise one trace (all drawn in model.c). */
typedef struct {
  int64_t n_samples;
  double rate_hz;
  int64_t p_sample, s_sample;  /* onsets; s_sample may be >= n_samples */
  double fc_hz;                /* Brune corner, Hz */
  double fatt_p_hz, fatt_s_hz; /* attenuation corner 1/(pi t*), Hz */
  double tau_p_s, tau_s_s;     /* coda e-folding times, s */
  double rise_p_s, rise_s_s;   /* envelope rise times, s */
  double p_to_s;               /* P peak / S peak */
  double p_horizontal;         /* horizontal/vertical ratio of P motion */
  double radial_n, radial_e;   /* unit vector event -> station (north, east) */
  double amplitude;            /* target peak horizontal amplitude, mm */
  double noise_std;            /* mm */
  double noise_ar;             /* AR(1) coefficient of the red part */
  double noise_ms_hz;          /* microseism peak frequency, Hz */
  double noise_ms_share;       /* variance share of the microseism part, 0..1 */
  uint64_t key_noise, key_burst; /* white-noise stream keys (Philox draws of the trace stream) */
} sm__synth_path;

struct sm_synth {
  sm_synth_params p;
  int64_t n_events, n_fore;
  double mainshock_epoch_s;
  double *st_lat, *st_lon; /* [n_stations] degrees */
  sm__synth_event ev;      /* cached event (ev.index == -1: none) */
  sm__v4f *burst;          /* [n_samples] scratch: P, SV, SH source bursts */
};

/* Synthesise one record rec [3][T] from its path parameters; returns the SNR in dB. Local. */
double sm__synth_waveform(const sm__synth_path *w, sm__v4f *scratch, float *rec);

#endif
