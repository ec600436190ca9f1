/* The `features` stage: per-trace features (sm_trace_features) of every trace of a catalog,
 * written as a column table (include/sisma/table_writer.h): file.h5:/features holds one float64
 * dataset per feature plus every metadata column of the catalog (trace name, source id, split,
 * labels, magnitude, distance ...), one row per trace in catalog order. Traces are read through
 * the memory-budgeted shard reader; each row depends on its trace alone, so the table is the same
 * at any rank count. Start at features_run. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "sisma/job.h"
#include "sisma/table_writer.h"

static const sm_key feat_keys[] = {
    {"catalog", SM_KEY_PATH, NULL, 0, -1, NULL, "catalog to describe (usually the preprocess output)"},
    {"output", SM_KEY_PATH, "features.h5", 0, -1, NULL, "feature table file (HDF5, group `group`)"},
    {"group", SM_KEY_STR, "features", 0, -1, NULL, "group holding the columns"},
    {"picks", SM_KEY_ENUM, "catalog", 0, -1, "catalog|picker",
     "P/S samples the windows hang on: trace_p/s_arrival_sample (pick_p/s_sample of preprocess where missing), or "
     "always preprocess's pick_p/s_sample"},
    {"noise_s", SM_KEY_FLOAT, "3", 1e-3, 1e4, NULL, "noise window before P, s"},
    {"signal_s", SM_KEY_FLOAT, "5", 1e-3, 1e4, NULL, "signal window from P, s"},
    {"ps_window_s", SM_KEY_FLOAT, "2", 1e-3, 1e4, NULL, "P and S windows of the P/S amplitude ratio, s"},
    {"duration_factor", SM_KEY_FLOAT, "2", 1, 1e6, NULL, "duration: envelope above this x the noise RMS"},
    {"envelope_s", SM_KEY_FLOAT, "1", 1e-3, 1e4, NULL, "envelope (moving RMS) window, s"},
    {"fmin_hz", SM_KEY_FLOAT, "0.5", 1e-4, 1e6, NULL, "spectral range: lowest frequency, Hz"},
    {"fmax_hz", SM_KEY_FLOAT, "20", 1e-4, 1e6, NULL, "spectral range: highest frequency, Hz (< Nyquist)"},
    {"bands", SM_KEY_STR, "1-5,5-10,10-20", 0, -1, NULL, "bands of the spectral ratios, lo-hi Hz, a list"},
    {"amplitude", SM_KEY_ENUM, "restore", 0, -1, "restore|as_is",
     "restore: multiply each component by preprocess's norm_scale_<c> first, so amplitude features survive a "
     "normalize step; as_is: use the samples as stored"},
    {"spectrum", SM_KEY_ENUM, "velocity", 0, -1, "velocity|displacement", "what the traces are (Brune fit model)"},
    SM_KEYS_END,
};

static sm_status parse_bands(sm_ctx *ctx, const char *text, double nyq, sm_feature_params *fp) {
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", text);
  fp->n_bands = 0;
  char *save = NULL;
  for (char *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
    double lo, hi;
    SM_CHECK(ctx, fp->n_bands < SM_FEATURE_MAX_BANDS, SM_ERR_CONFIG, "features.bands: at most %d bands",
             SM_FEATURE_MAX_BANDS);
    SM_CHECK(ctx, sscanf(t, "%lf-%lf", &lo, &hi) == 2 && lo >= 0 && hi > lo && hi <= nyq, SM_ERR_CONFIG,
             "features.bands: '%s' must be lo-hi in Hz with 0 <= lo < hi <= %g (Nyquist)", t, nyq);
    fp->band_hz[fp->n_bands][0] = lo, fp->band_hz[fp->n_bands][1] = hi, fp->n_bands++;
  }
  return SM_OK;
}

static sm_status read_params(sm_ctx *ctx, const sm_config *cfg, const sm_catalog_info *in, sm_feature_params *fp) {
  double nyq = in->sampling_rate_hz / 2;
  fp->noise_s = sm_config_float(cfg, "noise_s"), fp->signal_s = sm_config_float(cfg, "signal_s");
  fp->ps_window_s = sm_config_float(cfg, "ps_window_s");
  fp->duration_factor = sm_config_float(cfg, "duration_factor"), fp->envelope_s = sm_config_float(cfg, "envelope_s");
  fp->fmin_hz = sm_config_float(cfg, "fmin_hz"), fp->fmax_hz = sm_config_float(cfg, "fmax_hz");
  fp->velocity = !strcmp(sm_config_str(cfg, "spectrum"), "velocity");
  const char *z = strchr(in->component_order, 'Z');
  fp->z = z ? (int)(z - in->component_order) : 0;
  SM_CHECK(ctx, fp->fmin_hz < fp->fmax_hz && fp->fmax_hz <= nyq, SM_ERR_CONFIG,
           "features: fmin_hz %g and fmax_hz %g must satisfy fmin < fmax <= %g Hz (Nyquist of the catalog)",
           fp->fmin_hz, fp->fmax_hz, nyq);
  return parse_bands(ctx, sm_config_str(cfg, "bands"), nyq, fp);
}

/* P or S samples of the shard: the catalog column, else (or always, picks=picker) preprocess's pick. */
static sm_status read_picks(sm_catalog *cat, sm_range m, int use_picker, const char *cat_col, const char *pick_col,
                            double *v, double *tmp) {
  sm_ctx *ctx = sm_catalog_ctx(cat);
  for (int64_t i = 0; i < m.count; i++)
    v[i] = NAN;
  if (!use_picker && sm_catalog_has_column(cat, cat_col))
    SM_TRY(ctx, sm_catalog_read_as_f64(cat, cat_col, m.first, m.count, v));
  if (sm_catalog_has_column(cat, pick_col)) {
    SM_TRY(ctx, sm_catalog_read_as_f64(cat, pick_col, m.first, m.count, tmp));
    for (int64_t i = 0; i < m.count; i++)
      if (!isfinite(v[i])) v[i] = tmp[i];
  }
  return SM_OK;
}

