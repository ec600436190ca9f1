/* Metadata columns under /meta: one 1-D dataset per column, float64 (NaN = missing), int64
 * (INT64_MIN = missing) or fixed-width NUL-padded strings ("" = missing). Fixed width because
 * parallel HDF5 cannot write variable-length data collectively. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "sisma/config.h"

#define COLUMN_CHUNK 65536

static int cmp_col(const void *a, const void *b) {
  return strcmp(((const sm__column *)a)->name, ((const sm__column *)b)->name);
}

static sm_status add_column(sm_catalog *cat, const char *name, sm_col_type type, int width) {
  sm__column *c = realloc(cat->cols, (size_t)(cat->ncols + 1) * sizeof *c);
  SM_CHECK(cat->ctx, c, SM_ERR_NOMEM, "out of memory for column list");
  cat->cols = c;
  sm__column *nc = &c[cat->ncols++];
  memset(nc, 0, sizeof *nc);
  snprintf(nc->name, sizeof nc->name, "%s", name);
  nc->type = type;
  nc->width = width;
  qsort(cat->cols, (size_t)cat->ncols, sizeof *c, cmp_col);
  return SM_OK;
}

static herr_t scan_cb(hid_t g, const char *name, const H5L_info_t *li, void *data) {
  sm_catalog *cat = data;
  hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
  if (d < 0) return 0; /* not a dataset: ignore */
  hid_t t = H5Dget_type(d);
  H5T_class_t cls = H5Tget_class(t);
  sm_col_type type = cls == H5T_FLOAT ? SM_COL_F64 : cls == H5T_INTEGER ? SM_COL_I64 : SM_COL_STR;
  int width = cls == H5T_STRING ? (int)H5Tget_size(t) : 0;
  herr_t rc = (cls == H5T_STRING && H5Tis_variable_str(t) > 0) ? -1 : 0;
  H5Tclose(t);
  H5Dclose(d);
  if (rc < 0) {
    SM_ERR(cat->ctx, SM_ERR_FORMAT, "%s: /meta/%s holds variable-length strings; sisma catalogs use fixed-width strings",
           cat->path, name);
    return -1;
  }
  if (strlen(name) >= SM_COLUMN_NAME_MAX || add_column(cat, name, type, width) != SM_OK) return -1;
  return 0;
}

sm_status sm__columns_scan(sm_catalog *cat) {
  hid_t g = H5Gopen2(cat->file, "meta", H5P_DEFAULT);
  SM_CHECK(cat->ctx, g >= 0, SM_ERR_FORMAT, "%s: group /meta is missing", cat->path);
  herr_t rc = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, scan_cb, cat);
  H5Gclose(g);
  if (rc < 0) {
    if (cat->ctx->err_code == SM_OK) return SM_H5ERR(cat->ctx, "%s: cannot list /meta", cat->path);
    return cat->ctx->err_code;
  }
  return SM_OK;
}

int sm_catalog_column_count(const sm_catalog *cat) { return cat->ncols; }
const char *sm_catalog_column_name(const sm_catalog *cat, int i) {
  return (i >= 0 && i < cat->ncols) ? cat->cols[i].name : NULL;
}

static const sm__column *find(const sm_catalog *cat, const char *name) {
  for (int i = 0; i < cat->ncols; i++)
    if (!strcmp(cat->cols[i].name, name)) return &cat->cols[i];
  return NULL;
}

int sm_catalog_has_column(const sm_catalog *cat, const char *name) { return find(cat, name) != NULL; }

sm_status sm_catalog_column_info(sm_catalog *cat, const char *name, sm_col_type *type, int *str_width) {
  const sm__column *c = find(cat, name);
  if (!c) {
    const char *names[256];
    int n = 0;
    for (int i = 0; i < cat->ncols && n < 256; i++) names[n++] = cat->cols[i].name;
    char near[256];
    sm_near_matches(name, names, n, near, sizeof near);
    return SM_ERR(cat->ctx, SM_ERR_ARG, "%s: no metadata column \"%s\"%s%s (`sisma info %s` lists the columns)",
                  cat->path, name, near[0] ? "; did you mean " : "", near, cat->path);
  }
  if (type) *type = c->type;
  if (str_width) *str_width = c->width;
  return SM_OK;
}

