/* Input of the pca and kmeans stages: the numeric columns of a table (sisma/table.h) with an
 * optional row filter and an optional geographic -> local km conversion, or the whole waveforms
 * of a catalog (one row of C x T samples per trace). Rows stay in input order, split over the
 * ranks in rank order (tables: near-equal blocks; catalogs: chunk-aligned shards).
 *
 * Geographic conversion (hypocentres): about the mean epicentre (lat0, lon0) of the kept rows,
 *   east = R (lon - lon0) cos(lat0),  north = R (lat - lat0),  down = depth,   R = 6371 km,
 * angles in radians: a local equirectangular projection, within 0.1 % of geodesic distances over
 * the few tens of km of an aftershock sequence. The mean comes from the block tree, so the
 * converted rows are the same for every rank count. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data.h"
#include "internal.h"
#include "sisma/catalog.h"
#include "sisma/shard.h"
#include "sisma/table.h"

typedef struct {
  sm_catalog *cat;
  float *buf;
  int64_t cap, d;
  char norm[8];
} stream;

void sm__dataset_fini(sm__dataset *ds) {
  stream *s = ds->stream;
  if (s) sm_catalog_close(&s->cat), free(s->buf), free(s);
  free(ds->x), free(ds->source_row);
  memset(ds, 0, sizeof *ds);
}

/* A relative input is looked up in output_dir first (a file an earlier stage wrote there); the
 * part after ":/" (an HDF5 object) is kept as it is. */
static void resolve(const sm_config *cfg, const char *spec, char *out, size_t size) {
  const char *obj = strstr(spec, ":/");
  size_t flen = obj ? (size_t)(obj - spec) : strlen(spec);
  char file[4096];
  snprintf(file, sizeof file, "%.*s", (int)flen, spec);
  struct stat sb;
  if (file[0] != '/' && cfg->output_dir && cfg->output_dir[0]) {
    char cand[4096 + 1024];
    snprintf(cand, sizeof cand, "%s/%s", cfg->output_dir, file);
    if (stat(cand, &sb) == 0) {
      snprintf(out, size, "%s%s", cand, obj ? obj : "");
      return;
    }
  }
  snprintf(out, size, "%s", spec);
}

static int ends_with(const char *s, const char *tail) {
  size_t a = strlen(s), b = strlen(tail);
  return a >= b && !strcmp(s + a - b, tail);
}

/* Divide a row by its peak |value| or its RMS (a row of zeros stays as it is). */
static void normalize(double *r, int64_t d, const char *how) {
  if (!strcmp(how, "none")) return;
  double s = 0;
  for (int64_t j = 0; j < d; j++) s = how[0] == 'p' ? fmax(s, fabs(r[j])) : s + r[j] * r[j];
  if (how[0] == 'r') s = sqrt(s / (double)d);
  for (int64_t j = 0; s > 0 && j < d; j++) r[j] /= s;
}

static void normalize_rows(sm__dataset *ds, const char *how) {
  for (int64_t i = 0; i < ds->count; i++) normalize(ds->x + i * ds->d, ds->d, how);
}

static sm_status stream_read(void *u, int64_t m, const int64_t *idx, double *out);

/* sm_row_source over rows already in memory */
static sm_status memory_read(void *u, int64_t m, const int64_t *idx, double *out) {
  const sm__dataset *ds = u;
  for (int64_t i = 0; i < m; i++)
    memcpy(out + i * ds->d, ds->x + (idx[i] - ds->first) * ds->d, (size_t)ds->d * sizeof *out);
  return SM_OK;
}

