/* Tables from HDF5: a sisma catalog's /meta columns (through the catalog API), a group of 1-D
 * datasets, or one 2-D numeric dataset. Each rank reads its own row block with a hyperslab
 * (sm__slab_io: collective calls, bounded transfers); every rank issues the same metadata
 * operations in the same order, and statuses are agreed after every step that can fail. */
#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "../catalog/internal.h"
#include "internal.h"
#include "sisma/catalog.h"

/* ---- catalogs ---- */

static sm_status catalog_column(sm_table *t, sm_catalog *cat, const char *name) {
  sm_col_type type;
  int width = 0;
  SM_TRY(t->ctx, sm_catalog_column_info(cat, name, &type, &width));
  sm__tcol *c = NULL;
  sm_status st = sm_ctx_agree(t->ctx, sm__table_add(t, name, type == SM_COL_STR, &c));
  if (st != SM_OK) return st;
  if (type != SM_COL_STR) return sm_catalog_read_as_f64(cat, name, t->mine.first, t->mine.count, c->num);
  char *buf = malloc((size_t)t->mine.count * (size_t)width + 1);
  st = sm_ctx_agree(t->ctx, buf ? SM_OK : SM_ERR(t->ctx, SM_ERR_NOMEM, "out of memory reading %s", name));
  if (st == SM_OK) st = sm_catalog_read_str(cat, name, t->mine.first, t->mine.count, buf);
  if (st == SM_OK) st = sm_ctx_agree(t->ctx, sm__table_fixed_strings(t, c, buf, (size_t)width));
  free(buf);
  return st;
}

sm_status sm__table_open_catalog(sm_table *t, const char *path) {
  sm_catalog *cat = NULL;
  SM_TRY(t->ctx, sm_catalog_open(t->ctx, path, &cat));
  t->nrows = sm_catalog_get_info(cat)->n_traces;
  t->mine = sm_table_block(t->nrows, t->ctx->rank, t->ctx->size);
  sm_status st = SM_OK;
  for (int i = 0; i < sm_catalog_column_count(cat) && st == SM_OK; i++)
    st = catalog_column(t, cat, sm_catalog_column_name(cat, i));
  sm_catalog_close(&cat);
  return st;
}

/* ---- HDF5 groups and 2-D datasets ---- */

typedef struct {
  hid_t file, dxpl;
  const char *path, *object;
} h5src;

/* Read rows [mine] of a 1-D dataset into column c (numbers as float64; signed 64-bit integer
 * INT64_MIN as missing, the catalog's convention; strings fixed-width, or variable-length read
 * independently since collective I/O cannot carry them). */
