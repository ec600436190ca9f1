/* catalog -> miniSEED 2 (the `export` stage with format mseed). Collective.
 *
 * One file per trace, <NET>.<STA>.<LOC>.<CH>__<row>.mseed in the output directory, holding one
 * channel per present component (trace_components_present; all components when the column is
 * absent). Channel codes come from trace_component_channels when the import recorded them (so
 * LH1/LH2 stay LH1/LH2), otherwise trace_channel + the component letter. Start time from
 * trace_start_time, rate from the catalog. float32 encoding keeps every sample bit for bit;
 * int32/steim1/steim2 need integral samples and refuse a trace that has others.
 * Each rank writes its shard's files under temporary names; the ranks agree, and only then
 * rename them all (or delete them all), so a failed export leaves no partial file. */
#include <errno.h>
#include <libmseed.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"
#include "sisma/job.h"
#include "sisma/shard.h"

typedef struct {
  const char *col;
  char *buf; /* [count][width] */
  int width;
} strcol;

enum { C_NET, C_STA, C_LOC, C_CHA, C_START, C_PRESENT, C_CHANS, NCOLS };
static const char *col_names[NCOLS] = {"station_network_code", "station_code", "station_location_code", "trace_channel",
                                       "trace_start_time", "trace_components_present", "trace_component_channels"};

static void record_out(char *rec, int len, void *arg) { fwrite(rec, 1, (size_t)len, (FILE *)arg); }

static void field(const strcol *c, int64_t i, char *out, size_t n, const char *def) {
  if (!c->buf) snprintf(out, n, "%s", def);
  else sm_catalog_str_at(c->buf, c->width, i, out, n);
}

/* Pack one channel of n samples into f. */
static sm_status pack_channel(sm_ctx *ctx, FILE *f, const char *codes[4], double t, double rate, const float *x,
                              int64_t n, const char *enc, int reclen, const char *where) {
  int ienc = !strcmp(enc, "float32") ? DE_FLOAT32 : !strcmp(enc, "int32") ? DE_INT32 : !strcmp(enc, "steim1") ? DE_STEIM1 : DE_STEIM2;
  void *data = NULL;
  if (ienc == DE_FLOAT32) {
    float *d = NULL;
    SM_TRY(ctx, SM_ALLOC(ctx, d, n));
    memcpy(d, x, (size_t)n * sizeof *d);
    data = d;
  } else {
    int32_t *d = NULL;
    SM_TRY(ctx, SM_ALLOC(ctx, d, n));
    for (int64_t k = 0; k < n; k++) {
      if (x[k] != floorf(x[k]) || fabsf(x[k]) > 2147483520.0f) {
        free(d);
        return SM_ERR(ctx, SM_ERR_DATA, "export: %s sample %lld = %g is not an integer: use encoding float32", where,
                      (long long)k, (double)x[k]);
      }
      d[k] = (int32_t)x[k];
    }
    data = d;
  }
  MSRecord *msr = msr_init(NULL);
  SM_CHECK(ctx, msr, SM_ERR_NOMEM, "out of memory");
  snprintf(msr->network, sizeof msr->network, "%.2s", codes[0]);
  snprintf(msr->station, sizeof msr->station, "%.5s", codes[1]);
  snprintf(msr->location, sizeof msr->location, "%.2s", codes[2]);
  snprintf(msr->channel, sizeof msr->channel, "%.3s", codes[3]);
  msr->starttime = (hptime_t)llround(t * 1e6);
  msr->samprate = rate;
  msr->reclen = reclen;
  msr->encoding = (int8_t)ienc;
  msr->byteorder = 1;
  msr->dataquality = 'D';
  msr->datasamples = data;
  msr->numsamples = n;
  msr->sampletype = ienc == DE_FLOAT32 ? 'f' : 'i';
  int64_t packed = 0;
  int nrec = msr_pack(msr, record_out, f, &packed, 1, 0);
  msr->datasamples = NULL;
  msr_free(&msr);
  free(data);
  SM_CHECK(ctx, nrec > 0 && packed == n, SM_ERR_FORMAT, "export: %s: libmseed packed %lld of %lld samples", where,
           (long long)packed, (long long)n);
  return SM_OK;
}

