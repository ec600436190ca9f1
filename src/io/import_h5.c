/* Import of the HDF5 waveform layouts used by ML seismology into a sisma catalog:
 *   stead      `data/<trace_name>` or `earthquake/local/<trace_name>` (or `non_earthquake/noise/...`),
 *              [samples][3] float32, components E, N, Z; 100 Hz unless the CSV or the job says
 *   seisbench  `data/<bucket>` blocks [n][C][W] (or [n][W][C]) per `data_format/dimension_order`,
 *              `data_format/component_order` and `sampling_rate`; trace_name `bucket$i,:C,:W`
 *              (the W slice gives the length of a variable-length trace); or `data/<trace_name>`
 *   instance   `data/<trace_name>` [3][samples], components E, N, Z; rate from trace_sampling_rate_hz
 * The metadata CSV drives the import: one catalog trace per CSV row, in CSV order. Rank r takes
 * its arithmetic share of the rows, opens the input read-only with serial HDF5 (no collective
 * calls on the input, so ranks may open different numbers of datasets), and every rank then
 * writes its rows of the catalog collectively. Traces shorter than the longest are zero-padded
 * at the end; `trace_npts` keeps their original length. Failures are agreed across ranks before
 * each collective; the catalog stays under its temporary name until commit, so a failed import
 * leaves no output file. Start reading at sm__import_h5layout. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../catalog/internal.h"
#include "import_h5.h"
#include "internal.h"

#define BLOCK_TRACES 256 /* traces read and written per collective step */

/* ---- setup: keys, CSV, input file ---- */

static sm_status check_components(sm_ctx *ctx, const char *order) {
  size_t n = strlen(order);
  SM_CHECK(ctx, n >= 1 && n <= 8, SM_ERR_CONFIG, "import.components = \"%s\" must have 1 to 8 letters (e.g. ZNE)",
           order);
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < i; j++)
      SM_CHECK(ctx, order[i] != order[j], SM_ERR_CONFIG, "import.components = \"%s\" repeats %c", order, order[i]);
  return SM_OK;
}

static sm_status setup(sm__h5import *im, const sm_config *cfg) {
  sm_ctx *ctx = im->ctx;
  im->format = sm_config_str(cfg, "format");
  im->layout = !strcmp(im->format, "stead")       ? SM_H5L_STEAD
               : !strcmp(im->format, "seisbench") ? SM_H5L_SEISBENCH
               : !strcmp(im->format, "instance")  ? SM_H5L_INSTANCE
                                                  : -1;
  SM_CHECK(ctx, im->layout >= 0, SM_ERR_CONFIG, "import.format = \"%s\" is not an HDF5 layout (stead|seisbench|instance)",
           im->format);
  sm_config_input_path(cfg, "input", im->input, sizeof im->input);
  sm_config_input_path(cfg, "metadata", im->metadata, sizeof im->metadata);
  sm_config_output_path(cfg, "output", im->output, sizeof im->output);
  SM_CHECK(ctx, im->metadata[0], SM_ERR_CONFIG,
           "import.metadata is required for format %s: the CSV naming every trace (column trace_name)", im->format);
  snprintf(im->order, sizeof im->order, "%s", sm_config_str(cfg, "components"));
  SM_TRY(ctx, check_components(ctx, im->order));
  SM_CHECK(ctx, !sm_path_same(im->output, im->input) && !sm_path_same(im->output, im->metadata), SM_ERR_CONFIG,
           "import.output %s is one of the inputs; inputs are never overwritten", im->output);
  SM_CHECK(ctx, access(im->input, R_OK) == 0, SM_ERR_IO, "cannot read import.input %s: %s", im->input,
           strerror(errno));
  SM_CHECK(ctx, H5Fis_hdf5(im->input) > 0, SM_ERR_FORMAT, "import.input %s is not an HDF5 file", im->input);
  SM_TRY(ctx, sm__csv_create(ctx, im->metadata, &im->csv));
  SM_TRY(ctx, sm__csv_col_require(ctx, im->csv, "trace_name", &im->name_col));
  /* Strong close degree: closing the file closes every object still open in it, so an error
   * path can never keep the input open (and locked against rewriting) after the stage. */
  hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
  H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
  im->file = H5Fopen(im->input, H5F_ACC_RDONLY, fapl);
  H5Pclose(fapl);
  if (im->file < 0) return SM_H5ERR(ctx, "cannot open %s read-only", im->input);
  return SM_OK;
}