static sm_status read_1d(sm_table *t, h5src *s, hid_t d, const char *name, int is_str, int is_int, int vlen,
                         size_t width) {
  sm_ctx *ctx = t->ctx;
  sm__tcol *c = NULL;
  char what[600];
  snprintf(what, sizeof what, "%s:%s/%s", s->path, s->object, name);
  SM_TRY(ctx, sm_ctx_agree(ctx, sm__table_add(t, name, is_str, &c)));
  int64_t first = t->mine.first, n = t->mine.count;
  if (!is_str && !is_int) return sm__slab_io(ctx, d, H5T_NATIVE_DOUBLE, s->dxpl, 0, first, n, 1, 8, c->num, what);
  if (!is_str) {
    int64_t *iv = malloc((size_t)n * sizeof *iv + 1);
    sm_status st = sm_ctx_agree(ctx, iv ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory reading %s", what));
    if (st == SM_OK) st = sm__slab_io(ctx, d, H5T_NATIVE_INT64, s->dxpl, 0, first, n, 1, 8, iv, what);
    for (int64_t i = 0; st == SM_OK && i < n; i++)
      c->num[i] = iv[i] == INT64_MIN ? NAN : (double)iv[i];
    free(iv);
    return st;
  }
  hid_t mt = H5Tcopy(H5T_C_S1), ft = H5Dget_type(d);
  H5Tset_cset(mt, H5Tget_cset(ft)); /* h5py writes UTF-8; HDF5 converts no character sets */
  H5Tclose(ft);
  H5Tset_size(mt, vlen ? H5T_VARIABLE : width);
  H5Tset_strpad(mt, H5T_STR_NULLPAD);
  char *buf = malloc((size_t)n * (vlen ? sizeof(char *) : width) + 1);
  sm_status st = sm_ctx_agree(ctx, buf ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory reading %s", what));
  if (st == SM_OK && !vlen) st = sm__slab_io(ctx, d, mt, s->dxpl, 0, first, n, 1, width, buf, what);
  if (st == SM_OK && !vlen) st = sm_ctx_agree(ctx, sm__table_fixed_strings(t, c, buf, width));
  if (st == SM_OK && vlen) {
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(1, (hsize_t[]){(hsize_t)(n > 0 ? n : 1)}, NULL);
    herr_t rc = n > 0 ? H5Sselect_hyperslab(fs, H5S_SELECT_SET, (hsize_t[]){(hsize_t)first}, NULL,
                                            (hsize_t[]){(hsize_t)n}, NULL)
                      : (H5Sselect_none(fs), H5Sselect_none(ms));
    if (rc >= 0 && n > 0) rc = H5Dread(d, mt, ms, fs, H5P_DEFAULT, buf);
    if (rc < 0) st = SM_H5ERR(ctx, "%s: reading variable-length strings failed", what);
    char **v = (char **)buf;
    size_t bytes = 1;
    for (int64_t i = 0; st == SM_OK && i < n; i++)
      bytes += (v[i] ? strlen(v[i]) : 0) + 1;
    if (st == SM_OK && !(c->arena = malloc(bytes))) st = SM_ERR(ctx, SM_ERR_NOMEM, "out of memory reading %s", what);
    for (int64_t i = 0, at = 0; st == SM_OK && i < n; i++) {
      size_t l = v[i] ? strlen(v[i]) : 0;
      memcpy(c->arena + at, v[i] ? v[i] : "", l + 1);
      c->str[i] = c->arena + at;
      at += (int64_t)l + 1;
    }
    if (rc >= 0 && n > 0) H5Dvlen_reclaim(mt, ms, H5P_DEFAULT, buf);
    H5Sclose(ms);
    H5Sclose(fs);
    st = sm_ctx_agree(ctx, st);
  }
  free(buf);
  H5Tclose(mt);
  return st;
}

/* One member dataset of a group: check it is 1-D of the group's length, then read it. The first
 * sets the table's length and reserves one slab for as many numeric columns as the group has
 * members (sm__table_reserve; the slots left over for string members are never touched). */
static sm_status group_member(sm_table *t, h5src *s, hid_t g, const char *name, int members, int64_t *len) {
  sm_ctx *ctx = t->ctx;
  hid_t d = H5Dopen2(g, name, H5P_DEFAULT);
  SM_CHECK(ctx, d >= 0, SM_ERR_FORMAT, "%s:%s/%s is not a dataset (a table group holds only 1-D datasets)", s->path,
           s->object, name);
  hid_t sp = H5Dget_space(d), ty = H5Dget_type(d);
  hsize_t dims[2] = {0, 0};
  int nd = H5Sget_simple_extent_ndims(sp);
  H5Sget_simple_extent_dims(sp, dims, NULL);
  H5T_class_t cls = H5Tget_class(ty);
  int vlen = cls == H5T_STRING && H5Tis_variable_str(ty) > 0;
  size_t width = H5Tget_size(ty);
  H5Tclose(ty);
  H5Sclose(sp);
  sm_status st = SM_OK;
  if (nd != 1)
    st = SM_ERR(ctx, SM_ERR_FORMAT, "%s:%s/%s has %d dimensions; a table group holds 1-D columns", s->path, s->object,
                name, nd);
  else if (cls != H5T_STRING && cls != H5T_FLOAT && cls != H5T_INTEGER)
    st = SM_ERR(ctx, SM_ERR_FORMAT, "%s:%s/%s is neither numeric nor a string column", s->path, s->object, name);
  else if (*len >= 0 && (int64_t)dims[0] != *len)
    st = SM_ERR(ctx, SM_ERR_DATA, "%s:%s/%s has %llu rows, the columns before it %lld", s->path, s->object, name,
                (unsigned long long)dims[0], (long long)*len);
  if (st == SM_OK && *len < 0) {
    *len = (int64_t)dims[0];
    t->nrows = *len;
    t->mine = sm_table_block(t->nrows, ctx->rank, ctx->size);
    sm__table_reserve(t, members);
  }
  if (st == SM_OK) st = read_1d(t, s, d, name, cls == H5T_STRING, cls == H5T_INTEGER, vlen, width);
  H5Dclose(d);
  return st;
}

typedef struct {
  char **names;
  int n;
} name_list;

static herr_t list_cb(hid_t g, const char *name, const H5L_info_t *li, void *data) {
  name_list *l = data;
  char **nn = realloc(l->names, (size_t)(l->n + 1) * sizeof *nn);
  if (!nn) return -1;
  l->names = nn;
  if (!(nn[l->n] = strdup(name))) return -1;
  l->n++;
  return 0;
}

static sm_status open_group(sm_table *t, h5src *s, hid_t g) {
  name_list l = {NULL, 0};
  sm_status st = SM_OK;
  if (H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, NULL, list_cb, &l) < 0)
    st = SM_H5ERR(t->ctx, "%s:%s: cannot list the group", s->path, s->object);
  if (st == SM_OK && l.n == 0) st = SM_ERR(t->ctx, SM_ERR_FORMAT, "%s:%s: the group is empty", s->path, s->object);
  st = sm_ctx_agree(t->ctx, st);
  int64_t len = -1;
  for (int i = 0; i < l.n && st == SM_OK; i++)
    st = sm_ctx_agree(t->ctx, group_member(t, s, g, l.names[i], l.n, &len));
  for (int i = 0; i < l.n; i++)
    free(l.names[i]);
  free(l.names);
  return st;
}

/* Column names of a 2-D dataset: its "columns" attribute split at commas, or c1..cN. */
static sm_status dataset_names(sm_table *t, h5src *s, hid_t d, int ncols, char ***out) {
  char **names = calloc((size_t)ncols + 1, sizeof *names);
  SM_CHECK(t->ctx, names, SM_ERR_NOMEM, "out of memory");
  *out = names;
  char *text = NULL;
  if (H5Aexists(d, "columns") > 0) {
    hid_t a = H5Aopen(d, "columns", H5P_DEFAULT), ty = H5Aget_type(a);
    if (H5Tget_class(ty) == H5T_STRING) {
      hid_t mt = H5Tcopy(H5T_C_S1);
      H5Tset_cset(mt, H5Tget_cset(ty)); /* h5py writes UTF-8; HDF5 converts no character sets */
      if (H5Tis_variable_str(ty) > 0) {
        char *v = NULL;
        H5Tset_size(mt, H5T_VARIABLE);
        if (H5Aread(a, mt, &v) >= 0 && v) text = strdup(v), H5free_memory(v);
      } else {
        size_t w = H5Tget_size(ty);
        H5Tset_size(mt, w + 1);
        text = calloc(w + 2, 1);
        if (text && H5Aread(a, mt, text) < 0) text[0] = '\0';
      }
      H5Tclose(mt);
    }
    H5Tclose(ty);
    H5Aclose(a);
  }
  int k = 0;
  for (char *p = text, *save = NULL, *tok = text ? strtok_r(p, ",", &save) : NULL; tok && k < ncols;
       tok = strtok_r(NULL, ",", &save)) {
    while (*tok == ' ')
      tok++;
    names[k++] = strdup(tok);
  }
  free(text);
  sm_status st = SM_OK;
  if (k > 0 && k != ncols)
    st = SM_ERR(t->ctx, SM_ERR_FORMAT, "%s:%s: attribute \"columns\" names %d columns, the dataset has %d", s->path,
                s->object, k, ncols);
  for (int j = 0; j < ncols && st == SM_OK; j++) {
    if (!names[j]) {
      char b[32];
      snprintf(b, sizeof b, "c%d", j + 1);
      names[j] = strdup(b);
    }
    if (!names[j]) st = SM_ERR(t->ctx, SM_ERR_NOMEM, "out of memory");
  }
  return st;
}

/* Rows [m][ncols] of buf into cols[j][at + i] for rows [i0, i1) and columns [j0, j1), 64 rows at a
 * time, column by column (one write stream at a time, not ncols). */
static void transpose(const double *buf, int ncols, int64_t i0, int64_t i1, int j0, int j1, double *const *cols,
                      int64_t at) {
  for (int64_t b = i0; b < i1; b += 64)
    for (int j = j0; j < j1; j++)
      for (int64_t i = b; i < i1 && i < b + 64; i++)
        cols[j][at + i] = buf[i * ncols + j];
}

#if defined(__x86_64__) && defined(__GNUC__)
/* The same for whole 4 x 4 blocks (rows [0, m & ~3), columns [0, ncols & ~3)) in AVX2 registers:
 * 4 loads, 8 shuffles and 4 stores per 16 values instead of 16 scalar loads and stores, which
 * made the transpose twice the time of a write stream into the columns. Row by row over all the
 * columns (the 4-row stores are 32 bytes, and ncols / 4 such streams were faster than column by
 * column). The rest goes to transpose(). */
__attribute__((target("avx2"))) static void transpose_avx2(const double *buf, int64_t m, int ncols, double *const *cols,
                                                           int64_t at) {
  for (int64_t i = 0; i + 4 <= m; i += 4)
    for (int j = 0; j + 4 <= ncols; j += 4) {
      const double *b = buf + i * ncols + j;
      __m256d r0 = _mm256_loadu_pd(b), r1 = _mm256_loadu_pd(b + ncols);
      __m256d r2 = _mm256_loadu_pd(b + 2 * ncols), r3 = _mm256_loadu_pd(b + 3 * ncols);
      __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1); /* (r0j r1j r0j+2 r1j+2) */
      __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
      _mm256_storeu_pd(cols[j] + at + i, _mm256_permute2f128_pd(t0, t2, 0x20));
      _mm256_storeu_pd(cols[j + 1] + at + i, _mm256_permute2f128_pd(t1, t3, 0x20));
      _mm256_storeu_pd(cols[j + 2] + at + i, _mm256_permute2f128_pd(t0, t2, 0x31));
      _mm256_storeu_pd(cols[j + 3] + at + i, _mm256_permute2f128_pd(t1, t3, 0x31));
    }
}
#endif

