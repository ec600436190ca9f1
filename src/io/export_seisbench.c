/* Export of a catalog to the SeisBench layout, so that SeisBench (WaveformDataset) and h5py users
 * load sisma outputs directly:
 *   waveforms.hdf5   data/bucket<k>  float32 [n_k][C][W], k = 0, 1, ...: catalog traces
 *                    [k*B, k*B + n_k) in order, B = min(1024, traces per 64 MiB)
 *                    data_format/    component_order, dimension_order "CW", sampling_rate (Hz),
 *                                    measurement, unit, instrument_response (scalar strings)
 *   metadata.csv     trace_name = bucket<k>$<i>,:C,:npts (npts = trace_npts when the catalog has
 *                    it, else W), then every /meta column (trace_name_original = the catalog's
 *                    trace_name unless that column exists); RFC 4180 quoting, empty = missing.
 * `output` names the waveforms file; metadata.csv goes beside it (or <stem>.csv when the file is not
 * called waveforms.hdf5); a directory (created if the path ends in '/') gets both standard names.
 * Waveforms are written collectively (each rank its shard, bucket by bucket, every rank calling
 * every bucket's write); data_format and the CSV are written by rank 0. Both files are written under temporary names and renamed only when
 * complete. Start reading at sm__export_seisbench. */
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../catalog/internal.h"
#include "internal.h"
#include "sisma/shard.h"

#define BUCKET_MAX 1024
#define BUCKET_BYTES ((int64_t)64 << 20)

typedef struct {
  sm_ctx *ctx;
  sm_catalog *cat;
  const sm_catalog_info *in;
  char wpath[4096], mpath[4096]; /* final names */
  char wtmp[4200], mtmp[4200];   /* temporary names */
  int64_t bucket;                /* traces per bucket */
} exporter;

static sm_status out_paths(exporter *ex, const char *output) {
  struct stat sb;
  size_t l = strlen(output);
  if ((stat(output, &sb) == 0 && S_ISDIR(sb.st_mode)) || (l > 0 && output[l - 1] == '/')) {
    SM_TRY(ex->ctx, sm_ctx_agree(ex->ctx, ex->ctx->rank == 0 ? sm_make_dirs(ex->ctx, output) : SM_OK));
    snprintf(ex->wpath, sizeof ex->wpath, "%s/waveforms.hdf5", output);
    snprintf(ex->mpath, sizeof ex->mpath, "%s/metadata.csv", output);
  } else {
    char d[4096], b[4096];
    snprintf(d, sizeof d, "%s", output);
    snprintf(b, sizeof b, "%s", output);
    const char *dir = dirname(d), *base = basename(b);
    snprintf(ex->wpath, sizeof ex->wpath, "%s", output);
    if (!strcmp(base, "waveforms.hdf5")) {
      snprintf(ex->mpath, sizeof ex->mpath, "%s/metadata.csv", dir);
    } else {
      char stem[4096];
      snprintf(stem, sizeof stem, "%s", output);
      char *dot = strrchr(stem, '.');
      if (dot && !strchr(dot, '/')) *dot = '\0';
      snprintf(ex->mpath, sizeof ex->mpath, "%s.csv", stem);
    }
  }
  long pid = (long)getpid();
  SM_MPI(ex->ctx, MPI_Bcast(&pid, 1, MPI_LONG, 0, ex->ctx->comm));
  for (int k = 0; k < 2; k++) {
    const char *p = k ? ex->mpath : ex->wpath;
    char d[4096], b[4096];
    snprintf(d, sizeof d, "%s", p);
    snprintf(b, sizeof b, "%s", p);
    snprintf(k ? ex->mtmp : ex->wtmp, sizeof ex->wtmp, "%s/.%s.partial-%ld", dirname(d), basename(b), pid);
  }
  return SM_OK;
}

/* ---- waveforms ---- */

