/* Catalog files: create (under a temporary name), open read-only, commit (rename), close,
 * root attributes and provenance. Trace and column transfers live in traces.c and columns.c. */
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define TARGET_CHUNK_BYTES (2 << 20)

const sm_catalog_info *sm_catalog_get_info(const sm_catalog *cat) { return &cat->info; }
const char *sm_catalog_path(const sm_catalog *cat) { return cat->path; }
int64_t sm_catalog_hid(const sm_catalog *cat) { return (int64_t)cat->file; }
sm_ctx *sm_catalog_ctx(const sm_catalog *cat) { return cat->ctx; }

static sm_status check_info(sm_ctx *ctx, const sm_catalog_info *in) {
  SM_CHECK(ctx, in->n_traces >= 0, SM_ERR_ARG, "n_traces = %lld must be >= 0", (long long)in->n_traces);
  SM_CHECK(ctx, in->n_components >= 1 && in->n_components <= 8, SM_ERR_ARG, "n_components = %d must be 1..8",
           in->n_components);
  SM_CHECK(ctx, in->n_samples >= 1, SM_ERR_ARG, "n_samples = %lld must be >= 1", (long long)in->n_samples);
  SM_CHECK(ctx, in->sampling_rate_hz > 0 && isfinite(in->sampling_rate_hz), SM_ERR_ARG,
           "sampling_rate_hz = %g must be > 0", in->sampling_rate_hz);
  SM_CHECK(ctx, (int)strlen(in->component_order) == in->n_components, SM_ERR_ARG,
           "component_order \"%s\" must have one letter per component (%d)", in->component_order, in->n_components);
  SM_CHECK(ctx, in->compression >= 0 && in->compression <= 9, SM_ERR_ARG, "compression = %d must be 0..9",
           in->compression);
  return SM_OK;
}

static sm_status alloc_cat(sm_ctx *ctx, const char *path, sm_catalog **out) {
  sm_catalog *cat = NULL;
  SM_TRY(ctx, SM_ALLOC(ctx, cat, 1));
  cat->ctx = ctx;
  cat->file = cat->waveforms = cat->dxpl = cat->dxpl_read = H5I_INVALID_HID;
  if (strlen(path) >= sizeof cat->path) {
    free(cat);
    return SM_ERR(ctx, SM_ERR_ARG, "path too long: %s", path);
  }
  snprintf(cat->path, sizeof cat->path, "%s", path);
  cat->dxpl = H5Pcreate(H5P_DATASET_XFER);
  H5Pset_dxpl_mpio(cat->dxpl, H5FD_MPIO_COLLECTIVE);
  /* Reads: shards are contiguous, so two-phase collective buffering only adds a shuffle between
   * ranks; individual I/O under the collective call reads each shard directly (+10-15 % on a
   * cached file, docs/performance.md) while every call stays collective for error agreement. */
  cat->dxpl_read = H5Pcopy(cat->dxpl);
  H5Pset_dxpl_mpio_collective_opt(cat->dxpl_read, H5FD_MPIO_INDIVIDUAL_IO);
  *out = cat;
  return SM_OK;
}