/* 1 for traces preprocess rejected (their features stay NaN). */
static sm_status read_rejected(sm_catalog *cat, sm_range m, unsigned char *rej) {
  sm_ctx *ctx = sm_catalog_ctx(cat);
  memset(rej, 0, (size_t)(m.count ? m.count : 1));
  if (!sm_catalog_has_column(cat, "preprocess_status")) return SM_OK;
  int w = 0;
  SM_TRY(ctx, sm_catalog_column_info(cat, "preprocess_status", NULL, &w));
  char *b = NULL;
  SM_TRY(ctx, sm_ctx_agree(ctx, SM_ALLOC(ctx, b, m.count * w + 1)));
  sm_status st = sm_catalog_read_str(cat, "preprocess_status", m.first, m.count, b);
  for (int64_t i = 0; st == SM_OK && i < m.count; i++) {
    char v[32];
    sm_catalog_str_at(b, w, i, v, sizeof v);
    rej[i] = strcmp(v, "ok") != 0;
  }
  free(b);
  return st;
}

typedef struct {
  sm_catalog *cat;
  sm_feature_params fp;
  sm_range m;
  int nf, C;
  double *feat; /* [nf][count] */
  double *p, *s;
  unsigned char *rej;
  double *scale; /* [C][count] amplitude factors (1 when not restoring) */
} feat_run;

/* All traces of the shard through the reader; local work only. */
static sm_status compute(sm_ctx *ctx, feat_run *r, int64_t budget) {
  const sm_catalog_info *in = sm_catalog_get_info(r->cat);
  int64_t T = in->n_samples, te = (int64_t)r->C * T;
  double *x = NULL, *work = NULL, f[64];
  sm_reader *rd = NULL;
  sm_status st = SM_ALLOC(ctx, x, te);
  if (st == SM_OK) st = SM_ALLOC(ctx, work, sm_feature_work(T));
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) st = sm_reader_create(r->cat, r->m, budget, &rd);
  int64_t first, count;
  const float *t;
  while (st == SM_OK && (st = sm_reader_next(rd, &first, &count, &t)) == SM_OK && count > 0)
    for (int64_t k = 0; st == SM_OK && k < count; k++) {
      int64_t i = first + k - r->m.first;
      for (int j = 0; j < r->nf; j++)
        f[j] = NAN;
      int finite = !r->rej[i];
      for (int64_t q = 0; finite && q < te; q++)
        finite = isfinite(x[q] = t[k * te + q] * r->scale[(q / T) * r->m.count + i]);
      if (finite) st = sm_trace_features(ctx, &r->fp, x, r->C, T, T, in->sampling_rate_hz, r->p[i], r->s[i], f, work);
      for (int j = 0; j < r->nf; j++)
        r->feat[j * r->m.count + i] = f[j];
    }
  sm_reader_destroy(&rd);
  free(x), free(work);
  return st;
}