static sm_status create_buckets(exporter *ex, hid_t file, int64_t nb) {
  sm_ctx *ctx = ex->ctx;
  hid_t g = H5Gcreate2(file, "data", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (g < 0) return SM_H5ERR(ctx, "%s: cannot create group data", ex->wtmp);
  H5Gclose(g);
  hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER); /* every sample is written */
  sm_status st = SM_OK;
  for (int64_t k = 0; k < nb && st == SM_OK; k++) {
    int64_t lo = k * ex->bucket, hi = lo + ex->bucket < ex->in->n_traces ? lo + ex->bucket : ex->in->n_traces;
    hsize_t dims[3] = {(hsize_t)(hi - lo), (hsize_t)ex->in->n_components, (hsize_t)ex->in->n_samples};
    hid_t fs = H5Screate_simple(3, dims, NULL);
    char name[64];
    snprintf(name, sizeof name, "data/bucket%lld", (long long)k);
    hid_t d = H5Dcreate2(file, name, H5T_IEEE_F32LE, fs, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Sclose(fs);
    if (d < 0) st = SM_H5ERR(ctx, "%s: cannot create %s", ex->wtmp, name);
    else H5Dclose(d);
  }
  H5Pclose(dcpl);
  return st;
}

/* Bucket by bucket: each rank reads the part of its shard that falls in the bucket (possibly
 * nothing) and writes it; every rank makes the same calls, so the collectives match. */
static sm_status write_buckets(exporter *ex, hid_t file, int64_t nb) {
  sm_ctx *ctx = ex->ctx;
  sm_range mine = sm_catalog_shard(ex->cat, ctx->rank, ctx->size);
  int64_t te = (int64_t)ex->in->n_components * ex->in->n_samples;
  float *buf = NULL;
  SM_TRY(ctx, sm_ctx_agree(ctx, SM_ALLOC(ctx, buf, ex->bucket * te)));
  hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
  H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
  sm_status st = SM_OK;
  for (int64_t k = 0; k < nb && st == SM_OK; k++) {
    int64_t lo = k * ex->bucket, hi = lo + ex->bucket;
    int64_t a = mine.first > lo ? mine.first : lo, b = mine.first + mine.count < hi ? mine.first + mine.count : hi;
    int64_t n = b > a ? b - a : 0;
    st = sm_catalog_read_traces(ex->cat, n ? a : 0, n, buf);
    if (st != SM_OK) break;
    char name[64];
    snprintf(name, sizeof name, "data/bucket%lld", (long long)k);
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT), fs = H5Dget_space(d);
    hsize_t start[3] = {(hsize_t)(n ? a - lo : 0), 0, 0};
    hsize_t cnt[3] = {(hsize_t)n, (hsize_t)ex->in->n_components, (hsize_t)ex->in->n_samples};
    hsize_t mdim = (hsize_t)(n * te);
    hid_t ms = H5Screate_simple(1, &mdim, NULL);
    herr_t rc = n ? H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL) : H5Sselect_none(fs);
    if (!n) H5Sselect_none(ms);
    if (rc >= 0) rc = H5Dwrite(d, H5T_NATIVE_FLOAT, ms, fs, dxpl, buf);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(d);
    st = sm_ctx_agree(ctx, rc < 0 ? SM_H5ERR(ctx, "%s: writing %s failed", ex->wtmp, name) : SM_OK);
  }
  H5Pclose(dxpl);
  free(buf);
  return st;
}

static int put_scalar_str(hid_t g, const char *name, const char *value) {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t d = H5Dcreate2(g, name, t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  int rc = d >= 0 && H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, &value) >= 0 ? 0 : -1;
  if (d >= 0) H5Dclose(d);
  H5Sclose(sp);
  H5Tclose(t);
  return rc;
}

/* data_format, written by rank 0 with serial HDF5 after the collective part is closed (variable
 * length strings, as SeisBench writes them, cannot be written through MPI-IO). */
