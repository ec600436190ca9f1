/* Metadata CSV -> /meta columns for the HDF5-layout importers. Every rank holds the whole CSV,
 * so the column plan (names, types, string widths) is computed locally and is identical on all
 * ranks; each rank then writes its own rows of every column collectively.
 *
 * Rules (docs/import-export.md "STEAD, SeisBench and INSTANCE layouts"):
 * - STEAD names are mapped to SeisBench names (table below); other columns keep their names.
 * - STEAD snr_db "[E N Z]" (dB) becomes trace_E_snr_db, trace_N_snr_db, trace_Z_snr_db (INSTANCE's
 *   names) and trace_snr_db, the mean of the finite component values in dB.
 * - A column is float64 (NaN = missing) when every value parses as a number, except names ending in
 *   _code, _name or _id, which stay strings (station "0123", location "00"); otherwise it is a
 *   fixed-width string column. Columns ending in _time whose values all parse as UTC times are
 *   rewritten as ISO 8601 "YYYY-MM-DDThh:mm:ss.ffffffZ".
 * - Added: trace_name_original (= trace_name unless the CSV has it), trace_npts (samples before
 *   zero padding) and trace_sampling_rate_hz; same-named CSV columns are replaced by these. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "import_h5.h"

typedef enum { K_NUM, K_STR, K_TIME, K_SNR, K_NAME_ORIG, K_NPTS, K_RATE } col_kind;

typedef struct {
  char name[SM_COLUMN_NAME_MAX];
  col_kind kind;
  int src;   /* CSV column */
  int comp;  /* K_SNR: -1 mean, 0..2 = E, N, Z */
  int width; /* string columns */
} col_plan;

static const char *const stead_names[][2] = {
    {"network_code", "station_network_code"},  {"receiver_code", "station_code"},
    {"receiver_type", "trace_channel"},        {"receiver_latitude", "station_latitude_deg"},
    {"receiver_longitude", "station_longitude_deg"}, {"receiver_elevation_m", "station_elevation_m"},
    {"p_arrival_sample", "trace_p_arrival_sample"},  {"p_status", "trace_p_status"},
    {"p_weight", "trace_p_weight"},            {"p_travel_sec", "path_p_travel_sec"},
    {"s_arrival_sample", "trace_s_arrival_sample"},  {"s_status", "trace_s_status"},
    {"s_weight", "trace_s_weight"},            {"source_latitude", "source_latitude_deg"},
    {"source_longitude", "source_longitude_deg"},    {"source_distance_deg", "path_ep_distance_deg"},
    {"source_distance_km", "path_ep_distance_km"},   {"back_azimuth_deg", "path_back_azimuth_deg"},
    {"coda_end_sample", "trace_coda_end_sample"},
};

static const char *mapped_name(const sm__h5import *im, const char *name) {
  if (im->layout != SM_H5L_STEAD) return name;
  for (size_t i = 0; i < sizeof stead_names / sizeof stead_names[0]; i++)
    if (!strcmp(stead_names[i][0], name)) return stead_names[i][1];
  return name;
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && !strcmp(s + a - b, suffix);
}

/* Parse a UTC time written as "2007/01/01 01:42:45.08", "2006-07-23 15:59:00.96" or ISO 8601. */
static int parse_time(const char *s, double *t) {
  char buf[64];
  size_t n = strlen(s);
  if (n == 0 || n >= sizeof buf) return -1;
  memcpy(buf, s, n + 1);
  for (size_t i = 0; i < 10 && i < n; i++)
    if (buf[i] == '/') buf[i] = '-';
  return sm_time_parse(buf, t);
}

static int all_times(const sm_csv *csv, int col) {
  double t;
  for (int64_t i = 0; i < sm__csv_rows(csv); i++) {
    const char *s = sm__csv_str(csv, i, col);
    if (s[0] && parse_time(s, &t) != 0) return 0;
  }
  return 1;
}

/* STEAD snr_db "[56.79999924 55.40000153 47.40000153]" -> component comp (0..2) or the mean (-1). */
static double snr_value(const char *s, int comp) {
  double v[3] = {NAN, NAN, NAN}, sum = 0;
  int n = 0, k = 0;
  if (*s == '[') s++;
  while (k < 3 && *s && *s != ']') {
    char *end;
    double x = strtod(s, &end);
    if (end == s) break;
    v[k++] = x;
    s = end;
    while (*s == ' ' || *s == ',') s++;
  }
  if (comp >= 0) return k == 3 ? v[comp] : NAN;
  for (int i = 0; i < k; i++)
    if (isfinite(v[i])) sum += v[i], n++;
  return n ? sum / n : NAN;
}

static sm_status add(sm__h5import *im, col_plan *p, int *n, const char *name, col_kind kind, int src, int comp,
                     int width) {
  SM_CHECK(im->ctx, strlen(name) < SM_COLUMN_NAME_MAX && !strchr(name, '/'), SM_ERR_FORMAT,
           "%s:1: column name \"%s\" is longer than %d bytes or holds '/'", im->metadata, name, SM_COLUMN_NAME_MAX - 1);
  for (int i = 0; i < *n; i++)
    SM_CHECK(im->ctx, strcmp(p[i].name, name), SM_ERR_FORMAT,
             "%s:1: two columns map to the catalog column \"%s\" (the %s importer renames STEAD names to SeisBench "
             "names); remove one",
             im->metadata, name, im->format);
  col_plan *c = &p[(*n)++];
  snprintf(c->name, sizeof c->name, "%s", name);
  c->kind = kind, c->src = src, c->comp = comp, c->width = width;
  return SM_OK;
}

