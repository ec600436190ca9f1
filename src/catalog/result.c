/* Result files of the stages (pca, kmeans, lm, glm): one HDF5 file written collectively, in the
 * catalog's style (docs/unsupervised.md and docs/statistics.md list the datasets). Small arrays are written by rank 0
 * inside a collective call; per-row arrays ([n] or [n][k]) by every rank for its own rows. The file lives under a
 * temporary name (".NAME.partial-PID") until sm__result_commit renames it; closing an uncommitted result deletes it, so
 * a failed job never leaves a file that looks complete. */
#include <errno.h>
#include <hdf5.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "result.h"

struct sm__result {
  sm_ctx *ctx;
  hid_t file, dxpl;
  char path[PATH_MAX], tmp[PATH_MAX];
};

sm_status sm__result_create(sm_ctx *ctx, const char *path, const char *created_by, const char *job_yaml,
                            sm__result **out) {
  *out = NULL;
  sm__result *r = calloc(1, sizeof *r);
  SM_CHECK(ctx, r, SM_ERR_NOMEM, "out of memory");
  r->ctx = ctx;
  r->file = r->dxpl = -1;
  snprintf(r->path, sizeof r->path, "%s", path);
  char d[PATH_MAX], b[PATH_MAX];
  snprintf(d, sizeof d, "%s", path);
  snprintf(b, sizeof b, "%s", path);
  long pid = (long)getpid();
  MPI_Bcast(&pid, 1, MPI_LONG, 0, ctx->comm);
  snprintf(r->tmp, sizeof r->tmp, "%s/.%s.partial-%ld", dirname(d), basename(b), pid);
  sm_status st = sm_make_parent_dirs(ctx, path);
  if (st != SM_OK) { /* name the file the user asked for, then why */
    char why[SM_ERRMSG_MAX];
    snprintf(why, sizeof why, "%s", ctx->err_msg);
    st = SM_ERR(ctx, st, "cannot write %s: %s", path, why);
  }
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) {
    hid_t fapl = sm__fapl_mpio(ctx);
    r->file = H5Fcreate(r->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    r->dxpl = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_dxpl_mpio(r->dxpl, H5FD_MPIO_COLLECTIVE);
    if (r->file < 0) st = SM_H5ERR(ctx, "cannot write %s: cannot create %s (directory writable?)", path, r->tmp);
  }
  *out = r;
  SM_TRY(ctx, st);
  char ver[64];
  snprintf(ver, sizeof ver, "sisma %s", sm_version());
  SM_TRY(ctx, sm__result_attr(r, "software", ver));
  SM_TRY(ctx, sm__result_attr(r, "created_by", created_by));
  SM_TRY(ctx, sm__result_attr_f64(r, "ranks", ctx->size));
  if (job_yaml) SM_TRY(ctx, sm__result_attr(r, "job_config", job_yaml));
  return SM_OK;
}

/* The object an attribute "a" or "object/a" goes on: the root, or that object (created as a group
 * when it does not exist). *aname is the attribute's own name. Caller closes. Collective. */
static hid_t attr_owner(sm__result *r, const char *name, const char **aname) {
  const char *slash = strrchr(name, '/');
  *aname = slash ? slash + 1 : name;
  if (!slash) return H5Oopen(r->file, "/", H5P_DEFAULT);
  char obj[PATH_MAX];
  snprintf(obj, sizeof obj, "%.*s", (int)(slash - name), name);
  if (H5Lexists(r->file, obj, H5P_DEFAULT) <= 0) {
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t g = H5Gcreate2(r->file, obj, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Pclose(lcpl);
    if (g < 0) return -1;
    H5Gclose(g);
  }
  return H5Oopen(r->file, obj, H5P_DEFAULT);
}

/* A scalar attribute of type t from *v. */
static sm_status write_attr(sm__result *r, const char *name, hid_t t, const void *v) {
  const char *aname;
  hid_t o = attr_owner(r, name, &aname), s = H5Screate(H5S_SCALAR);
  hid_t a = o < 0 ? -1 : H5Acreate2(o, aname, t, s, H5P_DEFAULT, H5P_DEFAULT);
  herr_t rc = a < 0 ? -1 : H5Awrite(a, t, v);
  if (a >= 0) H5Aclose(a);
  if (o >= 0) H5Oclose(o);
  H5Sclose(s);
  SM_H5(r->ctx, rc, "%s: cannot write attribute %s", r->tmp, name);
  return SM_OK;
}

sm_status sm__result_attr(sm__result *r, const char *name, const char *value) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, strlen(value) + 1);
  sm_status st = write_attr(r, name, t, value);
  H5Tclose(t);
  return st;
}