/* Read a scalar string dataset (variable or fixed length) such as data_format/component_order. */
static int read_scalar_str(hid_t file, const char *path, char *out, size_t n) {
  out[0] = '\0';
  if (H5Lexists(file, path, H5P_DEFAULT) <= 0) return -1;
  hid_t d = H5Dopen2(file, path, H5P_DEFAULT);
  if (d < 0) return -1;
  hid_t ft = H5Dget_type(d);
  int rc = -1;
  if (H5Tget_class(ft) == H5T_STRING) {
    if (H5Tis_variable_str(ft) > 0) {
      char *v = NULL;
      hid_t mt = H5Tcopy(H5T_C_S1);
      H5Tset_size(mt, H5T_VARIABLE);
      H5Tset_cset(mt, H5Tget_cset(ft)); /* HDF5 does not convert between ASCII and UTF-8 */
      if (H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, &v) >= 0 && v) {
        snprintf(out, n, "%s", v);
        H5free_memory(v);
        rc = 0;
      }
      H5Tclose(mt);
    } else {
      size_t sz = H5Tget_size(ft);
      char *v = calloc(sz + 1, 1);
      if (v && H5Dread(d, ft, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0) {
        snprintf(out, n, "%s", v);
        rc = 0;
      }
      free(v);
    }
  } else { /* a number, e.g. sampling_rate */
    double x;
    if (H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &x) >= 0) {
      snprintf(out, n, "%.17g", x);
      rc = 0;
    }
  }
  H5Tclose(ft);
  H5Dclose(d);
  H5Eclear2(H5E_DEFAULT);
  return rc;
}

static sm_status layout_seisbench(sm__h5import *im, double *file_rate) {
  sm_ctx *ctx = im->ctx;
  char dim[16], rate[64];
  SM_CHECK(ctx, read_scalar_str(im->file, "data_format/component_order", im->src_order, sizeof im->src_order) == 0,
           SM_ERR_FORMAT, "%s: data_format/component_order is missing: not a SeisBench waveforms file?", im->input);
  if (read_scalar_str(im->file, "data_format/dimension_order", dim, sizeof dim) != 0) snprintf(dim, sizeof dim, "CW");
  const char *d = dim[0] == 'N' ? dim + 1 : dim; /* "NCW" names the block axis too */
  SM_CHECK(ctx, !strcmp(d, "CW") || !strcmp(d, "WC"), SM_ERR_UNSUPPORTED,
           "%s: data_format/dimension_order = \"%s\"; sisma reads CW and WC (with or without a leading N)", im->input,
           dim);
  im->wc = !strcmp(d, "WC");
  *file_rate = 0;
  if (read_scalar_str(im->file, "data_format/sampling_rate", rate, sizeof rate) == 0) *file_rate = strtod(rate, NULL);
  read_scalar_str(im->file, "data_format/measurement", im->measurement, sizeof im->measurement);
  read_scalar_str(im->file, "data_format/unit", im->unit, sizeof im->unit);
  read_scalar_str(im->file, "data_format/instrument_response", im->response, sizeof im->response);
  return SM_OK;
}

/* The sampling rate: one for all traces, from the input layout, the CSV column
 * trace_sampling_rate_hz and the key sampling_rate_hz (0 = keep), which must all agree. */