/* Rows [m][ncols] of buf into the columns from row at on. */
static void rows_to_columns(const double *buf, int64_t m, int ncols, double *const *cols, int64_t at) {
  int64_t m4 = 0;
  int n4 = 0;
#if defined(__x86_64__) && defined(__GNUC__)
  if (sm__cpu_avx2_fma()) {
    m4 = m & ~(int64_t)3, n4 = ncols & ~3;
    transpose_avx2(buf, m, ncols, cols, at);
  }
#endif
  transpose(buf, ncols, 0, m4, n4, ncols, cols, at);
  transpose(buf, ncols, m4, m, 0, ncols, cols, at);
}

/* Rows of a 2-D dataset, up to TABLE_CHUNK_BYTES (1 MiB) at a time, by independent reads (as the
 * variable-length strings above: a collective call per chunk waits for the slowest rank each
 * time) through one small [rows][cols] buffer, transposed into the columns while it is in cache:
 * no [rows][cols] copy of the whole block (64 MB per rank for 1e6 x 16 at 2 ranks, and as much of
 * page faults). Collective only in the agreement at the end. */
#define TABLE_CHUNK_BYTES ((int64_t)1 << 20)
static sm_status read_2d_rows(sm_table *t, h5src *s, hid_t d, int ncols, double *const *cols) {
  sm_ctx *ctx = t->ctx;
  int64_t n = t->mine.count, rows = TABLE_CHUNK_BYTES / (8 * (int64_t)(ncols > 0 ? ncols : 1));
  if (rows < 1) rows = 1;
  if (rows > n) rows = n > 0 ? n : 1;
  double *buf = malloc((size_t)rows * (size_t)ncols * sizeof *buf + 8);
  hid_t fs = H5Dget_space(d);
  sm_status st = buf ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory reading %s", s->object);
  if (st == SM_OK && fs < 0) st = SM_H5ERR(ctx, "%s:%s: cannot get the dataspace", s->path, s->object);
  for (int64_t lo = 0; st == SM_OK && lo < n; lo += rows) {
    int64_t m = n - lo < rows ? n - lo : rows;
    hsize_t start[2] = {(hsize_t)(t->mine.first + lo), 0}, cnt[2] = {(hsize_t)m, (hsize_t)ncols};
    hid_t ms = H5Screate_simple(2, cnt, NULL);
    herr_t rc = H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL);
    if (rc >= 0) rc = H5Dread(d, H5T_NATIVE_DOUBLE, ms, fs, H5P_DEFAULT, buf);
    H5Sclose(ms);
    if (rc < 0)
      st = SM_H5ERR(ctx, "%s:%s: reading rows [%lld, %lld) failed", s->path, s->object, (long long)(t->mine.first + lo),
                    (long long)(t->mine.first + lo + m));
    if (st == SM_OK) rows_to_columns(buf, m, ncols, cols, lo);
  }
  if (fs >= 0) H5Sclose(fs);
  free(buf);
  return sm_ctx_agree(ctx, st);
}

