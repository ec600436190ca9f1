/* Copying the metadata columns of a catalog into a derived one (the preprocess output): the same
 * names, types and widths, values of this rank's traces, with sample indices rescaled to a new
 * sampling rate so picks keep pointing at the same instant. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && !strcmp(s + a - b, suffix);
}

static sm_status copy_one(sm_catalog *src, sm_catalog *dst, const char *name, sm_range r, double scale, double rate) {
  sm_ctx *ctx = sm_catalog_ctx(src);
  sm_col_type type;
  int width = 0;
  SM_TRY(ctx, sm_catalog_column_info(src, name, &type, &width));
  SM_TRY(ctx, sm_catalog_column_create(dst, name, type, width));
  void *buf = NULL;
  size_t es = type == SM_COL_STR ? (size_t)width : 8;
  sm_status st = sm_ctx_agree(ctx, sm__alloc(ctx, &buf, (size_t)(r.count ? r.count : 1), es, __FILE__, __LINE__));
  if (st != SM_OK) return st;
  int sample = ends_with(name, "_sample") && scale != 1, is_rate = !strcmp(name, "trace_sampling_rate_hz");
  if (type == SM_COL_STR) {
    st = sm_catalog_read_str(src, name, r.first, r.count, buf);
    if (st == SM_OK) st = sm_catalog_write_str(dst, name, r.first, r.count, buf);
  } else if (type == SM_COL_F64) {
    double *v = buf;
    st = sm_catalog_read_f64(src, name, r.first, r.count, v);
    for (int64_t i = 0; i < r.count; i++)
      if (sample)
        v[i] *= scale;
      else if (is_rate)
        v[i] = rate;
    if (st == SM_OK) st = sm_catalog_write_f64(dst, name, r.first, r.count, v);
  } else {
    int64_t *v = buf;
    st = sm_catalog_read_i64(src, name, r.first, r.count, v);
    for (int64_t i = 0; i < r.count; i++)
      if (sample && v[i] != INT64_MIN)
        v[i] = llround((double)v[i] * scale);
      else if (is_rate)
        v[i] = llround(rate);
    if (st == SM_OK) st = sm_catalog_write_i64(dst, name, r.first, r.count, v);
  }
  free(buf);
  return st;
}

sm_status sm__copy_columns(sm_catalog *src, sm_catalog *dst, sm_range r, double sample_scale, double new_rate_hz,
                           const char *const *skip) {
  for (int i = 0; i < sm_catalog_column_count(src); i++) {
    const char *name = sm_catalog_column_name(src, i);
    int skipped = 0;
    for (const char *const *s = skip; s && *s; s++)
      skipped |= !strncmp(name, *s, strlen(*s));
    if (!skipped) SM_TRY(sm_catalog_ctx(src), copy_one(src, dst, name, r, sample_scale, new_rate_hz));
  }
  return SM_OK;
}