static sm_status layout_rate(sm__h5import *im, double file_rate, double want) {
  sm_ctx *ctx = im->ctx;
  int col = sm__csv_col_find(im->csv, "trace_sampling_rate_hz");
  double rate = file_rate, seen[5];
  int nseen = 0;
  int64_t bad_row = -1;
  if (rate > 0) seen[nseen++] = rate;
  for (int64_t i = 0; col >= 0 && i < sm__csv_rows(im->csv); i++) {
    double r = sm__csv_f64(im->csv, i, col);
    if (isnan(r)) continue;
    int k = 0;
    while (k < nseen && seen[k] != r) k++;
    if (k == nseen && nseen < 5) seen[nseen++] = r;
    if (k > 0 && bad_row < 0) bad_row = i;
    if (rate <= 0) rate = r;
  }
  if (nseen > 1) {
    char list[160] = "";
    for (int k = 0; k < nseen; k++)
      snprintf(list + strlen(list), sizeof list - strlen(list), "%s%g Hz", k ? ", " : "", seen[k]);
    return SM_ERR(ctx, SM_ERR_UNSUPPORTED,
                  "%s:%lld: trace %s: mixed sampling rates (%s%s); a catalog holds one rate and the HDF5 importers "
                  "do not resample: split the input by rate",
                  im->metadata, (long long)sm__csv_line(im->csv, bad_row), sm__csv_str(im->csv, bad_row, im->name_col),
                  list, file_rate > 0 ? ", the first from data_format/sampling_rate" : "");
  }
  if (rate <= 0) rate = want > 0 ? want : 100.0; /* STEAD and INSTANCE are 100 Hz by construction */
  SM_CHECK(ctx, want <= 0 || want == rate, SM_ERR_UNSUPPORTED,
           "import.sampling_rate_hz = %g but %s holds %g Hz traces; resampling is not supported by the %s importer "
           "(set sampling_rate_hz: 0 to keep %g Hz)",
           want, im->input, rate, im->format, rate);
  im->rate_hz = rate;
  return SM_OK;
}

static sm_status layout(sm__h5import *im, const sm_config *cfg) {
  sm_ctx *ctx = im->ctx;
  double file_rate = 0;
  if (im->layout == SM_H5L_SEISBENCH) {
    SM_TRY(ctx, layout_seisbench(im, &file_rate));
  } else {
    snprintf(im->src_order, sizeof im->src_order, "ENZ"); /* STEAD and INSTANCE store E, N, Z */
    im->wc = im->layout == SM_H5L_STEAD;
  }
  im->nsrc = (int)strlen(im->src_order);
  SM_CHECK(ctx, im->nsrc >= 1 && im->nsrc <= 8, SM_ERR_FORMAT, "%s: component order \"%s\" is not 1..8 letters",
           im->input, im->src_order);
  for (int k = 0; im->order[k]; k++) {
    const char *p = strchr(im->src_order, im->order[k]);
    SM_CHECK(ctx, p, SM_ERR_DATA, "import.components = \"%s\": component %c is not in %s (it holds %s)", im->order,
             im->order[k], im->input, im->src_order);
    im->perm[k] = (int)(p - im->src_order);
  }
  return layout_rate(im, file_rate, sm_config_float(cfg, "sampling_rate_hz"));
}

/* ---- resolving each CSV row to a dataset, index and length ---- */

/* Dimensions of a dataset (rank nd), or -1 if it does not exist. A one-entry cache: rows of a
 * SeisBench bucket are consecutive, so the bucket is opened once per run of rows. */
typedef struct {
  char path[512];
  int nd;
  hsize_t dims[3];
} dims_cache;

static int dset_dims(hid_t file, const char *path, dims_cache *c) {
  if (!strcmp(c->path, path)) return c->nd;
  snprintf(c->path, sizeof c->path, "%s", path);
  c->nd = -1;
  if (H5Lexists(file, path, H5P_DEFAULT) > 0) {
    hid_t d = H5Dopen2(file, path, H5P_DEFAULT);
    if (d >= 0) {
      hid_t s = H5Dget_space(d);
      c->nd = H5Sget_simple_extent_ndims(s);
      if (c->nd > 3 || c->nd < 1) c->nd = 0;
      else H5Sget_simple_extent_dims(s, c->dims, NULL);
      H5Sclose(s);
      H5Dclose(d);
    }
  }
  H5Eclear2(H5E_DEFAULT);
  return c->nd;
}