static sm_status open_2d(sm_table *t, h5src *s, hid_t d, const hsize_t dims[2]) {
  sm_ctx *ctx = t->ctx;
  int ncols = (int)dims[1];
  t->nrows = (int64_t)dims[0];
  t->mine = sm_table_block(t->nrows, ctx->rank, ctx->size);
  char **names = NULL;
  sm_status st = sm_ctx_agree(ctx, dataset_names(t, s, d, ncols, &names));
  double **cols = st == SM_OK ? calloc((size_t)ncols + 1, sizeof *cols) : NULL;
  if (st == SM_OK) sm__table_reserve(t, ncols);
  if (st == SM_OK) st = sm_ctx_agree(ctx, cols ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory"));
  for (int j = 0; j < ncols && st == SM_OK; j++) {
    sm__tcol *c = NULL;
    st = sm_ctx_agree(ctx, sm__table_add(t, names[j], 0, &c));
    if (st == SM_OK) cols[j] = c->num;
  }
  if (st == SM_OK) st = read_2d_rows(t, s, d, ncols, cols);
  free(cols);
  for (int j = 0; names && j < ncols; j++)
    free(names[j]);
  free(names);
  return st;
}

static sm_status open_object(sm_table *t, h5src *s) {
  sm_ctx *ctx = t->ctx;
  H5O_info_t oi;
  sm_status st = SM_OK;
  if (H5Lexists(s->file, s->object, H5P_DEFAULT) <= 0 || H5Oget_info_by_name(s->file, s->object, &oi, H5P_DEFAULT) < 0)
    st = SM_ERR(ctx, SM_ERR_FORMAT, "%s: no object %s in the file", s->path, s->object);
  SM_TRY(ctx, sm_ctx_agree(ctx, st));
  if (oi.type == H5O_TYPE_GROUP) {
    hid_t g = H5Gopen2(s->file, s->object, H5P_DEFAULT);
    SM_TRY(ctx, sm_ctx_agree(ctx, g >= 0 ? SM_OK : SM_H5ERR(ctx, "%s: cannot open %s", s->path, s->object)));
    st = open_group(t, s, g);
    H5Gclose(g);
    return st;
  }
  hid_t d = oi.type == H5O_TYPE_DATASET ? H5Dopen2(s->file, s->object, H5P_DEFAULT) : -1;
  hsize_t dims[3] = {0, 0, 0};
  int nd = 0;
  H5T_class_t cls = H5T_NO_CLASS;
  if (d >= 0) {
    hid_t sp = H5Dget_space(d), ty = H5Dget_type(d);
    nd = H5Sget_simple_extent_ndims(sp);
    if (nd >= 1 && nd <= 3) H5Sget_simple_extent_dims(sp, dims, NULL);
    cls = H5Tget_class(ty);
    H5Sclose(sp);
    H5Tclose(ty);
  }
  if (d < 0)
    st = SM_ERR(ctx, SM_ERR_FORMAT, "%s:%s is neither a group nor a dataset", s->path, s->object);
  else if (nd != 2 || (cls != H5T_FLOAT && cls != H5T_INTEGER))
    st = SM_ERR(ctx, SM_ERR_FORMAT,
                "%s:%s: a table dataset must be 2-D numeric [rows][columns] (this one has %d dimension(s)); "
                "for 1-D columns name their group",
                s->path, s->object, nd);
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) st = open_2d(t, s, d, dims);
  if (d >= 0) H5Dclose(d);
  return st;
}