sm_status sm__dataset_stream(sm_ctx *ctx, const sm_config *cfg, sm__dataset *ds, sm_row_source *src) {
  char spec[8192];
  resolve(cfg, sm_config_str(cfg, "data"), spec, sizeof spec);
  int catalog = !sm_config_str(cfg, "columns")[0] && !strstr(spec, ":/") &&
                (ends_with(spec, ".h5") || ends_with(spec, ".hdf5"));
  if (!catalog) {
    SM_TRY(ctx, sm__dataset_load(ctx, cfg, ds));
    *src = (sm_row_source){ds->n, ds->first, ds->count, ds->d, memory_read, ds};
    return SM_OK;
  }
  memset(ds, 0, sizeof *ds);
  stream *s = calloc(1, sizeof *s);
  SM_CHECK(ctx, s, SM_ERR_NOMEM, "out of memory");
  ds->stream = s;
  snprintf(s->norm, sizeof s->norm, "%s", sm_config_str(cfg, "normalize_rows"));
  sm_status st = sm_catalog_open(ctx, spec, &s->cat);
  if (st != SM_OK) return st;
  const sm_catalog_info *in = sm_catalog_get_info(s->cat);
  sm_range r = sm_catalog_shard(s->cat, ctx->rank, ctx->size);
  ds->n = in->n_traces, ds->first = r.first, ds->count = r.count, s->d = ds->d = in->n_components * in->n_samples;
  ds->waveforms = 1;
  snprintf(ds->names, sizeof ds->names, "waveform [%d components x %lld samples]", in->n_components,
           (long long)in->n_samples);
  st = sm_ctx_agree(ctx, SM_ALLOC(ctx, ds->source_row, r.count + 1));
  for (int64_t i = 0; st == SM_OK && i < r.count; i++) ds->source_row[i] = r.first + i;
  *src = (sm_row_source){ds->n, ds->first, ds->count, ds->d, stream_read, s};
  return st;
}

static void normalize(double *r, int64_t d, const char *how);

static sm_status stream_read(void *u, int64_t m, const int64_t *idx, double *out) {
  stream *s = u;
  sm_ctx *ctx = sm_catalog_ctx(s->cat);
  if (m > s->cap) {
    free(s->buf);
    s->buf = NULL, s->cap = 0;
  }
  sm_status st = SM_OK;
  if (!s->buf) {
    s->cap = m > 1 ? m : 1;
    st = SM_ALLOC(ctx, s->buf, s->cap * s->d);
  }
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) st = sm_catalog_read_trace_list(s->cat, m, idx, s->buf);
  for (int64_t i = 0; st == SM_OK && i < m * s->d; i++) out[i] = s->buf[i];
  for (int64_t i = 0; st == SM_OK && i < m; i++) normalize(out + i * s->d, s->d, s->norm);
  return st;
}

static sm_status load_waveforms(sm_ctx *ctx, const sm_config *cfg, const char *path, sm__dataset *ds) {
  sm_catalog *cat = NULL;
  SM_TRY(ctx, sm_catalog_open(ctx, path, &cat));
  const sm_catalog_info *in = sm_catalog_get_info(cat);
  sm_range r = sm_catalog_shard(cat, ctx->rank, ctx->size);
  ds->n = in->n_traces, ds->first = r.first, ds->count = r.count, ds->d = in->n_components * in->n_samples;
  ds->waveforms = 1;
  snprintf(ds->names, sizeof ds->names, "waveform [%d components x %lld samples]", in->n_components,
           (long long)in->n_samples);
  double need_mb = (double)r.count * (double)ds->d * 12.0 / 1048576.0;
  sm_status st = SM_OK;
  if (cfg->memory_budget_mb > 0 && need_mb > (double)cfg->memory_budget_mb)
    st = SM_ERR(ctx, SM_ERR_CONFIG,
                "%s: this rank's %lld traces need %.0f MiB as float64 rows, over memory_budget_mb = %lld (use more "
                "ranks, or PCA scores as the k-means input)",
                path, (long long)r.count, need_mb, (long long)cfg->memory_budget_mb);
  float *f = NULL;
  if (st == SM_OK) st = SM_ALLOC(ctx, f, r.count * ds->d + 1);
  if (st == SM_OK) st = SM_ALLOC(ctx, ds->x, r.count * ds->d + 1);
  if (st == SM_OK) st = SM_ALLOC(ctx, ds->source_row, r.count + 1);
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) st = sm_catalog_read_traces(cat, r.first, r.count, f);
  for (int64_t i = 0; st == SM_OK && i < r.count * ds->d; i++) ds->x[i] = f[i];
  for (int64_t i = 0; st == SM_OK && i < r.count; i++) ds->source_row[i] = r.first + i;
  free(f);
  sm_catalog_close(&cat);
  return st;
}

typedef struct {
  int col;
  double lo, hi;
} range_filter;