/* Write trace i (global row g) to tmp; name the final file in final. */
static sm_status write_trace(sm_ctx *ctx, const sm_catalog_info *in, strcol *cols, int64_t i, int64_t g,
                             const float *w, const char *dir, const sm_config *cfg, char *tmp, char *final,
                             size_t n) {
  char v[NCOLS][128];
  static const char *defs[NCOLS] = {"", "", "", "", "1970-01-01T00:00:00Z", NULL, ""};
  for (int c = 0; c < NCOLS; c++) field(&cols[c], i, v[c], sizeof v[c], defs[c] ? defs[c] : in->component_order);
  const char *band = v[C_CHA][0] ? v[C_CHA] : "XX";
  snprintf(final, n, "%s/%s.%s.%s.%s__%08lld.mseed", dir, v[C_NET], v[C_STA], v[C_LOC], band, (long long)g);
  snprintf(tmp, n, "%s/.%s.%s.%s.%s__%08lld.mseed.tmp", dir, v[C_NET], v[C_STA], v[C_LOC], band, (long long)g);
  double t = 0;
  SM_CHECK(ctx, sm_time_parse(v[C_START], &t) == 0, SM_ERR_DATA, "export: trace %lld: trace_start_time \"%s\"",
           (long long)g, v[C_START]);
  FILE *f = fopen(tmp, "wb");
  SM_CHECK(ctx, f, SM_ERR_IO, "export: cannot create %s: %s", tmp, strerror(errno));
  sm_status s = SM_OK;
  char *save = NULL, *chans = v[C_CHANS], *tok[8] = {0};
  for (int c = 0, k = 0; c < in->n_components; c++) { /* "LHZ,LH1,LH2": empty entries allowed */
    tok[c] = chans + k;
    char *comma = strchr(chans + k, ',');
    if (!comma) break;
    *comma = '\0', k = (int)(comma - chans) + 1;
  }
  (void)save;
  for (int c = 0; s == SM_OK && c < in->n_components; c++) {
    char letter = in->component_order[c], cha[16], where[256];
    if (!strchr(v[C_PRESENT], letter)) continue;
    if (tok[c] && tok[c][0]) snprintf(cha, sizeof cha, "%s", tok[c]);
    else snprintf(cha, sizeof cha, "%.2s%c", band, letter);
    const char *codes[4] = {v[C_NET], v[C_STA], v[C_LOC], cha};
    snprintf(where, sizeof where, "trace %lld component %c", (long long)g, letter);
    s = pack_channel(ctx, f, codes, t, in->sampling_rate_hz, w + c * in->n_samples, in->n_samples,
                     sm_config_str(cfg, "encoding"), (int)sm_config_int(cfg, "reclen"), where);
  }
  if (fclose(f) != 0 && s == SM_OK) s = SM_ERR(ctx, SM_ERR_IO, "export: writing %s: %s", tmp, strerror(errno));
  return s;
}

static sm_status read_cols(sm_catalog *cat, strcol *cols, sm_range r) {
  sm_ctx *ctx = sm_catalog_ctx(cat);
  for (int c = 0; c < NCOLS; c++) {
    cols[c].col = col_names[c];
    if (!sm_catalog_has_column(cat, col_names[c])) continue;
    sm_col_type type;
    SM_TRY(ctx, sm_catalog_column_info(cat, col_names[c], &type, &cols[c].width));
    if (type != SM_COL_STR) continue;
    SM_TRY(ctx, SM_ALLOC(ctx, cols[c].buf, r.count * cols[c].width + 1));
    SM_TRY(ctx, sm_catalog_read_str(cat, col_names[c], r.first, r.count, cols[c].buf));
  }
  return SM_OK;
}