/* The table: every metadata column, then the features. Collective. */
static sm_status write_table(sm_ctx *ctx, const sm_config *cfg, feat_run *r, const char *path) {
  const sm_catalog_info *in = sm_catalog_get_info(r->cat);
  sm_table_writer *tw = NULL;
  SM_TRY(ctx, sm_table_writer_create(ctx, path, sm_config_str(cfg, "group"), in->n_traces, &tw));
  sm_status st = SM_OK;
  char *buf = NULL, names[4096] = "";
  size_t row = 8;
  for (int i = 0; i < sm_catalog_column_count(r->cat); i++) {
    int w = 0;
    sm_catalog_column_info(r->cat, sm_catalog_column_name(r->cat, i), NULL, &w);
    row = (size_t)w > row ? (size_t)w : row;
  }
  st = sm_ctx_agree(ctx, sm__alloc(ctx, (void **)&buf, (size_t)(r->m.count ? r->m.count : 1), row, __FILE__, __LINE__));
  for (int i = 0; st == SM_OK && i < sm_catalog_column_count(r->cat); i++) {
    const char *name = sm_catalog_column_name(r->cat, i);
    sm_col_type type;
    int w = 0;
    st = sm_catalog_column_info(r->cat, name, &type, &w);
    if (st == SM_OK && type == SM_COL_STR) {
      st = sm_catalog_read_str(r->cat, name, r->m.first, r->m.count, buf);
      if (st == SM_OK) st = sm_table_writer_str(tw, name, w, r->m.first, r->m.count, buf);
    } else if (st == SM_OK) {
      st = type == SM_COL_F64 ? sm_catalog_read_f64(r->cat, name, r->m.first, r->m.count, (double *)buf)
                              : sm_catalog_read_i64(r->cat, name, r->m.first, r->m.count, (int64_t *)buf);
      if (st == SM_OK)
        st = type == SM_COL_F64 ? sm_table_writer_f64(tw, name, r->m.first, r->m.count, (double *)buf)
                                : sm_table_writer_i64(tw, name, r->m.first, r->m.count, (int64_t *)buf);
    }
  }
  for (int j = 0; st == SM_OK && j < r->nf; j++) {
    char name[64];
    sm_feature_name(&r->fp, in->component_order, j, name, sizeof name);
    size_t l = strlen(names);
    snprintf(names + l, sizeof names - l, "%s%s", l ? "," : "", name);
    st = sm_table_writer_f64(tw, name, r->m.first, r->m.count, r->feat + j * r->m.count);
  }
  if (st == SM_OK) st = sm_table_writer_attr(tw, "feature_columns", names);
  if (st == SM_OK) st = sm_table_writer_attr(tw, "source_catalog", sm_catalog_path(r->cat));
  if (st == SM_OK) st = sm_table_writer_attr(tw, "software", sm_version());
  if (st == SM_OK) st = sm_table_writer_attr(tw, "job_config", cfg->job_yaml ? cfg->job_yaml : "");
  if (st == SM_OK) st = sm_table_writer_commit(&tw);
  sm_table_writer_close(&tw);
  free(buf);
  return st;
}