/* "col:lo:hi,col2:lo:" -> filters (empty bound = open). */
static sm_status parse_filter(sm_ctx *ctx, sm_table *t, const char *text, range_filter **out, int *nf) {
  *out = NULL, *nf = 0;
  if (!text[0]) return SM_OK;
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", text);
  int cap = 1;
  for (const char *p = text; *p; p++) cap += *p == ',';
  range_filter *f = calloc((size_t)cap, sizeof *f);
  SM_CHECK(ctx, f, SM_ERR_NOMEM, "out of memory");
  *out = f;
  char *save = NULL;
  for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    char *c1 = strrchr(tok, ':');
    if (c1) *c1 = '\0';
    char *c0 = c1 ? strrchr(tok, ':') : NULL;
    SM_CHECK(ctx, c0, SM_ERR_CONFIG, "filter \"%s\": expected column:lo:hi (e.g. \"depth:0:20\")", text);
    *c0 = '\0';
    range_filter *g = &f[(*nf)++];
    SM_TRY(ctx, sm_table_find(t, tok, &g->col));
    SM_CHECK(ctx, !sm_table_col_is_str(t, g->col), SM_ERR_CONFIG, "filter: column %s holds text, not numbers", tok);
    char *end;
    g->lo = c0[1] ? strtod(c0 + 1, &end) : -INFINITY;
    SM_CHECK(ctx, !c0[1] || !*end, SM_ERR_CONFIG, "filter %s: lower bound \"%s\" is not a number", tok, c0 + 1);
    g->hi = c1[1] ? strtod(c1 + 1, &end) : INFINITY;
    SM_CHECK(ctx, !c1[1] || !*end, SM_ERR_CONFIG, "filter %s: upper bound \"%s\" is not a number", tok, c1 + 1);
  }
  return SM_OK;
}

/* Select columns and rows of the table (local work; the caller agrees). */
static sm_status select_rows(sm_ctx *ctx, const sm_config *cfg, sm_table *t, sm__dataset *ds) {
  const char *cols = sm_config_str(cfg, "columns");
  int nt = sm_table_ncols(t), *idx = NULL, d = 0;
  SM_TRY(ctx, SM_ALLOC(ctx, idx, nt + 1));
  sm_status st = SM_OK;
  if (!cols[0]) {
    for (int j = 0; j < nt; j++)
      if (!sm_table_col_is_str(t, j)) idx[d++] = j;
    if (!d) st = SM_ERR(ctx, SM_ERR_DATA, "%s: no numeric column", sm_table_spec(t));
  } else {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", cols);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok && st == SM_OK; tok = strtok_r(NULL, ",", &save)) {
      while (*tok == ' ') tok++;
      if (d >= nt) st = SM_ERR(ctx, SM_ERR_CONFIG, "columns: more names than the table has columns");
      else st = sm_table_find(t, tok, &idx[d]);
      if (st == SM_OK && sm_table_col_is_str(t, idx[d]))
        st = SM_ERR(ctx, SM_ERR_CONFIG, "columns: %s holds text, not numbers", tok);
      d++;
    }
  }
  range_filter *flt = NULL;
  int nf = 0;
  if (st == SM_OK) st = parse_filter(ctx, t, sm_config_str(cfg, "filter"), &flt, &nf);
  sm_range r = sm_table_range(t);
  if (st == SM_OK) st = SM_ALLOC(ctx, ds->x, r.count * d + 1);
  if (st == SM_OK) st = SM_ALLOC(ctx, ds->source_row, r.count + 1);
  ds->d = d;
  for (int j = 0; st == SM_OK && j < d; j++) {
    size_t at = strlen(ds->names);
    snprintf(ds->names + at, sizeof ds->names - at, "%s%s", j ? "," : "", sm_table_col_name(t, idx[j]));
  }
  for (int64_t i = 0; st == SM_OK && i < r.count; i++) {
    int keep = 1;
    for (int f = 0; f < nf && keep; f++) {
      double v = sm_table_num(t, flt[f].col)[i];
      keep = v >= flt[f].lo && v <= flt[f].hi; /* NaN fails both */
    }
    if (!keep) continue;
    for (int j = 0; j < d && st == SM_OK; j++) {
      double v = sm_table_num(t, idx[j])[i];
      if (!isfinite(v))
        st = SM_ERR(ctx, SM_ERR_DATA,
                    "%s: row %lld, column %s: missing or non-finite value (drop such rows with filter: \"%s::\")",
                    sm_table_spec(t), (long long)(r.first + i + 1), sm_table_col_name(t, idx[j]),
                    sm_table_col_name(t, idx[j]));
      ds->x[ds->count * d + j] = v;
    }
    ds->source_row[ds->count++] = r.first + i;
  }
  free(idx), free(flt);
  return st;
}