static int group_exists(hid_t file, const char *path) {
  int r = H5Lexists(file, path, H5P_DEFAULT) > 0;
  H5Eclear2(H5E_DEFAULT);
  return r;
}

/* Parse one slice "stop", ":stop", "0:stop" or ":" into stop (-1 = open). */
static int parse_slice(const char *s, int64_t *stop) {
  const char *colon = strchr(s, ':');
  char *end;
  if (colon) {
    if (colon != s && strtoll(s, &end, 10) != 0) return -1; /* only slices from 0 */
    s = colon + 1;
  }
  if (!*s) {
    *stop = -1;
    return 0;
  }
  *stop = strtoll(s, &end, 10);
  return (*end == '\0' && *stop > 0) ? 0 : -1;
}

/* SeisBench: "bucket$i,:C,:W" -> data/bucket, row i, W samples; or a plain name -> data/<name>. */
static sm_status resolve_seisbench(sm__h5import *im, int64_t row, sm__h5trace *t, dims_cache *dc) {
  sm_ctx *ctx = im->ctx;
  const char *name = sm__csv_str(im->csv, row, im->name_col);
  long long line = (long long)sm__csv_line(im->csv, row);
  char buf[512];
  snprintf(buf, sizeof buf, "%s", name);
  char *dollar = strchr(buf, '$');
  int64_t slice[2] = {-1, -1};
  t->index = -1;
  if (dollar) {
    *dollar = '\0';
    char *save = NULL, *tok = strtok_r(dollar + 1, ",", &save);
    char *end = NULL;
    t->index = tok ? strtoll(tok, &end, 10) : -1;
    int ns = 0, bad = !tok || *end || t->index < 0;
    while (!bad && (tok = strtok_r(NULL, ",", &save)))
      bad = ns >= 2 || parse_slice(tok, &slice[ns++]) != 0;
    SM_CHECK(ctx, !bad, SM_ERR_FORMAT,
             "%s:%lld: trace_name \"%s\" is not of the form bucket$index,:components,:samples", im->metadata, line,
             name);
  }
  snprintf(t->dset, sizeof t->dset, "data/%s", buf);
  int nd = dset_dims(im->file, t->dset, dc), want = dollar ? 3 : 2;
  SM_CHECK(ctx, nd >= 0, SM_ERR_FORMAT, "%s: no dataset %s for trace %s (%s line %lld)", im->input, t->dset, name,
           im->metadata, line);
  SM_CHECK(ctx, nd == want, SM_ERR_FORMAT, "%s: dataset %s has %d dimension(s), expected %d for trace %s (%s line %lld)",
           im->input, t->dset, nd, want, name, im->metadata, line);
  const hsize_t *dm = dc->dims + (want - 2); /* the [C][W] or [W][C] part */
  int64_t nc = (int64_t)dm[im->wc ? 1 : 0], nw = (int64_t)dm[im->wc ? 0 : 1];
  int64_t cstop = slice[im->wc ? 1 : 0], wstop = slice[im->wc ? 0 : 1];
  SM_CHECK(ctx, !dollar || t->index < (int64_t)dc->dims[0], SM_ERR_FORMAT,
           "%s:%lld: trace %s: index %lld is beyond %s, which holds %llu traces", im->metadata, line, name,
           (long long)t->index, t->dset, (unsigned long long)dc->dims[0]);
  SM_CHECK(ctx, nc == im->nsrc && (cstop < 0 || cstop == nc), SM_ERR_UNSUPPORTED,
           "%s: trace %s (%s line %lld): %s has %lld component(s) (slice %lld), data_format/component_order is \"%s\"",
           im->input, name, im->metadata, line, t->dset, (long long)nc, (long long)cstop, im->src_order);
  SM_CHECK(ctx, wstop <= nw, SM_ERR_FORMAT, "%s:%lld: trace %s asks for %lld samples but %s holds %lld", im->metadata,
           line, name, (long long)wstop, t->dset, (long long)nw);
  t->npts = wstop > 0 ? wstop : nw;
  return SM_OK;
}

