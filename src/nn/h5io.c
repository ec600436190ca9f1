/* Small serial HDF5 files written and read by rank 0: trained models and training checkpoints
 * (docs/nn.md lists their contents). A file is written under "<path>.tmp-<pid>" and renamed when
 * complete, so a job killed while writing keeps the previous file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../catalog/internal.h"
#include "internal.h"

sm_status sm__nn_h5_create(sm_ctx *ctx, const char *path, sm__nn_h5 *h) {
  snprintf(h->path, sizeof h->path, "%s", path);
  snprintf(h->tmp, sizeof h->tmp, "%s.tmp-%d", path, (int)getpid());
  SM_TRY(ctx, sm_make_parent_dirs(ctx, path));
  h->f = H5Fcreate(h->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (h->f < 0) return SM_H5ERR(ctx, "cannot create %s", h->tmp);
  return SM_OK;
}

sm_status sm__nn_h5_open(sm_ctx *ctx, const char *path, sm__nn_h5 *h) {
  snprintf(h->path, sizeof h->path, "%s", path);
  h->tmp[0] = '\0';
  h->f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  if (h->f < 0) return SM_H5ERR(ctx, "cannot open %s", path);
  return SM_OK;
}

sm_status sm__nn_h5_close(sm_ctx *ctx, sm__nn_h5 *h, int commit) {
  if (h->f < 0) return SM_OK;
  herr_t e = H5Fclose(h->f);
  h->f = -1;
  if (!h->tmp[0]) return SM_OK;
  if (!commit || e < 0) {
    remove(h->tmp);
    return e < 0 ? SM_H5ERR(ctx, "cannot close %s", h->tmp) : SM_OK;
  }
  SM_CHECK(ctx, rename(h->tmp, h->path) == 0, SM_ERR_IO, "cannot rename %s to %s", h->tmp, h->path);
  return SM_OK;
}

static hid_t mem_type(char t) { return t == 'f' ? H5T_NATIVE_FLOAT : t == 'd' ? H5T_NATIVE_DOUBLE : H5T_NATIVE_INT64; }

/* type: 'f' float32, 'd' float64, 'l' int64; rows x cols (cols 0 = 1-D). */
sm_status sm__nn_h5_write(sm_ctx *ctx, sm__nn_h5 *h, const char *name, char type, int64_t rows, int64_t cols,
                          const void *data) {
  hsize_t dims[2] = {(hsize_t)rows, (hsize_t)cols};
  hid_t sp = H5Screate_simple(cols ? 2 : 1, dims, NULL);
  hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  hid_t ds = H5Dcreate2(h->f, name, mem_type(type), sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  herr_t e = ds < 0                          ? -1
             : rows * (cols ? cols : 1) != 0 ? H5Dwrite(ds, mem_type(type), H5S_ALL, H5S_ALL, H5P_DEFAULT, data)
                                             : 0;
  if (ds >= 0) H5Dclose(ds);
  H5Pclose(lcpl), H5Sclose(sp);
  if (ds < 0 || e < 0) return SM_H5ERR(ctx, "%s: cannot write dataset %s", h->tmp, name);
  return SM_OK;
}

/* Read a dataset of exactly n elements. */
sm_status sm__nn_h5_read(sm_ctx *ctx, sm__nn_h5 *h, const char *name, char type, int64_t n, void *data) {
  hid_t ds = H5Dopen2(h->f, name, H5P_DEFAULT);
  if (ds < 0) return SM_H5ERR(ctx, "%s: no dataset %s", h->path, name);
  hid_t sp = H5Dget_space(ds);
  hssize_t have = H5Sget_simple_extent_npoints(sp);
  H5Sclose(sp);
  herr_t e = have == n ? (n ? H5Dread(ds, mem_type(type), H5S_ALL, H5S_ALL, H5P_DEFAULT, data) : 0) : -2;
  H5Dclose(ds);
  SM_CHECK(ctx, e != -2, SM_ERR_FORMAT, "%s: dataset %s has %lld values, expected %lld", h->path, name, (long long)have,
           (long long)n);
  if (e < 0) return SM_H5ERR(ctx, "%s: cannot read %s", h->path, name);
  return SM_OK;
}

int64_t sm__nn_h5_count(sm__nn_h5 *h, const char *name) {
  if (H5Lexists(h->f, name, H5P_DEFAULT) <= 0) return -1;
  hid_t ds = H5Dopen2(h->f, name, H5P_DEFAULT);
  hid_t sp = H5Dget_space(ds);
  int64_t n = (int64_t)H5Sget_simple_extent_npoints(sp);
  H5Sclose(sp), H5Dclose(ds);
  return n;
}

int sm__nn_h5_has_attr(sm__nn_h5 *h, const char *name) { return H5Aexists(h->f, name) > 0; }

sm_status sm__nn_h5_attr_str(sm_ctx *ctx, sm__nn_h5 *h, const char *name, const char *value) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, strlen(value) + 1);
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(h->f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
  herr_t e = a < 0 ? -1 : H5Awrite(a, t, value);
  if (a >= 0) H5Aclose(a);
  H5Sclose(sp), H5Tclose(t);
  if (e < 0) return SM_H5ERR(ctx, "%s: cannot write attribute %s", h->tmp, name);
  return SM_OK;
}

sm_status sm__nn_h5_attr_f64(sm_ctx *ctx, sm__nn_h5 *h, const char *name, double value) {
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(h->f, name, H5T_NATIVE_DOUBLE, sp, H5P_DEFAULT, H5P_DEFAULT);
  herr_t e = a < 0 ? -1 : H5Awrite(a, H5T_NATIVE_DOUBLE, &value);
  if (a >= 0) H5Aclose(a);
  H5Sclose(sp);
  if (e < 0) return SM_H5ERR(ctx, "%s: cannot write attribute %s", h->tmp, name);
  return SM_OK;
}

sm_status sm__nn_h5_get_str(sm_ctx *ctx, sm__nn_h5 *h, const char *name, char *out, size_t n) {
  hid_t a = H5Aopen(h->f, name, H5P_DEFAULT);
  if (a < 0) return SM_H5ERR(ctx, "%s: no attribute %s", h->path, name);
  hid_t t = H5Aget_type(a);
  size_t sz = H5Tget_size(t);
  char *buf = NULL;
  sm_status st = SM_ALLOC(ctx, buf, sz + 1);
  if (st == SM_OK && H5Aread(a, t, buf) < 0) st = SM_H5ERR(ctx, "%s: cannot read attribute %s", h->path, name);
  if (st == SM_OK) buf[sz] = '\0', snprintf(out, n, "%s", buf);
  free(buf);
  H5Tclose(t), H5Aclose(a);
  return st;
}

sm_status sm__nn_h5_get_f64(sm_ctx *ctx, sm__nn_h5 *h, const char *name, double *v) {
  hid_t a = H5Aopen(h->f, name, H5P_DEFAULT);
  if (a < 0) return SM_H5ERR(ctx, "%s: no attribute %s", h->path, name);
  herr_t e = H5Aread(a, H5T_NATIVE_DOUBLE, v);
  H5Aclose(a);
  if (e < 0) return SM_H5ERR(ctx, "%s: cannot read attribute %s", h->path, name);
  return SM_OK;
}
