/* Writing a synthetic catalog in parallel: each rank generates its shard (whole chunks, from
 * sm_shard_range) block by block and writes it with collective transfers. Every rank loops the
 * same number of times, fixed by global arithmetic (the largest shard over all ranks), and a
 * rank with nothing left passes count 0, so uneven shards and more ranks than traces cannot make
 * ranks call different numbers of collectives. Metadata columns are buffered for several blocks
 * (one collective call per column per flush) so that small metadata writes do not bound speed. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "sisma/catalog.h"
#include "sisma/shard.h"

#define BLOCK_BYTES ((int64_t)64 << 20) /* waveforms generated and written per collective call */
#define META_TRACES ((int64_t)1 << 16)  /* traces of metadata buffered between column writes */

/* String columns: fixed widths (values are NUL-padded; a value may fill the width). */
static const struct {
  const char *name;
  int width;
  size_t off;
  int is_ptr; /* the field is a `const char *` rather than a char array */
} str_cols[] = {
    {"trace_name", 32, offsetof(sm_synth_meta, trace_name), 0},
    {"station_network_code", 4, offsetof(sm_synth_meta, station_network_code), 0},
    {"station_code", 8, offsetof(sm_synth_meta, station_code), 0},
    {"trace_start_time", 32, offsetof(sm_synth_meta, trace_start_time), 0},
    {"source_id", 16, offsetof(sm_synth_meta, source_id), 0},
    {"source_origin_time", 32, offsetof(sm_synth_meta, source_origin_time), 0},
    {"source_magnitude_type", 4, 0, 2}, /* constant "ML" */
    {"label", 12, offsetof(sm_synth_meta, label), 1},
    {"split", 8, offsetof(sm_synth_meta, split), 1},
};

static const struct {
  const char *name;
  size_t off;
} f64_cols[] = {
    {"station_latitude_deg", offsetof(sm_synth_meta, station_latitude_deg)},
    {"station_longitude_deg", offsetof(sm_synth_meta, station_longitude_deg)},
    {"trace_sampling_rate_hz", offsetof(sm_synth_meta, trace_sampling_rate_hz)},
    {"trace_p_arrival_sample", offsetof(sm_synth_meta, trace_p_arrival_sample)},
    {"trace_s_arrival_sample", offsetof(sm_synth_meta, trace_s_arrival_sample)},
    {"trace_snr_db", offsetof(sm_synth_meta, trace_snr_db)},
    {"source_latitude_deg", offsetof(sm_synth_meta, source_latitude_deg)},
    {"source_longitude_deg", offsetof(sm_synth_meta, source_longitude_deg)},
    {"source_depth_km", offsetof(sm_synth_meta, source_depth_km)},
    {"source_magnitude", offsetof(sm_synth_meta, source_magnitude)},
    {"path_hyp_distance_km", offsetof(sm_synth_meta, path_hyp_distance_km)},
    {"path_ep_distance_km", offsetof(sm_synth_meta, path_ep_distance_km)},
    {"source_stress_drop_mpa", offsetof(sm_synth_meta, source_stress_drop_mpa)},
};

#define N_STR (sizeof str_cols / sizeof str_cols[0])
#define N_F64 (sizeof f64_cols / sizeof f64_cols[0])

static const char *str_value(const sm_synth_meta *m, size_t c) {
  if (str_cols[c].is_ptr == 2) return "ML";
  const char *base = (const char *)m + str_cols[c].off;
  return str_cols[c].is_ptr ? *(const char *const *)base : base;
}

static sm_status create_columns(sm_catalog *cat) {
  sm_ctx *ctx = sm_catalog_ctx(cat);
  for (size_t c = 0; c < N_STR; c++) SM_TRY(ctx, sm_catalog_column_create(cat, str_cols[c].name, SM_COL_STR, str_cols[c].width));
  for (size_t c = 0; c < N_F64; c++) SM_TRY(ctx, sm_catalog_column_create(cat, f64_cols[c].name, SM_COL_F64, 0));
  return SM_OK;
}