/* STEAD and INSTANCE: one dataset per trace, [W][3] (STEAD) or [3][W] (INSTANCE). */
static sm_status resolve_single(sm__h5import *im, int64_t row, sm__h5trace *t, dims_cache *dc) {
  sm_ctx *ctx = im->ctx;
  const char *name = sm__csv_str(im->csv, row, im->name_col);
  long long line = (long long)sm__csv_line(im->csv, row);
  static const char *groups[] = {"data", "earthquake/local", "non_earthquake/noise"};
  int ngroups = im->layout == SM_H5L_STEAD ? 3 : 1, nd = -1;
  SM_CHECK(ctx, name[0], SM_ERR_FORMAT, "%s:%lld: empty trace_name", im->metadata, line);
  for (int g = 0; g < ngroups && nd < 0; g++) {
    if (!group_exists(im->file, groups[g])) continue;
    snprintf(t->dset, sizeof t->dset, "%s/%s", groups[g], name);
    nd = dset_dims(im->file, t->dset, dc);
  }
  SM_CHECK(ctx, nd >= 0, SM_ERR_FORMAT, "%s: no dataset for trace %s (%s line %lld); looked in %s", im->input, name,
           im->metadata, line,
           im->layout == SM_H5L_STEAD ? "data/, earthquake/local/ and non_earthquake/noise/" : "data/");
  int64_t nc = nd == 2 ? (int64_t)dc->dims[im->wc ? 1 : 0] : -1;
  SM_CHECK(ctx, nd == 2 && nc == im->nsrc, SM_ERR_FORMAT,
           "%s: dataset %s (trace %s, %s line %lld) is not [%s] with %d components (%s layout)", im->input, t->dset,
           name, im->metadata, line, im->wc ? "samples][components" : "components][samples", im->nsrc, im->format);
  t->index = -1;
  t->npts = (int64_t)dc->dims[im->wc ? 0 : 1];
  return SM_OK;
}

static sm_status resolve(sm__h5import *im) {
  sm_ctx *ctx = im->ctx;
  SM_TRY(ctx, SM_ALLOC(ctx, im->tr, im->count > 0 ? im->count : 1));
  dims_cache dc = {.path = "", .nd = -1};
  for (int64_t i = 0; i < im->count; i++) {
    sm__h5trace *t = &im->tr[i];
    if (im->layout == SM_H5L_SEISBENCH) SM_TRY(ctx, resolve_seisbench(im, im->first + i, t, &dc));
    else SM_TRY(ctx, resolve_single(im, im->first + i, t, &dc));
    SM_CHECK(ctx, t->npts >= 1, SM_ERR_DATA, "%s: trace %s (%s line %lld) has no samples", im->input,
             sm__csv_str(im->csv, im->first + i, im->name_col), im->metadata,
             (long long)sm__csv_line(im->csv, im->first + i));
    if (t->npts > im->width) im->width = t->npts;
  }
  return SM_OK;
}

/* ---- copying the samples ---- */

/* Rows [i, j) of the block that one hyperslab read can serve: same dataset, consecutive block
 * indices, same length. */
static int64_t run_end(const sm__h5import *im, int64_t i, int64_t end) {
  const sm__h5trace *a = &im->tr[i];
  int64_t j = i + 1;
  if (a->index < 0) return j;
  while (j < end && im->tr[j].index == a->index + (j - i) && im->tr[j].npts == a->npts &&
         !strcmp(im->tr[j].dset, a->dset))
    j++;
  return j;
}

/* Read rows [i, j) (one run) into out [j-i][C][width], reordering components, zero-padding and
 * refusing non-finite samples. tmp holds (j-i) * nsrc * npts floats. */