/* lat, lon, depth -> east, north, down km about the mean epicentre (see the file comment). */
static sm_status to_local_km(sm_ctx *ctx, sm__dataset *ds) {
  SM_CHECK(ctx, ds->d == 3, SM_ERR_CONFIG,
           "geographic: expected 3 columns (latitude, longitude, depth km), got %lld (%s)", (long long)ds->d, ds->names);
  sm_rows x = {ds->n, ds->first, ds->count, 3, ds->x};
  sm__blocks bk;
  double mean[3];
  SM_TRY(ctx, sm__blocks_init(ctx, &x, 0, &bk));
  sm_status st = sm__column_moments(ctx, &bk, mean, NULL);
  sm__blocks_fini(&bk);
  SM_TRY(ctx, st);
  const double R = 6371.0, rad = M_PI / 180.0;
  ds->lat0 = mean[0], ds->lon0 = mean[1], ds->geographic = 1;
  for (int64_t i = 0; i < ds->count; i++) {
    double *p = ds->x + 3 * i, lat = p[0], lon = p[1];
    p[0] = R * (lon - ds->lon0) * rad * cos(ds->lat0 * rad);
    p[1] = R * (lat - ds->lat0) * rad;
  }
  snprintf(ds->names, sizeof ds->names, "east_km,north_km,down_km");
  return SM_OK;
}

sm_status sm__dataset_load(sm_ctx *ctx, const sm_config *cfg, sm__dataset *ds) {
  memset(ds, 0, sizeof *ds);
  char spec[8192];
  resolve(cfg, sm_config_str(cfg, "data"), spec, sizeof spec);
  int catalog = !sm_config_str(cfg, "columns")[0] && !strstr(spec, ":/") &&
                (ends_with(spec, ".h5") || ends_with(spec, ".hdf5"));
  if (catalog) {
    SM_CHECK(ctx, !sm_config_str(cfg, "filter")[0] && !sm_config_bool(cfg, "geographic"), SM_ERR_CONFIG,
             "%s: filter and geographic apply to table columns; for the waveforms of a catalog leave them unset "
             "(or name metadata columns in columns)",
             spec);
    sm_status st = load_waveforms(ctx, cfg, spec, ds);
    if (st == SM_OK) normalize_rows(ds, sm_config_str(cfg, "normalize_rows"));
    if (st != SM_OK) sm__dataset_fini(ds);
    return st;
  }
  sm_table *t = NULL;
  SM_TRY(ctx, sm_table_open(ctx, spec, &t));
  sm_status st = select_rows(ctx, cfg, t, ds);
  if (st == SM_OK) st = sm_fault_point(ctx, "unsupervised_load");
  st = sm_ctx_agree(ctx, st);
  sm_table_close(&t);
  if (st == SM_OK) {
    st = SM_MPI_STATUS(ctx, MPI_Exscan(&ds->count, &ds->first, 1, MPI_INT64_T, MPI_SUM, ctx->comm));
    if (ctx->rank == 0) ds->first = 0;
  }
  if (st == SM_OK) st = SM_MPI_STATUS(ctx, MPI_Allreduce(&ds->count, &ds->n, 1, MPI_INT64_T, MPI_SUM, ctx->comm));
  if (st == SM_OK && ds->n == 0) st = SM_ERR(ctx, SM_ERR_DATA, "%s: no rows left after the filter", spec);
  if (st == SM_OK && sm_config_bool(cfg, "geographic")) st = to_local_km(ctx, ds);
  if (st == SM_OK) normalize_rows(ds, sm_config_str(cfg, "normalize_rows"));
  if (st != SM_OK) sm__dataset_fini(ds);
  return st;
}