/* Write the metadata of traces [first, first + n) (n may be 0) held in m. Collective. */
static sm_status flush_meta(sm_catalog *cat, int64_t first, int64_t n, const sm_synth_meta *m, char *scratch) {
  sm_ctx *ctx = sm_catalog_ctx(cat);
  double *v = (double *)scratch;
  for (size_t c = 0; c < N_F64; c++) {
    for (int64_t i = 0; i < n; i++) v[i] = *(const double *)((const char *)(m + i) + f64_cols[c].off);
    SM_TRY(ctx, sm_catalog_write_f64(cat, f64_cols[c].name, first, n, v));
  }
  char *s = scratch;
  for (size_t c = 0; c < N_STR; c++) {
    const int w = str_cols[c].width;
    memset(s, 0, (size_t)(n * w));
    for (int64_t i = 0; i < n; i++) {
      const char *x = str_value(m + i, c);
      size_t l = strlen(x);
      memcpy(s + i * w, x, l < (size_t)w ? l : (size_t)w);
    }
    SM_TRY(ctx, sm_catalog_write_str(cat, str_cols[c].name, first, n, s));
  }
  return SM_OK;
}

static sm_status set_model_attrs(sm_catalog *cat, const sm_synth *g) {
  sm_ctx *ctx = sm_catalog_ctx(cat);
  const sm_synth_params *p = sm_synth_get_params(g);
  int64_t ne, nf;
  double tm;
  char text[64];
  sm_synth_sequence(g, &ne, &nf, &tm);
  sm_time_format(tm, text);
  SM_TRY(ctx, sm_catalog_set_attr(cat, "synth_model", "sisma-synth-1: Brune source, Hutton-Boore ML amplitudes, "
                                                      "Omori sequence; see docs/synthetic.md"));
  SM_TRY(ctx, sm_catalog_set_attr(cat, "synth_amplitude_relation",
                                  "log10 A[mm] = ML - 1.110 log10(r/100) - 0.00189 (r - 100) - 3.0 (Hutton & Boore 1987)"));
  SM_TRY(ctx, sm_catalog_set_attr(cat, "synth_mainshock_time", text));
  snprintf(text, sizeof text, "%llu", (unsigned long long)p->seed);
  SM_TRY(ctx, sm_catalog_set_attr(cat, "synth_seed", text));
  const struct {
    const char *name;
    double v;
  } num[] = {{"synth_n_events", (double)ne}, {"synth_n_foreshocks", (double)nf},
             {"synth_traces_per_event", (double)p->traces_per_event}, {"synth_n_stations", (double)p->n_stations},
             {"synth_mainshock_fraction", p->mainshock_fraction}, {"synth_magnitude_min", p->magnitude_min},
             {"synth_magnitude_max", p->magnitude_max}, {"synth_b_value", p->b_value},
             {"synth_stress_drop_foreshock_mpa", p->stress_fore_mpa},
             {"synth_stress_drop_aftershock_mpa", p->stress_after_mpa},
             {"synth_stress_drop_sigma_log10", p->stress_sigma_log10}, {"synth_noise_log10_min", p->noise_log10_min},
             {"synth_noise_log10_max", p->noise_log10_max}, {"synth_amplitude_sigma_log10", p->amp_sigma_log10},
             {"synth_vp_km_s", p->vp_km_s}, {"synth_vs_km_s", p->vp_km_s / sqrt(3.0)}};
  for (size_t i = 0; i < sizeof num / sizeof num[0]; i++) SM_TRY(ctx, sm_catalog_set_attr_f64(cat, num[i].name, num[i].v));
  return SM_OK;
}

/* Buffers of one rank's writer: a block of waveforms and META_TRACES rows of metadata. */
typedef struct {
  float *wave;         /* [block][3][T] */
  sm_synth_meta *meta; /* [meta_cap] */
  char *scratch;       /* one column of meta_cap rows (8 or up to 32 bytes per row) */
  int64_t block, meta_cap;
} writer_bufs;

static sm_status bufs_alloc(sm_ctx *ctx, writer_bufs *b, int64_t chunk, int64_t trace_floats) {
  b->block = chunk * (BLOCK_BYTES / (chunk * trace_floats * 4) > 1 ? BLOCK_BYTES / (chunk * trace_floats * 4) : 1);
  b->meta_cap = b->block * (META_TRACES / b->block > 1 ? META_TRACES / b->block : 1);
  SM_TRY(ctx, SM_ALLOC(ctx, b->wave, b->block * trace_floats));
  SM_TRY(ctx, SM_ALLOC(ctx, b->meta, b->meta_cap));
  return SM_ALLOC(ctx, b->scratch, b->meta_cap * 32);
}

static void bufs_free(writer_bufs *b) {
  free(b->wave);
  free(b->meta);
  free(b->scratch);
}