static sm_status read_run(sm__h5import *im, int64_t i, int64_t j, float *tmp, float *out) {
  sm_ctx *ctx = im->ctx;
  const sm__h5trace *t = &im->tr[i];
  int64_t n = j - i, W = t->npts, C = (int64_t)strlen(im->order);
  hsize_t start[3] = {0, 0, 0}, cnt[3];
  int nd = t->index >= 0 ? 3 : 2, a = nd - 2;
  if (nd == 3) start[0] = (hsize_t)t->index, cnt[0] = (hsize_t)n;
  cnt[a] = (hsize_t)(im->wc ? W : im->nsrc);
  cnt[a + 1] = (hsize_t)(im->wc ? im->nsrc : W);
  hid_t d = H5Dopen2(im->file, t->dset, H5P_DEFAULT);
  if (d < 0) return SM_H5ERR(ctx, "%s: cannot open %s", im->input, t->dset);
  hid_t fs = H5Dget_space(d);
  hsize_t mdim = (hsize_t)(n * im->nsrc * W);
  hid_t ms = H5Screate_simple(1, &mdim, NULL);
  herr_t rc = H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL);
  if (rc >= 0) rc = H5Dread(d, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, tmp); /* float64 -> float32 rounds */
  H5Sclose(ms);
  H5Sclose(fs);
  H5Dclose(d);
  if (rc < 0)
    return SM_H5ERR(ctx, "%s: reading %s for trace %s (%s line %lld) failed", im->input, t->dset,
                    sm__csv_str(im->csv, im->first + i, im->name_col), im->metadata,
                    (long long)sm__csv_line(im->csv, im->first + i));
  for (int64_t r = 0; r < n; r++) {
    const float *src = tmp + r * im->nsrc * W; /* [nsrc][W] or [W][nsrc] */
    float *dst = out + r * C * im->width;      /* [C][width] */
    memset(dst, 0, (size_t)(C * im->width) * sizeof *dst);
    for (int64_t k = 0; k < C; k++)
      for (int64_t w = 0; w < W; w++) {
        float v = im->wc ? src[w * im->nsrc + im->perm[k]] : src[im->perm[k] * W + w];
        if (!isfinite(v))
          return SM_ERR(ctx, SM_ERR_DATA, "%s: trace %s (%s line %lld): %s sample at component %c, sample %lld",
                        im->input, sm__csv_str(im->csv, im->first + i + r, im->name_col), im->metadata,
                        (long long)sm__csv_line(im->csv, im->first + i + r), isnan(v) ? "NaN" : "infinite",
                        im->order[k], (long long)w);
        dst[k * im->width + w] = v;
      }
  }
  return SM_OK;
}

/* Read this rank's rows [b, e) (indices into im->tr) into out. */
static sm_status read_block(sm__h5import *im, int64_t b, int64_t e, float *tmp, float *out) {
  int64_t C = (int64_t)strlen(im->order);
  for (int64_t i = b; i < e;) {
    int64_t j = run_end(im, i, e);
    SM_TRY(im->ctx, read_run(im, i, j, tmp, out + (i - b) * C * im->width));
    i = j;
  }
  return SM_OK;
}

/* Every rank loops the same number of times (the largest block count), writing count 0 when it
 * has run out of rows, so the collective writes always match. */
static sm_status copy_traces(sm__h5import *im, sm_catalog *cat) {
  sm_ctx *ctx = im->ctx;
  int64_t C = (int64_t)strlen(im->order), nb = (im->count + BLOCK_TRACES - 1) / BLOCK_TRACES, nb_all = 0;
  SM_MPI(ctx, MPI_Allreduce(&nb, &nb_all, 1, MPI_INT64_T, MPI_MAX, ctx->comm));
  float *buf = NULL, *tmp = NULL;
  int64_t per = im->count < BLOCK_TRACES ? im->count : BLOCK_TRACES;
  sm_status st = SM_ALLOC(ctx, buf, per * C * im->width + 1);
  if (st == SM_OK) st = SM_ALLOC(ctx, tmp, per * im->nsrc * im->width + 1);
  st = sm_ctx_agree(ctx, st);
  for (int64_t k = 0; st == SM_OK && k < nb_all; k++) {
    int64_t b = k * BLOCK_TRACES, e = b + BLOCK_TRACES;
    if (b > im->count) b = im->count;
    if (e > im->count) e = im->count;
    st = sm_ctx_agree(ctx, read_block(im, b, e, tmp, buf));
    if (st == SM_OK) st = sm_catalog_write_traces(cat, im->first + b, e - b, buf);
  }
  free(buf);
  free(tmp);
  return st;
}