static sm_status export_shard(sm_ctx *ctx, sm_catalog *cat, const char *dir, const sm_config *cfg, char (*tmp)[4096],
                              char (*fin)[4096], int64_t *nwritten) {
  const sm_catalog_info *in = sm_catalog_get_info(cat);
  sm_range r = sm_catalog_shard(cat, ctx->rank, ctx->size);
  strcol cols[NCOLS];
  memset(cols, 0, sizeof cols);
  sm_status s = read_cols(cat, cols, r);
  const int64_t B = 64; /* traces per collective read */
  int64_t per = in->n_components * in->n_samples, nb = (r.count + B - 1) / B, nbmax = 0;
  float *w = NULL;
  if (s == SM_OK) s = SM_ALLOC(ctx, w, B * per);
  s = sm_ctx_agree(ctx, s);
  if (s == SM_OK && MPI_Allreduce(&nb, &nbmax, 1, MPI_INT64_T, MPI_MAX, ctx->comm) != MPI_SUCCESS)
    s = SM_ERR(ctx, SM_ERR_MPI, "allreduce failed");
  sm_status local = SM_OK;
  for (int64_t b = 0; s == SM_OK && b < nbmax; b++) {
    int64_t first = r.first + b * B, cnt = b < nb ? (r.count - b * B < B ? r.count - b * B : B) : 0;
    s = sm_catalog_read_traces(cat, cnt ? first : r.first, cnt, w);
    for (int64_t k = 0; s == SM_OK && local == SM_OK && k < cnt; k++) {
      int64_t i = b * B + k;
      local = write_trace(ctx, in, cols, i, r.first + i, w + k * per, dir, cfg, tmp[i], fin[i], sizeof tmp[i]);
      *nwritten = i + 1;
    }
  }
  for (int c = 0; c < NCOLS; c++) free(cols[c].buf);
  free(w);
  return s != SM_OK ? s : local;
}

sm_status sm__export_mseed(sm_ctx *ctx, const sm_config *cfg) {
  char path[4096], dir[4096];
  sm_config_input_path(cfg, "catalog", path, sizeof path);
  sm_config_output_path(cfg, "output", dir, sizeof dir);
  int64_t reclen = sm_config_int(cfg, "reclen");
  SM_CHECK(ctx, (reclen & (reclen - 1)) == 0, SM_ERR_CONFIG, "export.reclen %lld: must be a power of two (256..8192)",
           (long long)reclen);
  sm_status s = SM_OK;
  if (ctx->rank == 0) s = sm_make_dirs(ctx, dir);
  SM_TRY(ctx, sm_ctx_agree(ctx, s));
  sm_catalog *cat = NULL;
  SM_TRY(ctx, sm_catalog_open(ctx, path, &cat));
  sm_range r = sm_catalog_shard(cat, ctx->rank, ctx->size);
  char(*tmp)[4096] = calloc((size_t)r.count + 1, sizeof *tmp), (*fin)[4096] = calloc((size_t)r.count + 1, sizeof *fin);
  s = tmp && fin ? SM_OK : SM_ERR(ctx, SM_ERR_NOMEM, "out of memory");
  s = sm_ctx_agree(ctx, s);
  int64_t nw = 0;
  if (s == SM_OK) s = sm_ctx_agree(ctx, export_shard(ctx, cat, dir, cfg, tmp, fin, &nw));
  for (int64_t i = 0; i < nw; i++) {
    if (s == SM_OK && rename(tmp[i], fin[i]) != 0)
      s = SM_ERR(ctx, SM_ERR_IO, "export: rename %s: %s", tmp[i], strerror(errno));
    else if (s != SM_OK) remove(tmp[i]);
  }
  s = sm_ctx_agree(ctx, s);
  int64_t total = 0;
  if (s == SM_OK && MPI_Allreduce(&nw, &total, 1, MPI_INT64_T, MPI_SUM, ctx->comm) == MPI_SUCCESS)
    sm_info(ctx, "export: wrote %lld miniSEED file(s) to %s", (long long)total, dir);
  free(tmp);
  free(fin);
  sm_catalog_close(&cat);
  return s;
}