/* Rank 0 prints the count of finite values of each feature (summed over ranks). */
static sm_status report(sm_ctx *ctx, feat_run *r) {
  int64_t fin[64] = {0};
  for (int j = 0; j < r->nf; j++)
    for (int64_t i = 0; i < r->m.count; i++)
      fin[j] += isfinite(r->feat[j * r->m.count + i]);
  SM_MPI(ctx, MPI_Allreduce(MPI_IN_PLACE, fin, r->nf, MPI_INT64_T, MPI_SUM, ctx->comm));
  if (ctx->rank == 0) {
    const sm_catalog_info *in = sm_catalog_get_info(r->cat);
    printf("features: %lld traces, %d features (finite values per feature):\n", (long long)in->n_traces, r->nf);
    for (int j = 0; j < r->nf; j++) {
      char name[64];
      sm_feature_name(&r->fp, in->component_order, j, name, sizeof name);
      printf("  %-22s %lld\n", name, (long long)fin[j]);
    }
    fflush(stdout);
  }
  return SM_OK;
}

static sm_status features_body(sm_ctx *ctx, const sm_config *cfg, feat_run *r, const char *out) {
  const sm_catalog_info *in = sm_catalog_get_info(r->cat);
  r->C = in->n_components;
  SM_TRY(ctx, sm_ctx_agree(ctx, read_params(ctx, cfg, in, &r->fp)));
  r->nf = sm_feature_count(&r->fp, r->C);
  r->m = sm_catalog_shard(r->cat, ctx->rank, ctx->size);
  int64_t n = r->m.count ? r->m.count : 1;
  sm_status st = SM_ALLOC(ctx, r->feat, (int64_t)r->nf * n);
  if (st == SM_OK) st = SM_ALLOC(ctx, r->p, 3 * n);
  if (st == SM_OK) st = SM_ALLOC(ctx, r->rej, n);
  if (st == SM_OK) st = SM_ALLOC(ctx, r->scale, (int64_t)r->C * n);
  SM_TRY(ctx, sm_ctx_agree(ctx, st));
  int restore = !strcmp(sm_config_str(cfg, "amplitude"), "restore");
  for (int c = 0; c < r->C; c++) {
    char name[32];
    snprintf(name, sizeof name, "norm_scale_%c", in->component_order[c]);
    double *v = r->scale + c * n;
    for (int64_t i = 0; i < r->m.count; i++)
      v[i] = 1;
    if (restore && sm_catalog_has_column(r->cat, name))
      SM_TRY(ctx, sm_catalog_read_f64(r->cat, name, r->m.first, r->m.count, v));
    for (int64_t i = 0; i < r->m.count; i++)
      v[i] = isfinite(v[i]) ? v[i] : 1;
  }
  r->s = r->p + n;
  int picker = !strcmp(sm_config_str(cfg, "picks"), "picker");
  SM_TRY(ctx, read_picks(r->cat, r->m, picker, "trace_p_arrival_sample", "pick_p_sample", r->p, r->s + n));
  SM_TRY(ctx, read_picks(r->cat, r->m, picker, "trace_s_arrival_sample", "pick_s_sample", r->s, r->s + n));
  SM_TRY(ctx, read_rejected(r->cat, r->m, r->rej));
  SM_TRY(ctx, sm_ctx_agree(ctx, compute(ctx, r, cfg->memory_budget_mb * 1048576)));
  SM_TRY(ctx, write_table(ctx, cfg, r, out));
  return report(ctx, r);
}

static sm_status features_run(sm_ctx *ctx, const sm_config *cfg) {
  char in[4096], out[4096];
  sm_config_input_path(cfg, "catalog", in, sizeof in);
  sm_config_output_path(cfg, "output", out, sizeof out);
  SM_CHECK(ctx, !sm_path_same(in, out) && strcmp(in, out), SM_ERR_CONFIG,
           "features: output %s is the input catalog; choose another file", out);
  feat_run r;
  memset(&r, 0, sizeof r);
  SM_TRY(ctx, sm_catalog_open(ctx, in, &r.cat));
  sm_status st = features_body(ctx, cfg, &r, out);
  sm_catalog_close(&r.cat);
  free(r.feat), free(r.p), free(r.rej), free(r.scale);
  return st;
}

const sm_stage sm_stage_features = {
    "features",
    "per-trace features (amplitudes, energy, duration, spectra, Brune corner, P/S ratio, "
    "S-P) into a column table file.h5:/features",
    feat_keys, features_run, NULL};
