/* The `synth` stage: `sisma synth -o CAT.h5 --traces N [--samples T] [--rate HZ] [--seed S]`, or
 * `- synth: {output: demo.h5, traces: 2000}` in a job file. Maps its keys onto sm_synth_params
 * and calls sm_synth_write (writer.c); the model is in model.c and waveform.c. */
#include <stdio.h>
#include <string.h>

#include "sisma/job.h"
#include "sisma/synth.h"

#define CATALOG_CHUNK_BYTES (2 << 20) /* the chunk size sm_catalog_create picks (for --dry-run) */

static const sm_key synth_keys[] = {
    {"output", SM_KEY_PATH, NULL, 0, -1, NULL, "catalog file to write (HDF5)"},
    {"traces", SM_KEY_INT, "1000", 1, 1e12, NULL, "number of traces"},
    {"samples", SM_KEY_INT, "3000", 16, 1e7, NULL, "samples per component window"},
    {"rate", SM_KEY_FLOAT, "100", 1, 1e5, NULL, "sampling rate, Hz"},
    {"seed", SM_KEY_INT, "1", 0, 9e15, NULL, "random seed: the catalog is a function of (keys, seed) only"},
    {"traces_per_event", SM_KEY_INT, "10", 1, 999, NULL, "stations recording each event (consecutive traces)"},
    {"stations", SM_KEY_INT, "16", 1, 999, NULL, "stations in the network (>= traces_per_event)"},
    {"mainshock_fraction", SM_KEY_FLOAT, "0.5", 0, 1, NULL,
     "where the mainshock falls in the sequence: share of events (and of its duration) before it"},
    {"start_time", SM_KEY_STR, "2020-01-01T00:00:00Z", 0, -1, NULL, "sequence start (ISO 8601, UTC)"},
    {"duration_days", SM_KEY_FLOAT, "30", 1e-3, 1e5, NULL, "sequence length, days"},
    {"magnitude_min", SM_KEY_FLOAT, "2.0", -2, 9, NULL, "smallest magnitude (Gutenberg-Richter)"},
    {"magnitude_max", SM_KEY_FLOAT, "5.5", -2, 9, NULL, "largest magnitude (truncated Gutenberg-Richter)"},
    {"b_value", SM_KEY_FLOAT, "1.0", 0.1, 3, NULL, "Gutenberg-Richter b value"},
    {"stress_drop_foreshock_mpa", SM_KEY_FLOAT, "1.0", 1e-3, 1e3, NULL, "median stress drop of foreshocks, MPa"},
    {"stress_drop_aftershock_mpa", SM_KEY_FLOAT, "3.0", 1e-3, 1e3, NULL, "median stress drop of aftershocks, MPa"},
    {"stress_drop_sigma", SM_KEY_FLOAT, "0.35", 0, 3, NULL, "lognormal spread of stress drop, log10 units"},
    {"noise_log10_min", SM_KEY_FLOAT, "-3.0", -12, 6, NULL, "per-trace noise std is 10^U(min, max) mm"},
    {"noise_log10_max", SM_KEY_FLOAT, "-2.0", -12, 6, NULL, "see noise_log10_min"},
    {"compression", SM_KEY_INT, "0", 0, 9, NULL, "deflate level of /waveforms (0 = none, fastest)"},
    SM_KEYS_END,
};