/* The temporary name: ".<base>.partial-<pid of rank 0>" beside the final file. */
static sm_status temp_name(sm_ctx *ctx, sm_catalog *cat) {
  long pid = (long)getpid();
  SM_MPI(ctx, MPI_Bcast(&pid, 1, MPI_LONG, 0, ctx->comm));
  char dir[PATH_MAX], base[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", cat->path);
  snprintf(base, sizeof base, "%s", cat->path);
  int n = snprintf(cat->tmp_path, sizeof cat->tmp_path, "%s/.%s.partial-%ld", dirname(dir), basename(base), pid);
  SM_CHECK(ctx, n < (int)sizeof cat->tmp_path, SM_ERR_ARG, "path too long: %s", cat->path);
  return SM_OK;
}

static sm_status create_waveforms(sm_ctx *ctx, sm_catalog *cat) {
  sm_catalog_info *in = &cat->info;
  int64_t trace_bytes = (int64_t)in->n_components * in->n_samples * 4;
  if (in->chunk_traces <= 0) {
    in->chunk_traces = TARGET_CHUNK_BYTES / trace_bytes;
    if (in->chunk_traces < 1) in->chunk_traces = 1;
  }
  /* One chunk must stay below HDF5's 4 GiB chunk limit. */
  SM_CHECK(ctx, in->chunk_traces * trace_bytes < ((int64_t)1 << 32), SM_ERR_ARG,
           "chunk of %lld traces x %lld bytes exceeds HDF5's 4 GiB chunk limit", (long long)in->chunk_traces,
           (long long)trace_bytes);
  hsize_t dims[3] = {(hsize_t)in->n_traces, (hsize_t)in->n_components, (hsize_t)in->n_samples};
  hsize_t maxd[3] = {H5S_UNLIMITED, dims[1], dims[2]};
  hsize_t chunk[3] = {(hsize_t)in->chunk_traces, dims[1], dims[2]};
  hid_t fs = H5Screate_simple(3, dims, maxd), dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(dcpl, 3, chunk);
  if (in->compression > 0) {
    H5Pset_shuffle(dcpl);
    H5Pset_deflate(dcpl, (unsigned)in->compression);
  } else {
    H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER); /* every trace is written: no zero pass first */
  }
  cat->waveforms = H5Dcreate2(cat->file, "waveforms", H5T_IEEE_F32LE, fs, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  H5Pclose(dcpl);
  H5Sclose(fs);
  SM_CHECK(ctx, cat->waveforms >= 0, SM_ERR_HDF5, "%s: cannot create /waveforms", cat->tmp_path);
  return SM_OK;
}

static sm_status write_layout_attrs(sm_catalog *cat) {
  sm_catalog_info *in = &cat->info;
  SM_TRY(cat->ctx, sm_catalog_set_attr(cat, "format", SM_CATALOG_FORMAT));
  SM_TRY(cat->ctx, sm_catalog_set_attr_f64(cat, "format_version", SM_CATALOG_VERSION));
  SM_TRY(cat->ctx, sm_catalog_set_attr(cat, "component_order", in->component_order));
  SM_TRY(cat->ctx, sm_catalog_set_attr(cat, "dimension_order", "NCW"));
  SM_TRY(cat->ctx, sm_catalog_set_attr_f64(cat, "sampling_rate_hz", in->sampling_rate_hz));
  SM_TRY(cat->ctx, sm_catalog_set_attr_f64(cat, "n_samples", (double)in->n_samples));
  return SM_OK;
}

sm_status sm_catalog_create(sm_ctx *ctx, const char *path, const sm_catalog_info *info, sm_catalog **out) {
  *out = NULL;
  sm_status valid = check_info(ctx, info);
  if (valid == SM_OK) valid = sm_fault_point(ctx, "catalog_create");
  SM_TRY(ctx, sm_ctx_agree(ctx, valid));
  sm_catalog *cat = NULL;
  SM_TRY(ctx, alloc_cat(ctx, path, &cat));
  cat->info = *info;
  cat->writable = 1;
  sm_status st = temp_name(ctx, cat);
  if (st == SM_OK && ctx->rank == 0) st = sm_make_parent_dirs(ctx, path);
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) {
    hid_t fapl = sm__fapl_mpio(ctx);
    cat->file = H5Fcreate(cat->tmp_path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (cat->file < 0) {
      char dir[PATH_MAX];
      snprintf(dir, sizeof dir, "%s", path);
      st = SM_H5ERR(ctx, "cannot create catalog %s (does the directory %s exist and is it writable?)", path,
                    dirname(dir));
    }
  }
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) st = sm_ctx_agree(ctx, create_waveforms(ctx, cat));
  if (st == SM_OK) {
    hid_t g = H5Gcreate2(cat->file, "meta", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) st = SM_H5ERR(ctx, "%s: cannot create /meta", path);
    else H5Gclose(g);
    st = sm_ctx_agree(ctx, st);
  }
  if (st == SM_OK) st = write_layout_attrs(cat);
  if (st != SM_OK) {
    sm_catalog_close(&cat);
    return st;
  }
  *out = cat;
  return SM_OK;
}