sm_status sm__table_open_h5(sm_table *t, const char *path, const char *object) {
  sm_ctx *ctx = t->ctx;
  sm_status st = SM_OK;
  if (access(path, R_OK) != 0)
    st = SM_ERR(ctx, SM_ERR_IO, "cannot read table file %s", path);
  else if (H5Fis_hdf5(path) <= 0)
    st = SM_ERR(ctx, SM_ERR_FORMAT, "%s is not an HDF5 file", path);
  SM_TRY(ctx, sm_ctx_agree(ctx, st));
  h5src s = {H5I_INVALID_HID, H5I_INVALID_HID, path, object};
  hid_t fapl = sm__fapl_mpio(ctx);
  s.file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
  H5Pclose(fapl);
  SM_TRY(ctx, sm_ctx_agree(ctx, s.file >= 0 ? SM_OK : SM_H5ERR(ctx, "cannot open %s", path)));
  s.dxpl = H5Pcreate(H5P_DATASET_XFER);
  H5Pset_dxpl_mpio(s.dxpl, H5FD_MPIO_COLLECTIVE);
  H5Pset_dxpl_mpio_collective_opt(s.dxpl, H5FD_MPIO_INDIVIDUAL_IO);
  st = open_object(t, &s);
  H5Pclose(s.dxpl);
  H5Fclose(s.file);
  return st;
}
