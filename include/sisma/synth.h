/* Synthetic seismic sequences: a deterministic catalog of three-component records (ZNE) of the
 * foreshocks and aftershocks of a mainshock, recorded by a fixed network (docs/synthetic.md has
 * the equations and parameter values).
 *
 * Invariant: trace i of a catalog is a pure function of (params, i). Every random draw comes from
 * the counter-based generator (sm_rng) with stream = global trace index, event index or station
 * index (tagged), never from the rank, so a catalog is byte-identical for every rank count and
 * any trace can be regenerated alone. Traces of one event are consecutive (traces_per_event of
 * them, one per station); events are in origin-time order.
 *
 * Start reading at sm_synth_trace; sm_synth_write is the catalog writer behind `sisma synth`. */
#ifndef SISMA_SYNTH_H
#define SISMA_SYNTH_H

#include "sisma/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SM_SYNTH_COMPONENTS 3 /* Z, N, E */

/* Model parameters (the `synth` stage keys map onto these one to one). */
typedef struct {
  int64_t n_traces;           /* traces in the catalog, >= 1 */
  int64_t n_samples;          /* samples per component window, >= 16 */
  double rate_hz;             /* sampling rate, Hz */
  uint64_t seed;              /* key of every random draw */
  int64_t traces_per_event;   /* stations recording each event, <= n_stations */
  int64_t n_stations;         /* stations of the network, 1..999 */
  double mainshock_fraction;  /* share of events before the mainshock (foreshocks), 0..1 */
  double start_epoch_s;       /* sequence start, seconds since 1970 */
  double duration_s;          /* sequence length, s */
  double magnitude_min;       /* Gutenberg-Richter range [min, max], ML (= Mw in this model) */
  double magnitude_max;
  double b_value;             /* Gutenberg-Richter b */
  double stress_fore_mpa;     /* median stress drop of foreshocks, MPa */
  double stress_after_mpa;    /* median stress drop of aftershocks, MPa */
  double stress_sigma_log10;  /* lognormal spread of stress drop, log10 units */
  double noise_log10_min;     /* per-trace noise std is 10^U(min, max), in record units (mm) */
  double noise_log10_max;
  double amp_sigma_log10;     /* station/path scatter around the amplitude relation, log10 units */
  double vp_km_s;             /* P velocity, km/s; vs = vp / sqrt(3) */
} sm_synth_params;

/* One trace's metadata, named after the SeisBench columns it fills. */
typedef struct {
  int64_t event;                    /* event index (source_id "ev%08d") */
  int station;                      /* station index in the network */
  char trace_name[48];              /* "SY.S003.ev00000012" */
  char station_network_code[8];     /* "SY" */
  char station_code[8];             /* "S003" */
  char source_id[16];               /* "ev00000012" */
  char trace_start_time[32];        /* ISO 8601, UTC */
  char source_origin_time[32];      /* ISO 8601, UTC */
  const char *label;                /* "foreshock" | "aftershock" (static string) */
  const char *split;                /* "train" | "dev" | "test", by event (static string) */
  double start_epoch_s, origin_epoch_s;    /* seconds since 1970 */
  double station_latitude_deg, station_longitude_deg;
  double trace_sampling_rate_hz;
  double trace_p_arrival_sample;    /* sample index of P in the window */
  double trace_s_arrival_sample;    /* sample index of S; NaN when S falls after the window */
  double trace_snr_db;              /* 10 log10(signal energy / noise energy) in the P..S+ window */
  double source_latitude_deg, source_longitude_deg, source_depth_km;
  double source_magnitude;          /* ML */
  double path_hyp_distance_km, path_ep_distance_km;
  double source_stress_drop_mpa;    /* Brune stress drop, MPa */
  double source_corner_frequency_hz;/* Brune corner frequency, Hz */
  double peak_amplitude;            /* target peak horizontal signal amplitude A, mm (noise-free) */
  double noise_std;                 /* noise standard deviation, mm */
} sm_synth_meta;

/* Fill p with the defaults of the `synth` stage (1000 traces of 3000 samples at 100 Hz). Local. */
void sm_synth_params_default(sm_synth_params *p);

typedef struct sm_synth sm_synth;

/* A generator for the catalog described by p (stations, sequence timing, scratch buffers).
 * Local; validates p (SM_ERR_ARG naming the bad field) and may return SM_ERR_NOMEM. */
sm_status sm_synth_create(sm_ctx *ctx, const sm_synth_params *p, sm_synth **out);
/* Free; sets *s = NULL; accepts NULL. Local. */
void sm_synth_destroy(sm_synth **s);
/* Borrowed view of the generator's parameters. Local. */
const sm_synth_params *sm_synth_get_params(const sm_synth *s);
/* Number of events and of foreshocks (events 0 .. n_fore-1), and the mainshock time. Local. */
void sm_synth_sequence(const sm_synth *s, int64_t *n_events, int64_t *n_fore, double *mainshock_epoch_s);

/* Generate trace i (0 <= i < n_traces): rec float32 [3][n_samples] (Z, N, E) and its metadata.
 * Local; a pure function of (params, i) whatever was generated before (the generator caches the
 * current event only as a speed-up). Not thread-safe on one sm_synth. */
void sm_synth_trace(sm_synth *s, int64_t i, float *rec, sm_synth_meta *meta);

/* Write the whole catalog to `path` (temporary name until commit). Collective: each rank generates
 * its shard and all ranks write blocks of whole chunks in the same number of collective calls.
 * chunk_traces 0 lets the catalog choose; compression 0..9 (deflate). created_by and job_yaml go
 * to the provenance attributes (job_yaml may be NULL). Returns SM_ERR_ARG for bad parameters,
 * SM_ERR_IO / SM_ERR_HDF5 from the catalog, the same status on every rank. */
sm_status sm_synth_write(sm_ctx *ctx, const sm_synth_params *p, const char *path, int64_t chunk_traces,
                         int compression, const char *created_by, const char *job_yaml);

#ifdef __cplusplus
}
#endif
#endif