/* Generate and write this rank's shard `mine`: `rounds` blocks (the same count on every rank). */
static sm_status write_shard(sm_catalog *cat, sm_synth *g, sm_range mine, int64_t rounds, writer_bufs *b) {
  sm_ctx *ctx = sm_catalog_ctx(cat);
  const int64_t tf = SM_SYNTH_COMPONENTS * sm_synth_get_params(g)->n_samples;
  const int64_t per_flush = b->meta_cap / b->block;
  int64_t meta_first = mine.first, meta_n = 0;
  double t_gen = 0, t_wave = 0, t_meta = 0, t0 = sm_wtime(), t1;
  for (int64_t k = 0; k < rounds; k++) {
    int64_t first = mine.first + k * b->block, count = mine.first + mine.count - first;
    count = count < 0 ? 0 : count > b->block ? b->block : count;
    for (int64_t i = 0; i < count; i++) sm_synth_trace(g, first + i, b->wave + i * tf, b->meta + meta_n + i);
    meta_n += count;
    t1 = sm_wtime(), t_gen += t1 - t0, t0 = t1;
    SM_TRY(ctx, sm_catalog_write_traces(cat, count ? first : 0, count, b->wave));
    t1 = sm_wtime(), t_wave += t1 - t0, t0 = t1;
    if ((k + 1) % per_flush == 0 || k + 1 == rounds) {
      SM_TRY(ctx, flush_meta(cat, meta_n ? meta_first : 0, meta_n, b->meta, b->scratch));
      meta_first += meta_n, meta_n = 0;
      t1 = sm_wtime(), t_meta += t1 - t0, t0 = t1;
    }
  }
  sm_debug(ctx, "synth: rank %d: %lld traces in %lld round(s): generate %.2f s, write waveforms %.2f s, metadata %.2f s",
           ctx->rank, (long long)mine.count, (long long)rounds, t_gen, t_wave, t_meta);
  return SM_OK;
}

/* The largest shard over all ranks: the same on every rank, computed without communication. */
static int64_t largest_shard(int64_t n, int64_t chunk, int size) {
  int64_t m = 0;
  for (int r = 0; r < size; r++) {
    int64_t c = sm_shard_range(n, chunk, r, size).count;
    m = c > m ? c : m;
  }
  return m;
}

static sm_status write_body(sm_catalog *cat, const sm_synth_params *p, const char *created_by, const char *job_yaml) {
  sm_ctx *ctx = sm_catalog_ctx(cat);
  const int64_t chunk = sm_catalog_get_info(cat)->chunk_traces;
  sm_synth *g = NULL;
  writer_bufs b = {0};
  sm_status st = sm_synth_create(ctx, p, &g);
  if (st == SM_OK) st = bufs_alloc(ctx, &b, chunk, SM_SYNTH_COMPONENTS * p->n_samples);
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) st = create_columns(cat);
  if (st == SM_OK) st = set_model_attrs(cat, g);
  if (st == SM_OK) st = sm_catalog_set_provenance(cat, created_by, job_yaml);
  if (st == SM_OK) {
    sm_range mine = sm_shard_range(p->n_traces, chunk, ctx->rank, ctx->size);
    int64_t rounds = (largest_shard(p->n_traces, chunk, ctx->size) + b.block - 1) / b.block;
    st = write_shard(cat, g, mine, rounds, &b);
  }
  bufs_free(&b);
  sm_synth_destroy(&g);
  return st;
}

sm_status sm_synth_write(sm_ctx *ctx, const sm_synth_params *p, const char *path, int64_t chunk_traces,
                         int compression, const char *created_by, const char *job_yaml) {
  double t0 = sm_wtime();
  sm_catalog_info info = {.n_traces = p->n_traces, .n_components = SM_SYNTH_COMPONENTS, .n_samples = p->n_samples,
                          .sampling_rate_hz = p->rate_hz, .component_order = "ZNE", .chunk_traces = chunk_traces,
                          .compression = compression};
  sm_catalog *cat = NULL;
  SM_TRY(ctx, sm_catalog_create(ctx, path, &info, &cat));
  sm_status st = sm_ctx_agree(ctx, write_body(cat, p, created_by, job_yaml));
  if (st == SM_OK) st = sm_catalog_commit(&cat);
  sm_catalog_close(&cat);
  SM_TRY(ctx, st);
  double dt = sm_wtime() - t0, mb = (double)p->n_traces * SM_SYNTH_COMPONENTS * (double)p->n_samples * 4 / 1e6;
  sm_info(ctx, "synth: wrote %lld traces (%.1f MB of waveforms) to %s in %.2f s: %.0f MB/s", (long long)p->n_traces, mb,
          path, dt, mb / (dt > 0 ? dt : 1e-9));
  return SM_OK;
}