static sm_status write_data_format(exporter *ex) {
  sm_ctx *ctx = ex->ctx;
  char measurement[64], unit[64], response[128];
  SM_TRY(ctx, sm_catalog_get_attr(ex->cat, "measurement", measurement, sizeof measurement));
  SM_TRY(ctx, sm_catalog_get_attr(ex->cat, "unit", unit, sizeof unit));
  SM_TRY(ctx, sm_catalog_get_attr(ex->cat, "instrument_response", response, sizeof response));
  hid_t f = H5Fopen(ex->wtmp, H5F_ACC_RDWR, H5P_DEFAULT);
  if (f < 0) return SM_H5ERR(ctx, "cannot reopen %s", ex->wtmp);
  hid_t g = H5Gcreate2(f, "data_format", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  int rc = g < 0 ? -1 : 0;
  if (!rc) rc = put_scalar_str(g, "component_order", ex->in->component_order);
  if (!rc) rc = put_scalar_str(g, "dimension_order", "CW");
  if (!rc) rc = put_scalar_str(g, "measurement", measurement[0] ? measurement : "unknown");
  if (!rc) rc = put_scalar_str(g, "unit", unit[0] ? unit : "unknown");
  if (!rc) rc = put_scalar_str(g, "instrument_response", response[0] ? response : "unknown");
  if (!rc) {
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t d = H5Dcreate2(g, "sampling_rate", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    rc = d >= 0 && H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &ex->in->sampling_rate_hz) >= 0 ? 0 : -1;
    if (d >= 0) H5Dclose(d);
    H5Sclose(sp);
  }
  if (g >= 0) H5Gclose(g);
  if (H5Fclose(f) < 0) rc = -1;
  if (rc < 0) return SM_H5ERR(ctx, "%s: cannot write data_format", ex->wtmp);
  return SM_OK;
}

static sm_status write_waveforms(exporter *ex) {
  sm_ctx *ctx = ex->ctx;
  int64_t nb = (ex->in->n_traces + ex->bucket - 1) / ex->bucket;
  SM_TRY(ctx, sm_ctx_agree(ctx, ctx->rank == 0 ? sm_make_parent_dirs(ctx, ex->wtmp) : SM_OK));
  hid_t fapl = sm__fapl_mpio(ctx);
  hid_t file = H5Fcreate(ex->wtmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
  H5Pclose(fapl);
  sm_status st = file < 0 ? SM_H5ERR(ctx, "cannot create %s (is the directory writable?)", ex->wtmp) : SM_OK;
  SM_TRY(ctx, sm_ctx_agree(ctx, st));
  st = sm_ctx_agree(ctx, create_buckets(ex, file, nb));
  if (st == SM_OK) st = write_buckets(ex, file, nb);
  if (H5Fclose(file) < 0 && st == SM_OK) st = SM_H5ERR(ctx, "%s: closing failed", ex->wtmp);
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) st = sm_ctx_agree(ctx, ctx->rank == 0 ? write_data_format(ex) : SM_OK);
  return st;
}

/* ---- metadata.csv ---- */

/* Write s as one CSV field, quoted when it holds a separator, a quote, a line break or edge blanks. */
static void csv_field(FILE *f, const char *s) {
  size_t l = strlen(s);
  int q = strpbrk(s, ",\"\r\n") != NULL || (l && (s[0] == ' ' || s[l - 1] == ' '));
  if (!q) {
    fputs(s, f);
    return;
  }
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"') fputc('"', f);
    fputc(*s, f);
  }
  fputc('"', f);
}

/* Shortest "%.*g" text that reads back as exactly v; "" for NaN. */
static void fmt_f64(double v, char *out, size_t n) {
  out[0] = '\0';
  if (isnan(v)) return;
  for (int p = 15; p <= 17; p++) {
    snprintf(out, n, "%.*g", p, v);
    if (strtod(out, NULL) == v) return;
  }
}

typedef struct {
  const char *name;
  sm_col_type type;
  int width;
  void *v; /* [n] double | int64 | [n][width] chars */
} col_data;