static hid_t file_type(sm_col_type type, int width) {
  if (type == SM_COL_F64) return H5Tcopy(H5T_IEEE_F64LE);
  if (type == SM_COL_I64) return H5Tcopy(H5T_STD_I64LE);
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, (size_t)width);
  H5Tset_strpad(t, H5T_STR_NULLPAD);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

sm_status sm_catalog_column_create(sm_catalog *cat, const char *name, sm_col_type type, int str_width) {
  sm_ctx *ctx = cat->ctx;
  SM_CHECK(ctx, cat->writable, SM_ERR_ARG, "%s is open read-only", cat->path);
  SM_CHECK(ctx, strlen(name) > 0 && strlen(name) < SM_COLUMN_NAME_MAX && !strchr(name, '/'), SM_ERR_ARG,
           "bad column name \"%s\"", name);
  SM_CHECK(ctx, !find(cat, name), SM_ERR_ARG, "%s: column %s exists already", cat->path, name);
  SM_CHECK(ctx, type != SM_COL_STR || str_width >= 1, SM_ERR_ARG, "column %s: string width must be >= 1", name);
  hsize_t n = (hsize_t)cat->info.n_traces, maxd = H5S_UNLIMITED, chunk = COLUMN_CHUNK;
  hid_t fs = H5Screate_simple(1, &n, &maxd), dcpl = H5Pcreate(H5P_DATASET_CREATE), ft = file_type(type, str_width);
  H5Pset_chunk(dcpl, 1, &chunk);
  if (type == SM_COL_F64) {
    double nan = NAN;
    H5Pset_fill_value(dcpl, H5T_NATIVE_DOUBLE, &nan);
  } else if (type == SM_COL_I64) {
    int64_t missing = INT64_MIN;
    H5Pset_fill_value(dcpl, H5T_NATIVE_INT64, &missing);
  }
  char path[SM_COLUMN_NAME_MAX + 8];
  snprintf(path, sizeof path, "meta/%s", name);
  hid_t d = H5Dcreate2(cat->file, path, ft, fs, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  H5Tclose(ft);
  H5Pclose(dcpl);
  H5Sclose(fs);
  SM_CHECK(ctx, d >= 0, SM_ERR_HDF5, "%s: cannot create /meta/%s", cat->path, name);
  H5Dclose(d);
  return add_column(cat, name, type, str_width);
}

static sm_status column_io(sm_catalog *cat, const char *name, sm_col_type want, int write, int64_t first,
                           int64_t count, void *v) {
  sm_ctx *ctx = cat->ctx;
  const sm__column *c = find(cat, name);
  sm_status st = SM_OK;
  if (!c) st = sm_catalog_column_info(cat, name, NULL, NULL);
  else if (c->type != want)
    st = SM_ERR(ctx, SM_ERR_ARG, "%s: column %s is %s, not %s", cat->path, name,
                c->type == SM_COL_F64 ? "float64" : c->type == SM_COL_I64 ? "int64" : "string",
                want == SM_COL_F64 ? "float64" : want == SM_COL_I64 ? "int64" : "string");
  else if (write && !cat->writable) st = SM_ERR(ctx, SM_ERR_ARG, "%s is open read-only", cat->path);
  SM_TRY(ctx, sm_ctx_agree(ctx, st));
  char path[SM_COLUMN_NAME_MAX + 8];
  snprintf(path, sizeof path, "meta/%s", name);
  hid_t d = H5Dopen2(cat->file, path, H5P_DEFAULT);
  SM_CHECK(ctx, d >= 0, SM_ERR_HDF5, "%s: cannot open /meta/%s", cat->path, name);
  hid_t mt = want == SM_COL_F64 ? H5Tcopy(H5T_NATIVE_DOUBLE)
             : want == SM_COL_I64 ? H5Tcopy(H5T_NATIVE_INT64)
                                  : file_type(SM_COL_STR, c->width);
  size_t es = want == SM_COL_STR ? (size_t)c->width : 8;
  char what[PATH_MAX + 80];
  snprintf(what, sizeof what, "%s:/meta/%s", cat->path, name);
  st = sm__slab_io(ctx, d, mt, write ? cat->dxpl : cat->dxpl_read, write, first, count, 1, es, v, what);
  H5Tclose(mt);
  H5Dclose(d);
  return st;
}

sm_status sm_catalog_write_f64(sm_catalog *cat, const char *name, int64_t first, int64_t count, const double *v) {
  return column_io(cat, name, SM_COL_F64, 1, first, count, (void *)v);
}
sm_status sm_catalog_write_i64(sm_catalog *cat, const char *name, int64_t first, int64_t count, const int64_t *v) {
  return column_io(cat, name, SM_COL_I64, 1, first, count, (void *)v);
}
sm_status sm_catalog_write_str(sm_catalog *cat, const char *name, int64_t first, int64_t count, const char *v) {
  return column_io(cat, name, SM_COL_STR, 1, first, count, (void *)v);
}
sm_status sm_catalog_read_f64(sm_catalog *cat, const char *name, int64_t first, int64_t count, double *v) {
  return column_io(cat, name, SM_COL_F64, 0, first, count, v);
}
sm_status sm_catalog_read_i64(sm_catalog *cat, const char *name, int64_t first, int64_t count, int64_t *v) {
  return column_io(cat, name, SM_COL_I64, 0, first, count, v);
}
sm_status sm_catalog_read_str(sm_catalog *cat, const char *name, int64_t first, int64_t count, char *v) {
  return column_io(cat, name, SM_COL_STR, 0, first, count, v);
}

sm_status sm_catalog_read_as_f64(sm_catalog *cat, const char *name, int64_t first, int64_t count, double *v) {
  sm_col_type type = SM_COL_F64;
  sm_status st = sm_catalog_column_info(cat, name, &type, NULL);
  if (st == SM_OK && type == SM_COL_STR)
    st = SM_ERR(cat->ctx, SM_ERR_ARG, "%s: column %s holds strings, not numbers", cat->path, name);
  SM_TRY(cat->ctx, sm_ctx_agree(cat->ctx, st));
  if (type == SM_COL_F64) return sm_catalog_read_f64(cat, name, first, count, v);
  int64_t *iv = NULL;
  SM_TRY(cat->ctx, SM_ALLOC(cat->ctx, iv, count));
  st = sm_catalog_read_i64(cat, name, first, count, iv);
  for (int64_t i = 0; st == SM_OK && i < count; i++) v[i] = iv[i] == INT64_MIN ? NAN : (double)iv[i];
  free(iv);
  return st;
}

sm_status sm_catalog_put_strings(sm_catalog *cat, const char *name, int64_t first, int64_t count,
                                 const char *const *strs) {
  sm_ctx *ctx = cat->ctx;
  int width = 1, gw = 1;
  for (int64_t i = 0; i < count; i++) {
    size_t l = strs[i] ? strlen(strs[i]) : 0;
    if ((int)l > width) width = (int)l;
  }
  SM_MPI(ctx, MPI_Allreduce(&width, &gw, 1, MPI_INT, MPI_MAX, ctx->comm));
  if (!find(cat, name)) SM_TRY(ctx, sm_catalog_column_create(cat, name, SM_COL_STR, gw));
  int cw = 0;
  SM_TRY(ctx, sm_catalog_column_info(cat, name, NULL, &cw));
  char *buf = NULL;
  sm_status st = SM_ALLOC(ctx, buf, count * cw);
  for (int64_t i = 0; st == SM_OK && i < count; i++) {
    size_t l = strs[i] ? strlen(strs[i]) : 0;
    if ((int)l > cw) st = SM_ERR(ctx, SM_ERR_DATA, "column %s: value of %zu bytes exceeds width %d", name, l, cw);
    else if (l) memcpy(buf + i * cw, strs[i], l);
  }
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) st = sm_catalog_write_str(cat, name, first, count, buf);
  free(buf);
  return st;
}

void sm_catalog_str_at(const char *buf, int width, int64_t i, char *out, size_t out_size) {
  size_t n = 0;
  const char *s = buf + i * width;
  while (n < (size_t)width && s[n]) n++;
  if (n >= out_size) n = out_size - 1;
  memcpy(out, s, n);
  out[n] = '\0';
}
