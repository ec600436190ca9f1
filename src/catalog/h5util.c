/* HDF5 plumbing shared by the catalog code: error-stack translation, the MPI-IO file access
 * list, and the bounded collective slab transfer every trace and column read goes through. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

typedef struct {
  char msg[256];
} h5_walk;

static herr_t walk_cb(unsigned n, const H5E_error2_t *e, void *data) {
  h5_walk *w = data;
  if (n == 0 && e->desc) snprintf(w->msg, sizeof w->msg, "%s (in %s)", e->desc, e->func_name ? e->func_name : "?");
  return 0;
}

sm_status sm__h5_error(sm_ctx *ctx, const char *file, int line, const char *fmt, ...) {
  char what[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  h5_walk w = {{0}};
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, walk_cb, &w);
  H5Eclear2(H5E_DEFAULT);
  return sm__error(ctx, SM_ERR_HDF5, file, line, "%s%s%s", what, w.msg[0] ? ": HDF5 says: " : "", w.msg);
}

hid_t sm__fapl_mpio(sm_ctx *ctx) {
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  if (fapl < 0) return fapl;
  MPI_Info info;
  MPI_Info_create(&info);
  /* Collective buffering on reads and writes: few large requests instead of many small ones. */
  MPI_Info_set(info, "romio_cb_read", "automatic");
  MPI_Info_set(info, "romio_cb_write", "automatic");
  H5Pset_fapl_mpio(fapl, ctx->comm, info);
  MPI_Info_free(&info);
  H5Pset_all_coll_metadata_ops(fapl, 1); /* ranks issue metadata reads collectively: no hangs */
  H5Pset_coll_metadata_write(fapl, 1);
  return fapl;
}

sm_status sm__slab_io(sm_ctx *ctx, hid_t dset, hid_t memtype, hid_t dxpl, int write, int64_t first, int64_t count,
                      int64_t row_elems, size_t elem_size, void *buf, const char *what) {
  int64_t row_bytes = row_elems * (int64_t)elem_size;
  int64_t rows_per = row_bytes > 0 ? SM_CATALOG_MAX_TRANSFER / row_bytes : count;
  if (rows_per < 1) rows_per = 1;
  int64_t pieces = count > 0 ? (count + rows_per - 1) / rows_per : 0, max_pieces = 0;
  SM_MPI(ctx, MPI_Allreduce(&pieces, &max_pieces, 1, MPI_INT64_T, MPI_MAX, ctx->comm));
  hid_t fs = H5Dget_space(dset);
  if (fs < 0) return SM_H5ERR(ctx, "%s: cannot get dataspace", what);
  int rank = H5Sget_simple_extent_ndims(fs);
  hsize_t dims[3] = {0, 0, 0};
  H5Sget_simple_extent_dims(fs, dims, NULL);
  sm_status st = SM_OK;
  if (first < 0 || first + count > (int64_t)dims[0])
    st = SM_ERR(ctx, SM_ERR_ARG, "%s: rows [%lld, %lld) outside [0, %llu)", what, (long long)first,
                (long long)(first + count), (unsigned long long)dims[0]);
  if (st == SM_OK && write) st = sm_fault_point(ctx, "catalog_write");
  st = sm_ctx_agree(ctx, st);
  for (int64_t p = 0; st == SM_OK && p < max_pieces; p++) {
    int64_t lo = p * rows_per, n = 0;
    if (lo < count) n = (count - lo < rows_per) ? count - lo : rows_per;
    hsize_t start[3] = {(hsize_t)(first + lo), 0, 0}, cnt[3] = {(hsize_t)n, dims[1], dims[2]};
    /* The memory space has the shape of the file selection: with a flat 1-D memory space
     * HDF5 1.10 maps chunked selections element by element (2.5x slower writes, measured). */
    hsize_t mdims[3] = {(hsize_t)(n > 0 ? n : 1), dims[1], dims[2]};
    hid_t ms = H5Screate_simple(rank, mdims, NULL);
    herr_t rc;
    if (n > 0) {
      rc = H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL);
    } else {
      rc = H5Sselect_none(fs);
      H5Sselect_none(ms);
    }
    char *ptr = n > 0 ? (char *)buf + (size_t)lo * (size_t)row_bytes : buf; /* buf may be NULL when n == 0 */
    if (rc >= 0) rc = write ? H5Dwrite(dset, memtype, ms, fs, dxpl, ptr) : H5Dread(dset, memtype, ms, fs, dxpl, ptr);
    H5Sclose(ms);
    if (rc < 0)
      st = SM_H5ERR(ctx, "%s: %s of rows [%lld, %lld) failed", what, write ? "write" : "read", (long long)(first + lo),
                    (long long)(first + lo + n));
    st = sm_ctx_agree(ctx, st);
  }
  H5Sclose(fs);
  return st;
}