/* Every column in full on rank 0 (other ranks join the collective reads with count 0). */
static sm_status load_columns(exporter *ex, col_data *cols, int nc) {
  sm_ctx *ctx = ex->ctx;
  int64_t n = ctx->rank == 0 ? ex->in->n_traces : 0;
  for (int j = 0; j < nc; j++) {
    col_data *c = &cols[j];
    c->name = sm_catalog_column_name(ex->cat, j);
    SM_TRY(ctx, sm_catalog_column_info(ex->cat, c->name, &c->type, &c->width));
    size_t es = c->type == SM_COL_STR ? (size_t)c->width : 8;
    c->v = calloc((size_t)(n > 0 ? n : 1), es);
    SM_TRY(ctx, sm_ctx_agree(ctx, c->v ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory for column %s", c->name)));
    if (c->type == SM_COL_F64) SM_TRY(ctx, sm_catalog_read_f64(ex->cat, c->name, 0, n, c->v));
    else if (c->type == SM_COL_I64) SM_TRY(ctx, sm_catalog_read_i64(ex->cat, c->name, 0, n, c->v));
    else SM_TRY(ctx, sm_catalog_read_str(ex->cat, c->name, 0, n, c->v));
  }
  return SM_OK;
}

static void cell(const col_data *c, int64_t i, char *out, size_t n) {
  if (c->type == SM_COL_F64) fmt_f64(((const double *)c->v)[i], out, n);
  else if (c->type == SM_COL_I64) {
    int64_t x = ((const int64_t *)c->v)[i];
    if (x == INT64_MIN) out[0] = '\0';
    else snprintf(out, n, "%lld", (long long)x);
  } else sm_catalog_str_at(c->v, c->width, i, out, n);
}

static sm_status write_csv(exporter *ex, const col_data *cols, int nc) {
  sm_ctx *ctx = ex->ctx;
  FILE *f = fopen(ex->mtmp, "w");
  SM_CHECK(ctx, f, SM_ERR_IO, "cannot create %s: %s", ex->mtmp, strerror(errno));
  int name_j = -1, npts_j = -1, has_orig = 0;
  for (int j = 0; j < nc; j++) {
    if (!strcmp(cols[j].name, "trace_name")) name_j = j;
    if (!strcmp(cols[j].name, "trace_npts") && cols[j].type != SM_COL_STR) npts_j = j;
    if (!strcmp(cols[j].name, "trace_name_original")) has_orig = 1;
  }
  fputs("trace_name", f);
  for (int j = 0; j < nc; j++)
    if (j != name_j) fputc(',', f), csv_field(f, cols[j].name);
  if (name_j >= 0 && !has_orig) fputs(",trace_name_original", f);
  fputc('\n', f);
  size_t wmax = 64;
  for (int j = 0; j < nc; j++)
    if (cols[j].type == SM_COL_STR && (size_t)cols[j].width + 1 > wmax) wmax = (size_t)cols[j].width + 1;
  char *v = malloc(wmax);
  if (!v) {
    fclose(f);
    return SM_ERR(ctx, SM_ERR_NOMEM, "out of memory");
  }
  for (int64_t i = 0; i < ex->in->n_traces; i++) {
    int64_t W = ex->in->n_samples, npts = W;
    if (npts_j >= 0) {
      cell(&cols[npts_j], i, v, wmax);
      double x = strtod(v, NULL);
      if (v[0] && x >= 1 && x <= (double)W && x == floor(x)) npts = (int64_t)x;
    }
    fprintf(f, "\"bucket%lld$%lld,:%d,:%lld\"", (long long)(i / ex->bucket), (long long)(i % ex->bucket),
            ex->in->n_components, (long long)npts);
    for (int j = 0; j < nc; j++) {
      if (j == name_j) continue;
      cell(&cols[j], i, v, wmax);
      fputc(',', f);
      csv_field(f, v);
    }
    if (name_j >= 0 && !has_orig) {
      cell(&cols[name_j], i, v, wmax);
      fputc(',', f);
      csv_field(f, v);
    }
    fputc('\n', f);
  }
  free(v);
  int bad = ferror(f);
  if (fclose(f) != 0) bad = 1;
  SM_CHECK(ctx, !bad, SM_ERR_IO, "writing %s failed: %s", ex->mtmp, strerror(errno));
  return SM_OK;
}

static sm_status write_metadata(exporter *ex) {
  sm_ctx *ctx = ex->ctx;
  int nc = sm_catalog_column_count(ex->cat);
  col_data *cols = calloc((size_t)nc + 1, sizeof *cols);
  sm_status st = sm_ctx_agree(ctx, cols ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory"));
  if (st == SM_OK) st = load_columns(ex, cols, nc);
  if (st == SM_OK) st = sm_ctx_agree(ctx, ctx->rank == 0 ? write_csv(ex, cols, nc) : SM_OK);
  for (int j = 0; cols && j < nc; j++) free(cols[j].v);
  free(cols);
  return st;
}

/* ---- the stage ---- */

static sm_status publish(exporter *ex) {
  sm_ctx *ctx = ex->ctx;
  sm_status st = SM_OK;
  if (ctx->rank == 0) {
    if (rename(ex->wtmp, ex->wpath) != 0)
      st = SM_ERR(ctx, SM_ERR_IO, "cannot rename %s to %s: %s", ex->wtmp, ex->wpath, strerror(errno));
    else if (rename(ex->mtmp, ex->mpath) != 0)
      st = SM_ERR(ctx, SM_ERR_IO, "cannot rename %s to %s: %s", ex->mtmp, ex->mpath, strerror(errno));
  }
  return sm_ctx_agree(ctx, st);
}

sm_status sm__export_seisbench(sm_ctx *ctx, const sm_config *cfg) {
  exporter ex;
  memset(&ex, 0, sizeof ex);
  ex.ctx = ctx;
  char cpath[4096], output[4096];
  sm_config_input_path(cfg, "catalog", cpath, sizeof cpath);
  sm_config_output_path(cfg, "output", output, sizeof output);
  SM_TRY(ctx, out_paths(&ex, output));
  sm_status st = SM_OK;
  if (sm_path_same(cpath, ex.wpath) || sm_path_same(cpath, ex.mpath))
    st = SM_ERR(ctx, SM_ERR_CONFIG, "export.output %s would overwrite the catalog %s", output, cpath);
  SM_TRY(ctx, sm_ctx_agree(ctx, st));
  SM_TRY(ctx, sm_catalog_open(ctx, cpath, &ex.cat));
  ex.in = sm_catalog_get_info(ex.cat);
  int64_t te = (int64_t)ex.in->n_components * ex.in->n_samples * 4;
  ex.bucket = BUCKET_BYTES / te < BUCKET_MAX ? BUCKET_BYTES / te : BUCKET_MAX;
  for (int k = 0; k < cfg->nkeys; k++) /* optional key bucket_traces (0 = automatic) */
    if (!strcmp(cfg->keys[k].name, "bucket_traces") && sm_config_int(cfg, "bucket_traces") > 0)
      ex.bucket = sm_config_int(cfg, "bucket_traces");
  if (ex.bucket < 1) ex.bucket = 1;
  st = ex.in->n_traces > 0 ? SM_OK : SM_ERR(ctx, SM_ERR_DATA, "%s holds no traces: nothing to export", cpath);
  if (st == SM_OK) st = write_waveforms(&ex);
  if (st == SM_OK) st = write_metadata(&ex);
  if (st == SM_OK) st = publish(&ex);
  if (st == SM_OK)
    sm_info(ctx, "export seisbench: %lld traces in %lld bucket(s) -> %s + %s", (long long)ex.in->n_traces,
            (long long)((ex.in->n_traces + ex.bucket - 1) / ex.bucket), ex.wpath, ex.mpath);
  sm_catalog_close(&ex.cat);
  if (st != SM_OK && ctx->rank == 0) { /* never leave a partial output behind */
    unlink(ex.wtmp);
    unlink(ex.mtmp);
  }
  return st;
}