sm_status sm__result_attr_f64(sm__result *r, const char *name, double value) {
  return write_attr(r, name, H5T_NATIVE_DOUBLE, &value);
}

/* Dataset `name` (missing groups on its path created) of file type ft, [n] or [n][cols], this
 * rank's rows [first, first + count) from v in memory type mt of es bytes per element. */
static sm_status write_rows(sm__result *r, const char *name, hid_t ft, hid_t mt, size_t es, int64_t n, int64_t cols,
                            int64_t first, int64_t count, const void *v, const char *columns) {
  sm_ctx *ctx = r->ctx;
  hsize_t dims[2] = {(hsize_t)n, (hsize_t)cols};
  hid_t s = H5Screate_simple(cols > 0 ? 2 : 1, dims, NULL), lcpl = H5Pcreate(H5P_LINK_CREATE);
  H5Pset_create_intermediate_group(lcpl, 1);
  hid_t d = H5Dcreate2(r->file, name, ft, s, lcpl, H5P_DEFAULT, H5P_DEFAULT);
  H5Sclose(s), H5Pclose(lcpl);
  SM_H5(ctx, d, "%s: cannot create dataset %s", r->tmp, name);
  sm_status st = SM_OK;
  if (columns) {
    hid_t t = H5Tcopy(H5T_C_S1), sc = H5Screate(H5S_SCALAR);
    H5Tset_size(t, strlen(columns) + 1);
    hid_t a = H5Acreate2(d, "columns", t, sc, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, t, columns) < 0) st = SM_H5ERR(ctx, "%s: cannot label %s", r->tmp, name);
    if (a >= 0) H5Aclose(a);
    H5Sclose(sc), H5Tclose(t);
  }
  if (st == SM_OK) st = sm__slab_io(ctx, d, mt, r->dxpl, 1, first, count, cols > 0 ? cols : 1, es, (void *)v, name);
  H5Dclose(d);
  return st;
}

sm_status sm__result_rows(sm__result *r, const char *name, sm__result_type type, int64_t n, int64_t cols, int64_t first,
                          int64_t count, const void *v, const char *columns) {
  hid_t ft = type == SM__RES_F64 ? H5T_IEEE_F64LE : type == SM__RES_I32 ? H5T_STD_I32LE : H5T_STD_I64LE;
  hid_t mt = type == SM__RES_F64 ? H5T_NATIVE_DOUBLE : type == SM__RES_I32 ? H5T_NATIVE_INT32 : H5T_NATIVE_INT64;
  return write_rows(r, name, ft, mt, type == SM__RES_I32 ? 4 : 8, n, cols, first, count, v, columns);
}

sm_status sm__result_strings(sm__result *r, const char *name, int64_t n, int64_t first, int64_t count, size_t width,
                             const char *v) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, width > 0 ? width : 1);
  H5Tset_strpad(t, H5T_STR_NULLPAD);
  sm_status st = write_rows(r, name, t, t, width > 0 ? width : 1, n, 0, first, count, v, NULL);
  H5Tclose(t);
  return st;
}

sm_status sm__result_small(sm__result *r, const char *name, sm__result_type type, int64_t n, int64_t cols,
                           const void *v) {
  return sm__result_rows(r, name, type, n, cols, 0, r->ctx->rank == 0 ? n : 0, v, NULL);
}

sm_status sm__result_commit(sm__result **rp) {
  sm__result *r = *rp;
  sm_ctx *ctx = r->ctx;
  sm_status st = SM_OK;
  H5Pclose(r->dxpl);
  r->dxpl = -1;
  if (H5Fclose(r->file) < 0) st = SM_H5ERR(ctx, "%s: closing failed", r->tmp);
  r->file = -1;
  if (st == SM_OK && ctx->rank == 0 && rename(r->tmp, r->path) != 0)
    st = SM_ERR(ctx, SM_ERR_IO, "cannot rename %s to %s: %s", r->tmp, r->path, strerror(errno));
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) r->tmp[0] = '\0';
  sm__result_close(rp);
  return st;
}

void sm__result_close(sm__result **rp) {
  sm__result *r = *rp;
  if (!r) return;
  if (r->dxpl >= 0) H5Pclose(r->dxpl);
  if (r->file >= 0) H5Fclose(r->file);
  MPI_Barrier(r->ctx->comm);
  if (r->tmp[0] && r->ctx->rank == 0) unlink(r->tmp); /* never leave a half-written result */
  free(r);
  *rp = NULL;
}
