/* Column tables in parallel HDF5 (include/sisma/table_writer.h): the file access, transfer
 * splitting and HDF5 error translation of the catalog (internal.h), applied to a group of 1-D
 * datasets. Datasets are contiguous (parallel HDF5 allocates them early), one per column. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "sisma/table_writer.h"

struct sm_table_writer {
  sm_ctx *ctx;
  hid_t file, group, dxpl;
  int64_t n_rows;
  char path[PATH_MAX], tmp_path[PATH_MAX + 64];
  int committed;
};

sm_status sm_table_writer_create(sm_ctx *ctx, const char *path, const char *group, int64_t n_rows,
                                 sm_table_writer **out) {
  *out = NULL;
  SM_CHECK(ctx, strlen(path) < PATH_MAX && n_rows >= 0, SM_ERR_ARG, "table: bad path or %lld rows", (long long)n_rows);
  sm_table_writer *tw = NULL;
  sm_status st0 = sm_make_parent_dirs(ctx, path);
  if (st0 == SM_OK) st0 = SM_ALLOC(ctx, tw, 1);
  st0 = sm_ctx_agree(ctx, st0);
  if (st0 != SM_OK) return free(tw), st0;
  tw->ctx = ctx, tw->n_rows = n_rows, tw->file = tw->group = tw->dxpl = H5I_INVALID_HID;
  snprintf(tw->path, sizeof tw->path, "%s", path);
  long pid = (long)getpid();
  SM_MPI(ctx, MPI_Bcast(&pid, 1, MPI_LONG, 0, ctx->comm));
  char dir[PATH_MAX], base[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", path), snprintf(base, sizeof base, "%s", path);
  snprintf(tw->tmp_path, sizeof tw->tmp_path, "%s/.%s.partial-%ld", dirname(dir), basename(base), pid);
  *out = tw;
  hid_t fapl = sm__fapl_mpio(ctx);
  tw->file = H5Fcreate(tw->tmp_path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  H5Pclose(fapl);
  sm_status st = tw->file < 0 ? SM_H5ERR(ctx, "%s: cannot create the table file", tw->tmp_path) : SM_OK;
  if (st == SM_OK) {
    tw->group = H5Gcreate2(tw->file, group, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (tw->group < 0) st = SM_H5ERR(ctx, "%s: cannot create group %s", tw->tmp_path, group);
  }
  tw->dxpl = H5Pcreate(H5P_DATASET_XFER);
  H5Pset_dxpl_mpio(tw->dxpl, H5FD_MPIO_COLLECTIVE);
  st = sm_ctx_agree(ctx, st);
  if (st != SM_OK) sm_table_writer_close(out);
  return st;
}

static sm_status write_col(sm_table_writer *tw, const char *name, hid_t ftype, int64_t first, int64_t count, size_t es,
                           const void *v) {
  sm_ctx *ctx = tw->ctx;
  SM_CHECK(ctx, H5Lexists(tw->group, name, H5P_DEFAULT) == 0, SM_ERR_ARG, "table: column %s written twice", name);
  hsize_t dims[1] = {(hsize_t)tw->n_rows};
  hid_t fs = H5Screate_simple(1, dims, NULL);
  hid_t d = H5Dcreate2(tw->group, name, ftype, fs, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Sclose(fs);
  if (d < 0) return SM_H5ERR(ctx, "%s: cannot create column %s", tw->tmp_path, name);
  sm_status st = sm__slab_io(ctx, d, ftype, tw->dxpl, 1, first, count, 1, es, (void *)v, name);
  H5Dclose(d);
  return st;
}

sm_status sm_table_writer_f64(sm_table_writer *tw, const char *name, int64_t first, int64_t count, const double *v) {
  return write_col(tw, name, H5T_NATIVE_DOUBLE, first, count, 8, v);
}

sm_status sm_table_writer_i64(sm_table_writer *tw, const char *name, int64_t first, int64_t count, const int64_t *v) {
  return write_col(tw, name, H5T_NATIVE_INT64, first, count, 8, v);
}

sm_status sm_table_writer_str(sm_table_writer *tw, const char *name, int width, int64_t first, int64_t count,
                              const char *v) {
  SM_CHECK(tw->ctx, width >= 1, SM_ERR_ARG, "table: string column %s of width %d", name, width);
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, (size_t)width);
  H5Tset_strpad(t, H5T_STR_NULLPAD);
  H5Tset_cset(t, H5T_CSET_UTF8);
  sm_status st = write_col(tw, name, t, first, count, (size_t)width, v);
  H5Tclose(t);
  return st;
}

sm_status sm_table_writer_attr(sm_table_writer *tw, const char *name, const char *value) {
  hid_t t = H5Tcopy(H5T_C_S1), s = H5Screate(H5S_SCALAR);
  H5Tset_size(t, strlen(value) + 1);
  H5Tset_cset(t, H5T_CSET_UTF8);
  hid_t a = H5Acreate2(tw->group, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
  herr_t rc = a < 0 ? -1 : H5Awrite(a, t, value);
  if (a >= 0) H5Aclose(a);
  H5Tclose(t), H5Sclose(s);
  return rc < 0 ? SM_H5ERR(tw->ctx, "%s: cannot write attribute %s", tw->tmp_path, name) : SM_OK;
}

sm_status sm_table_writer_commit(sm_table_writer **twp) {
  sm_table_writer *tw = *twp;
  sm_ctx *ctx = tw->ctx;
  sm_status st = SM_OK;
  if (tw->group >= 0) H5Gclose(tw->group);
  if (tw->dxpl >= 0) H5Pclose(tw->dxpl);
  tw->group = tw->dxpl = H5I_INVALID_HID;
  if (H5Fclose(tw->file) < 0) st = SM_H5ERR(ctx, "%s: closing the table failed", tw->tmp_path);
  tw->file = H5I_INVALID_HID;
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK && ctx->rank == 0 && rename(tw->tmp_path, tw->path) != 0)
    st = SM_ERR(ctx, SM_ERR_IO, "cannot rename %s to %s: %s", tw->tmp_path, tw->path, strerror(errno));
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) tw->committed = 1;
  sm_table_writer_close(twp);
  return st;
}

void sm_table_writer_close(sm_table_writer **twp) {
  if (!twp || !*twp) return;
  sm_table_writer *tw = *twp;
  if (tw->group >= 0) H5Gclose(tw->group);
  if (tw->dxpl >= 0) H5Pclose(tw->dxpl);
  if (tw->file >= 0) H5Fclose(tw->file);
  if (!tw->committed) {
    MPI_Barrier(tw->ctx->comm);
    if (tw->ctx->rank == 0) unlink(tw->tmp_path);
  }
  free(tw);
  *twp = NULL;
}