static sm_status plan_columns(sm__h5import *im, col_plan *p, int *n) {
  const sm_csv *csv = im->csv;
  *n = 0;
  for (int j = 0; j < sm__csv_cols(csv); j++) {
    const char *src = sm__csv_col_name(csv, j), *name = mapped_name(im, src);
    if (!strcmp(name, "trace_npts") || !strcmp(name, "trace_sampling_rate_hz")) continue; /* added below */
    if (im->layout == SM_H5L_STEAD && !strcmp(src, "snr_db")) {
      static const char *snr[] = {"trace_E_snr_db", "trace_N_snr_db", "trace_Z_snr_db"};
      for (int k = 0; k < 3; k++) SM_TRY(im->ctx, add(im, p, n, snr[k], K_SNR, j, k, 0));
      SM_TRY(im->ctx, add(im, p, n, "trace_snr_db", K_SNR, j, -1, 0));
      continue;
    }
    int forced = ends_with(name, "_code") || ends_with(name, "_name") || ends_with(name, "_id") ||
                 !strcmp(name, "trace_name_original");
    col_kind kind = !forced && sm__csv_is_numeric(csv, j) ? K_NUM : K_STR;
    if (kind == K_STR && ends_with(name, "_time") && all_times(csv, j)) kind = K_TIME;
    SM_TRY(im->ctx, add(im, p, n, name, kind, j, 0, kind == K_TIME ? 27 : sm__csv_max_len(csv, j)));
  }
  if (sm__csv_col_find(csv, "trace_name_original") < 0)
    SM_TRY(im->ctx, add(im, p, n, "trace_name_original", K_NAME_ORIG, im->name_col, 0,
                        sm__csv_max_len(csv, im->name_col)));
  SM_TRY(im->ctx, add(im, p, n, "trace_npts", K_NPTS, -1, 0, 0));
  SM_TRY(im->ctx, add(im, p, n, "trace_sampling_rate_hz", K_RATE, -1, 0, 0));
  return SM_OK;
}

static void fill_f64(const sm__h5import *im, const col_plan *c, double *v) {
  for (int64_t i = 0; i < im->count; i++) {
    int64_t row = im->first + i;
    switch (c->kind) {
    case K_NUM: v[i] = sm__csv_f64(im->csv, row, c->src); break;
    case K_SNR: v[i] = snr_value(sm__csv_str(im->csv, row, c->src), c->comp); break;
    case K_NPTS: v[i] = (double)im->tr[i].npts; break;
    default: v[i] = im->rate_hz; break;
    }
  }
}

static void fill_str(const sm__h5import *im, const col_plan *c, char *v) {
  for (int64_t i = 0; i < im->count; i++) {
    const char *s = sm__csv_str(im->csv, im->first + i, c->src);
    char iso[32];
    double t;
    if (c->kind == K_TIME && s[0] && parse_time(s, &t) == 0) {
      sm_time_format(t, iso);
      s = iso;
    }
    size_t l = strlen(s);
    memcpy(v + i * c->width, s, l < (size_t)c->width ? l : (size_t)c->width);
  }
}

sm_status sm__h5import_columns(sm__h5import *im, sm_catalog *cat) {
  sm_ctx *ctx = im->ctx;
  int ncols = 0, cap = sm__csv_cols(im->csv) + 8;
  col_plan *p = NULL;
  sm_status st = SM_ALLOC(ctx, p, cap);
  if (st == SM_OK) st = plan_columns(im, p, &ncols);
  st = sm_ctx_agree(ctx, st);
  for (int k = 0; st == SM_OK && k < ncols; k++) {
    const col_plan *c = &p[k];
    int is_str = c->kind == K_STR || c->kind == K_TIME || c->kind == K_NAME_ORIG;
    st = sm_catalog_column_create(cat, c->name, is_str ? SM_COL_STR : SM_COL_F64, is_str ? c->width : 0);
    st = sm_ctx_agree(ctx, st);
    if (st != SM_OK) break;
    if (is_str) {
      char *v = calloc((size_t)(im->count > 0 ? im->count : 1), (size_t)c->width);
      if (!v) st = SM_ERR(ctx, SM_ERR_NOMEM, "out of memory for column %s", c->name);
      else fill_str(im, c, v);
      st = sm_ctx_agree(ctx, st);
      if (st == SM_OK) st = sm_catalog_write_str(cat, c->name, im->first, im->count, v);
      free(v);
    } else {
      double *v = NULL;
      st = sm_ctx_agree(ctx, SM_ALLOC(ctx, v, im->count > 0 ? im->count : 1));
      if (st == SM_OK) fill_f64(im, c, v);
      if (st == SM_OK) st = sm_catalog_write_f64(cat, c->name, im->first, im->count, v);
      free(v);
    }
  }
  free(p);
  return st;
}