static sm_status params_from_config(sm_ctx *ctx, const sm_config *cfg, sm_synth_params *p) {
  sm_synth_params_default(p);
  p->n_traces = sm_config_int(cfg, "traces");
  p->n_samples = sm_config_int(cfg, "samples");
  p->rate_hz = sm_config_float(cfg, "rate");
  p->seed = (uint64_t)sm_config_int(cfg, "seed");
  p->traces_per_event = sm_config_int(cfg, "traces_per_event");
  p->n_stations = sm_config_int(cfg, "stations");
  p->mainshock_fraction = sm_config_float(cfg, "mainshock_fraction");
  p->duration_s = sm_config_float(cfg, "duration_days") * 86400.0;
  p->magnitude_min = sm_config_float(cfg, "magnitude_min");
  p->magnitude_max = sm_config_float(cfg, "magnitude_max");
  p->b_value = sm_config_float(cfg, "b_value");
  p->stress_fore_mpa = sm_config_float(cfg, "stress_drop_foreshock_mpa");
  p->stress_after_mpa = sm_config_float(cfg, "stress_drop_aftershock_mpa");
  p->stress_sigma_log10 = sm_config_float(cfg, "stress_drop_sigma");
  p->noise_log10_min = sm_config_float(cfg, "noise_log10_min");
  p->noise_log10_max = sm_config_float(cfg, "noise_log10_max");
  const char *t = sm_config_str(cfg, "start_time");
  SM_CHECK(ctx, sm_time_parse(t, &p->start_epoch_s) == 0, SM_ERR_CONFIG,
           "synth.start_time: \"%s\" is not an ISO 8601 time (e.g. 2020-01-01T00:00:00Z)", t);
  SM_CHECK(ctx, p->traces_per_event <= p->n_stations, SM_ERR_CONFIG,
           "synth.traces_per_event (%lld) exceeds synth.stations (%lld): each event has one trace per station",
           (long long)p->traces_per_event, (long long)p->n_stations);
  SM_CHECK(ctx, p->magnitude_min < p->magnitude_max, SM_ERR_CONFIG,
           "synth.magnitude_min (%g) must be below synth.magnitude_max (%g)", p->magnitude_min, p->magnitude_max);
  SM_CHECK(ctx, p->noise_log10_min <= p->noise_log10_max, SM_ERR_CONFIG,
           "synth.noise_log10_min (%g) must not exceed synth.noise_log10_max (%g)", p->noise_log10_min,
           p->noise_log10_max);
  return SM_OK;
}

/* "sisma synth --key value ..." with every key's resolved value: the provenance string. */
static void command_line(const sm_config *cfg, char *out, size_t n) {
  size_t used = (size_t)snprintf(out, n, "sisma synth");
  for (int i = 0; i < cfg->nkeys && used < n; i++)
    if (cfg->values[i]) used += (size_t)snprintf(out + used, n - used, " --%s %s", cfg->keys[i].name, cfg->values[i]);
}

static sm_status synth_run(sm_ctx *ctx, const sm_config *cfg) {
  sm_synth_params p;
  SM_TRY(ctx, params_from_config(ctx, cfg, &p));
  char path[4096], cmd[4096];
  sm_config_output_path(cfg, "output", path, sizeof path);
  command_line(cfg, cmd, sizeof cmd);
  return sm_synth_write(ctx, &p, path, 0, (int)sm_config_int(cfg, "compression"), cmd, cfg->job_yaml);
}

static sm_status synth_plan(sm_ctx *ctx, const sm_config *cfg, char *out, size_t n) {
  sm_synth_params p;
  SM_TRY(ctx, params_from_config(ctx, cfg, &p));
  char path[4096];
  sm_config_output_path(cfg, "output", path, sizeof path);
  int64_t trace_bytes = SM_SYNTH_COMPONENTS * p.n_samples * 4;
  int64_t chunk = CATALOG_CHUNK_BYTES / trace_bytes > 0 ? CATALOG_CHUNK_BYTES / trace_bytes : 1;
  sm_range r = sm_shard_range(p.n_traces, chunk, ctx->rank, ctx->size);
  snprintf(out, n, "rank %d: traces [%lld, %lld) in %lld chunk(s) of %lld trace(s), %.1f MB of waveforms -> %s",
           ctx->rank, (long long)r.first, (long long)(r.first + r.count), (long long)((r.count + chunk - 1) / chunk),
           (long long)chunk, (double)r.count * (double)trace_bytes / 1e6, path);
  return SM_OK;
}

const sm_stage sm_stage_synth = {"synth", "generate a deterministic synthetic catalog of a foreshock-aftershock sequence",
                                 synth_keys, synth_run, synth_plan};