static sm_status read_layout(sm_catalog *cat) {
  sm_ctx *ctx = cat->ctx;
  char fmt[64] = "";
  SM_TRY(ctx, sm_catalog_get_attr(cat, "format", fmt, sizeof fmt));
  SM_CHECK(ctx, !strcmp(fmt, SM_CATALOG_FORMAT), SM_ERR_FORMAT,
           "%s is not a sisma catalog (root attribute format = \"%s\", expected \"%s\"; convert it with `sisma import`)",
           cat->path, fmt, SM_CATALOG_FORMAT);
  cat->waveforms = H5Dopen2(cat->file, "waveforms", H5P_DEFAULT);
  SM_CHECK(ctx, cat->waveforms >= 0, SM_ERR_FORMAT, "%s: dataset /waveforms is missing", cat->path);
  hid_t fs = H5Dget_space(cat->waveforms);
  hsize_t dims[3] = {0, 0, 0};
  int nd = H5Sget_simple_extent_ndims(fs);
  H5Sget_simple_extent_dims(fs, dims, NULL);
  H5Sclose(fs);
  SM_CHECK(ctx, nd == 3, SM_ERR_FORMAT, "%s: /waveforms has %d dimensions, expected 3 [traces][components][samples]",
           cat->path, nd);
  sm_catalog_info *in = &cat->info;
  in->n_traces = (int64_t)dims[0];
  in->n_components = (int)dims[1];
  in->n_samples = (int64_t)dims[2];
  hid_t dcpl = H5Dget_create_plist(cat->waveforms);
  hsize_t chunk[3] = {1, 0, 0};
  if (H5Pget_layout(dcpl) == H5D_CHUNKED) H5Pget_chunk(dcpl, 3, chunk);
  in->chunk_traces = (int64_t)chunk[0];
  for (int i = 0; i < H5Pget_nfilters(dcpl); i++) {
    unsigned flags, cd[8];
    size_t ncd = 8;
    if (H5Pget_filter2(dcpl, (unsigned)i, &flags, &ncd, cd, 0, NULL, NULL) == H5Z_FILTER_DEFLATE && ncd > 0)
      in->compression = (int)cd[0];
  }
  H5Pclose(dcpl);
  char buf[64] = "";
  SM_TRY(ctx, sm_catalog_get_attr(cat, "component_order", buf, sizeof buf));
  SM_CHECK(ctx, (int)strlen(buf) == in->n_components, SM_ERR_FORMAT,
           "%s: attribute component_order = \"%s\" does not match %d components", cat->path, buf, in->n_components);
  memcpy(in->component_order, buf, (size_t)in->n_components + 1);
  hid_t a = H5Aopen(cat->file, "sampling_rate_hz", H5P_DEFAULT);
  SM_CHECK(ctx, a >= 0, SM_ERR_FORMAT, "%s: root attribute sampling_rate_hz is missing", cat->path);
  herr_t rc = H5Aread(a, H5T_NATIVE_DOUBLE, &in->sampling_rate_hz);
  H5Aclose(a);
  SM_CHECK(ctx, rc >= 0 && in->sampling_rate_hz > 0, SM_ERR_FORMAT, "%s: bad sampling_rate_hz", cat->path);
  return SM_OK;
}

sm_status sm__columns_scan(sm_catalog *cat); /* columns.c */

sm_status sm_catalog_open(sm_ctx *ctx, const char *path, sm_catalog **out) {
  *out = NULL;
  sm_catalog *cat = NULL;
  SM_TRY(ctx, alloc_cat(ctx, path, &cat));
  sm_status st = SM_OK;
  if (access(path, R_OK) != 0) st = SM_ERR(ctx, SM_ERR_IO, "cannot read catalog %s: %s", path, strerror(errno));
  else if (H5Fis_hdf5(path) <= 0)
    st = SM_ERR(ctx, SM_ERR_FORMAT, "%s is not an HDF5 file", path);
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) {
    hid_t fapl = sm__fapl_mpio(ctx);
    cat->file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (cat->file < 0) st = SM_H5ERR(ctx, "cannot open catalog %s", path);
    st = sm_ctx_agree(ctx, st);
  }
  if (st == SM_OK) st = sm_ctx_agree(ctx, read_layout(cat));
  if (st == SM_OK) st = sm_ctx_agree(ctx, sm__columns_scan(cat));
  if (st != SM_OK) {
    sm_catalog_close(&cat);
    return st;
  }
  *out = cat;
  return SM_OK;
}

static void close_handles(sm_catalog *cat) {
  free(cat->cols);
  cat->cols = NULL;
  if (cat->waveforms >= 0) H5Dclose(cat->waveforms);
  if (cat->dxpl >= 0) H5Pclose(cat->dxpl);
  if (cat->dxpl_read >= 0) H5Pclose(cat->dxpl_read);
  cat->waveforms = cat->dxpl = cat->dxpl_read = H5I_INVALID_HID;
}

sm_status sm_catalog_commit(sm_catalog **catp) {
  sm_catalog *cat = *catp;
  sm_ctx *ctx = cat->ctx;
  SM_CHECK(ctx, cat->writable && !cat->committed, SM_ERR_INTERNAL, "commit of a catalog not opened for creation");
  close_handles(cat);
  sm_status st = SM_OK;
  if (H5Fclose(cat->file) < 0) st = SM_H5ERR(ctx, "%s: closing the new catalog failed", cat->tmp_path);
  cat->file = H5I_INVALID_HID;
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK && ctx->rank == 0 && rename(cat->tmp_path, cat->path) != 0)
    st = SM_ERR(ctx, SM_ERR_IO, "cannot rename %s to %s: %s", cat->tmp_path, cat->path, strerror(errno));
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) cat->committed = 1;
  sm_catalog_close(catp);
  return st;
}