/* ---- the stage ---- */

static sm_status write_catalog(sm__h5import *im, const sm_config *cfg) {
  sm_ctx *ctx = im->ctx;
  sm_catalog_info info = {0};
  info.n_traces = sm__csv_rows(im->csv);
  info.n_components = (int)strlen(im->order);
  info.n_samples = im->width;
  info.sampling_rate_hz = im->rate_hz;
  snprintf(info.component_order, sizeof info.component_order, "%s", im->order);
  info.compression = (int)sm_config_int(cfg, "compression");
  sm_catalog *cat = NULL;
  SM_TRY(ctx, sm_catalog_create(ctx, im->output, &info, &cat));
  char by[9000];
  snprintf(by, sizeof by, "sisma import (format %s) from %s with metadata %s", im->format, im->input, im->metadata);
  sm_status st = sm_catalog_set_provenance(cat, by, cfg->job_yaml);
  if (st == SM_OK) st = sm_catalog_set_attr(cat, "source_format", im->format);
  if (st == SM_OK) st = sm_catalog_set_attr(cat, "source_component_order", im->src_order);
  if (st == SM_OK && im->measurement[0]) st = sm_catalog_set_attr(cat, "measurement", im->measurement);
  if (st == SM_OK && im->unit[0]) st = sm_catalog_set_attr(cat, "unit", im->unit);
  if (st == SM_OK && im->response[0]) st = sm_catalog_set_attr(cat, "instrument_response", im->response);
  if (st == SM_OK) st = copy_traces(im, cat);
  if (st == SM_OK) st = sm__h5import_columns(im, cat);
  if (st == SM_OK) return sm_catalog_commit(&cat);
  sm_catalog_close(&cat); /* deletes the temporary file: no partial output */
  return st;
}

sm_status sm__import_h5layout(sm_ctx *ctx, const sm_config *cfg) {
  sm__h5import im;
  memset(&im, 0, sizeof im);
  im.ctx = ctx;
  im.file = H5I_INVALID_HID;
  sm_status st = setup(&im, cfg);
  if (st == SM_OK) st = layout(&im, cfg);
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) {
    int64_t n = sm__csv_rows(im.csv);
    im.first = n * ctx->rank / ctx->size;
    im.count = n * (ctx->rank + 1) / ctx->size - im.first;
    st = sm_ctx_agree(ctx, resolve(&im));
  }
  if (st == SM_OK && MPI_Allreduce(MPI_IN_PLACE, &im.width, 1, MPI_INT64_T, MPI_MAX, ctx->comm) != MPI_SUCCESS)
    st = SM_ERR(ctx, SM_ERR_MPI, "MPI_Allreduce of the window length failed"); /* cannot be agreed */
  if (st == SM_OK && sm__csv_rows(im.csv) == 0)
    st = sm_ctx_agree(ctx, SM_ERR(ctx, SM_ERR_DATA, "%s: no data rows: nothing to import", im.metadata));
  if (st == SM_OK) {
    sm_info(ctx, "import %s: %lld traces x %d components x %lld samples at %g Hz from %s", im.format,
            (long long)sm__csv_rows(im.csv), (int)strlen(im.order), (long long)im.width, im.rate_hz, im.input);
    st = write_catalog(&im, cfg);
  }
  if (im.file >= 0) H5Fclose(im.file);
  sm__csv_destroy(&im.csv);
  free(im.tr);
  return st;
}