void sm_catalog_close(sm_catalog **catp) {
  if (!catp || !*catp) return;
  sm_catalog *cat = *catp;
  close_handles(cat);
  if (cat->file >= 0) H5Fclose(cat->file);
  if (cat->writable && !cat->committed && cat->tmp_path[0]) {
    MPI_Barrier(cat->ctx->comm);
    if (cat->ctx->rank == 0) unlink(cat->tmp_path); /* never leave a half-written catalog behind */
  }
  free(cat);
  *catp = NULL;
}

/* ---- attributes ---- */

sm_status sm_catalog_set_attr(sm_catalog *cat, const char *name, const char *value) {
  sm_ctx *ctx = cat->ctx;
  size_t len = strlen(value);
  SM_CHECK(ctx, len < 60000, SM_ERR_ARG, "attribute %s: %zu bytes is over the 60000-byte limit", name, len);
  if (H5Aexists(cat->file, name) > 0) H5Adelete(cat->file, name);
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, len > 0 ? len : 1);
  H5Tset_strpad(t, H5T_STR_NULLTERM);
  H5Tset_cset(t, H5T_CSET_UTF8);
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(cat->file, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
  herr_t rc = a >= 0 ? H5Awrite(a, t, len > 0 ? value : "") : -1;
  if (a >= 0) H5Aclose(a);
  H5Sclose(sp);
  H5Tclose(t);
  SM_H5(ctx, rc, "%s: cannot write attribute %s", cat->path, name);
  return SM_OK;
}

sm_status sm_catalog_set_attr_f64(sm_catalog *cat, const char *name, double value) {
  if (H5Aexists(cat->file, name) > 0) H5Adelete(cat->file, name);
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(cat->file, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
  herr_t rc = a >= 0 ? H5Awrite(a, H5T_NATIVE_DOUBLE, &value) : -1;
  if (a >= 0) H5Aclose(a);
  H5Sclose(sp);
  SM_H5(cat->ctx, rc, "%s: cannot write attribute %s", cat->path, name);
  return SM_OK;
}

sm_status sm_catalog_get_attr(sm_catalog *cat, const char *name, char *out, size_t out_size) {
  out[0] = '\0';
  if (H5Aexists(cat->file, name) <= 0) return SM_OK;
  hid_t a = H5Aopen(cat->file, name, H5P_DEFAULT);
  hid_t ft = H5Aget_type(a);
  sm_status st = SM_OK;
  if (H5Tget_class(ft) != H5T_STRING) {
    st = SM_ERR(cat->ctx, SM_ERR_FORMAT, "%s: attribute %s is not a string", cat->path, name);
  } else if (H5Tis_variable_str(ft) > 0) {
    char *v = NULL;
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, H5T_VARIABLE);
    if (H5Aread(a, mt, &v) >= 0 && v) {
      snprintf(out, out_size, "%s", v);
      H5free_memory(v);
    }
    H5Tclose(mt);
  } else {
    size_t n = H5Tget_size(ft);
    char *v = calloc(n + 1, 1);
    hid_t mt = H5Tcopy(ft);
    if (v && H5Aread(a, mt, v) >= 0) snprintf(out, out_size, "%s", v);
    H5Tclose(mt);
    free(v);
  }
  H5Tclose(ft);
  H5Aclose(a);
  return st;
}

sm_status sm_catalog_set_provenance(sm_catalog *cat, const char *created_by, const char *job_config) {
  char when[64];
  time_t now = time(NULL);
  MPI_Bcast(&now, (int)sizeof now, MPI_BYTE, 0, cat->ctx->comm); /* attributes must agree */
  strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
  SM_TRY(cat->ctx, sm_catalog_set_attr(cat, "software", "sisma " SISMA_VERSION));
  SM_TRY(cat->ctx, sm_catalog_set_attr(cat, "created_utc", when));
  SM_TRY(cat->ctx, sm_catalog_set_attr(cat, "created_by", created_by ? created_by : ""));
  SM_TRY(cat->ctx, sm_catalog_set_attr_f64(cat, "n_ranks", cat->ctx->size));
  SM_TRY(cat->ctx, sm_catalog_set_attr(cat, "job_config", job_config ? job_config : ""));
  return SM_OK;
}
