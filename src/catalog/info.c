/* The `info` stage: what a catalog holds. Shape, rate, time span, stations, every column with
 * its missing-value count, and the balance of the label and split columns. Missing counts are
 * computed shard by shard and summed; the categorical summaries are read by rank 0 alone (all
 * ranks still join the collective reads with empty ranges). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sisma/job.h"

static const sm_key info_keys[] = {
    {"catalog", SM_KEY_PATH, NULL, 0, -1, NULL, "catalog file to describe"},
    {"max_values", SM_KEY_INT, "12", 1, 1000, NULL, "distinct values listed per categorical column"},
    {"waveforms", SM_KEY_BOOL, "false", 0, -1, NULL,
     "also scan every waveform (streamed within memory_budget_mb): traces with NaN/Inf samples, all-zero "
     "traces, largest absolute sample"},
    SM_KEYS_END,
};

typedef struct {
  char value[64];
  int64_t n;
} tally;

static int cmp_tally(const void *a, const void *b) {
  const tally *x = a, *y = b;
  return (y->n > x->n) - (y->n < x->n);
}

/* Count distinct values of a string column over all rows (rank 0 only returns them). */
static sm_status count_values(sm_catalog *cat, const char *name, int64_t n, tally **out, int *nout) {
  sm_ctx *ctx = sm_catalog_ctx(cat);
  int width = 0;
  SM_TRY(ctx, sm_catalog_column_info(cat, name, NULL, &width));
  int64_t mine = ctx->rank == 0 ? n : 0;
  char *buf = NULL;
  SM_TRY(ctx, SM_ALLOC(ctx, buf, mine * width));
  sm_status st = sm_catalog_read_str(cat, name, 0, mine, buf);
  tally *t = NULL;
  int nt = 0, cap = 0;
  for (int64_t i = 0; st == SM_OK && i < mine; i++) {
    char v[64];
    sm_catalog_str_at(buf, width, i, v, sizeof v);
    int j = 0;
    while (j < nt && strcmp(t[j].value, v)) j++;
    if (j == nt) {
      if (nt == cap) {
        cap = cap ? 2 * cap : 64;
        tally *nt_ = realloc(t, (size_t)cap * sizeof *t);
        if (!nt_) {
          st = SM_ERR(ctx, SM_ERR_NOMEM, "out of memory");
          break;
        }
        t = nt_;
      }
      snprintf(t[nt].value, sizeof t[nt].value, "%s", v);
      t[nt++].n = 0;
    }
    t[j].n++;
    if (nt > 100000) break; /* a free-text column: stop counting */
  }
  free(buf);
  if (t) qsort(t, (size_t)nt, sizeof *t, cmp_tally);
  *out = t;
  *nout = nt;
  return sm_ctx_agree(ctx, st);
}

static sm_status print_tally(sm_catalog *cat, const char *name, int64_t n, int max_values) {
  tally *t = NULL;
  int nt = 0;
  SM_TRY(sm_catalog_ctx(cat), count_values(cat, name, n, &t, &nt));
  if (sm_catalog_ctx(cat)->rank == 0) {
    printf("%s: %d distinct value(s)\n", name, nt);
    for (int i = 0; i < nt && i < max_values; i++)
      printf("  %-24s %10lld  (%.1f %%)\n", t[i].value[0] ? t[i].value : "(missing)", (long long)t[i].n,
             100.0 * (double)t[i].n / (double)(n ? n : 1));
    if (nt > max_values) printf("  ... %d more\n", nt - max_values);
  }
  free(t);
  return SM_OK;
}

/* Missing values of column `name` in this rank's shard. */
static sm_status count_missing(sm_catalog *cat, const char *name, sm_range r, int64_t *missing) {
  sm_ctx *ctx = sm_catalog_ctx(cat);
  sm_col_type type;
  int width;
  SM_TRY(ctx, sm_catalog_column_info(cat, name, &type, &width));
  *missing = 0;
  if (type == SM_COL_STR) {
    char *b = NULL;
    SM_TRY(ctx, SM_ALLOC(ctx, b, r.count * width));
    sm_status st = sm_catalog_read_str(cat, name, r.first, r.count, b);
    for (int64_t i = 0; st == SM_OK && i < r.count; i++) *missing += b[i * width] == '\0';
    free(b);
    return st;
  }
  double *v = NULL;
  SM_TRY(ctx, SM_ALLOC(ctx, v, r.count));
  sm_status st = sm_catalog_read_as_f64(cat, name, r.first, r.count, v);
  for (int64_t i = 0; st == SM_OK && i < r.count; i++) *missing += isnan(v[i]);
  free(v);
  return st;
}

static sm_status time_span(sm_catalog *cat, int64_t n, double *t0, double *t1) {
  sm_ctx *ctx = sm_catalog_ctx(cat);
  *t0 = INFINITY, *t1 = -INFINITY;
  if (!sm_catalog_has_column(cat, "trace_start_time")) return SM_OK;
  int width = 0;
  SM_TRY(ctx, sm_catalog_column_info(cat, "trace_start_time", NULL, &width));
  sm_range r = sm_catalog_shard(cat, ctx->rank, ctx->size);
  char *b = NULL;
  SM_TRY(ctx, SM_ALLOC(ctx, b, r.count * width));
  sm_status st = sm_catalog_read_str(cat, "trace_start_time", r.first, r.count, b);
  const sm_catalog_info *in = sm_catalog_get_info(cat);
  double len = (double)in->n_samples / in->sampling_rate_hz;
  for (int64_t i = 0; st == SM_OK && i < r.count; i++) {
    char v[64];
    double t;
    sm_catalog_str_at(b, width, i, v, sizeof v);
    if (sm_time_parse(v, &t) == 0) {
      *t0 = fmin(*t0, t);
      *t1 = fmax(*t1, t + len);
    }
  }
  free(b);
  SM_TRY(ctx, st);
  SM_MPI(ctx, MPI_Allreduce(MPI_IN_PLACE, t0, 1, MPI_DOUBLE, MPI_MIN, ctx->comm));
  SM_MPI(ctx, MPI_Allreduce(MPI_IN_PLACE, t1, 1, MPI_DOUBLE, MPI_MAX, ctx->comm));
  (void)n;
  return SM_OK;
}

static sm_status info_print(sm_ctx *ctx, sm_catalog *cat, int max_values) {
  const sm_catalog_info *in = sm_catalog_get_info(cat);
  int64_t n = in->n_traces;
  char created[256], software[64];
  SM_TRY(ctx, sm_catalog_get_attr(cat, "created_by", created, sizeof created));
  SM_TRY(ctx, sm_catalog_get_attr(cat, "software", software, sizeof software));
  double t0, t1;
  SM_TRY(ctx, time_span(cat, n, &t0, &t1));
  if (ctx->rank == 0) {
    printf("catalog      %s\n", sm_catalog_path(cat));
    printf("traces       %lld\n", (long long)n);
    printf("components   %d (%s)\n", in->n_components, in->component_order);
    printf("samples      %lld per component (%.3f s at %g Hz)\n", (long long)in->n_samples,
           (double)in->n_samples / in->sampling_rate_hz, in->sampling_rate_hz);
    printf("chunks       %lld trace(s) per chunk, compression %d\n", (long long)in->chunk_traces, in->compression);
    printf("size         %.1f MiB of waveforms\n", (double)n * in->n_components * (double)in->n_samples * 4 / 1048576.0);
    if (t0 <= t1) {
      char a[32], b[32];
      sm_time_format(t0, a);
      sm_time_format(t1, b);
      printf("time span    %s .. %s\n", a, b);
    }
    printf("created by   %s (%s)\n", created[0] ? created : "?", software[0] ? software : "?");
  }
  if (sm_catalog_has_column(cat, "station_code")) SM_TRY(ctx, print_tally(cat, "station_code", n, max_values));
  sm_range r = sm_catalog_shard(cat, ctx->rank, ctx->size);
  if (ctx->rank == 0) printf("columns      %d\n", sm_catalog_column_count(cat));
  for (int i = 0; i < sm_catalog_column_count(cat); i++) {
    const char *name = sm_catalog_column_name(cat, i);
    int64_t miss = 0, all = 0;
    SM_TRY(ctx, count_missing(cat, name, r, &miss));
    SM_MPI(ctx, MPI_Allreduce(&miss, &all, 1, MPI_INT64_T, MPI_SUM, ctx->comm));
    sm_col_type type;
    SM_TRY(ctx, sm_catalog_column_info(cat, name, &type, NULL));
    if (ctx->rank == 0)
      printf("  %-32s %-8s missing %lld\n", name, type == SM_COL_F64 ? "float64" : type == SM_COL_I64 ? "int64" : "string",
             (long long)all);
  }
  static const char *cats[] = {"label", "split"};
  for (int i = 0; i < 2; i++)
    if (sm_catalog_has_column(cat, cats[i])) {
      sm_col_type type;
      SM_TRY(ctx, sm_catalog_column_info(cat, cats[i], &type, NULL));
      if (type == SM_COL_STR) SM_TRY(ctx, print_tally(cat, cats[i], n, max_values));
    }
  if (ctx->rank == 0) fflush(stdout);
  return SM_OK;
}

/* Scan the waveforms of this rank's shard through the shard reader (resident or streamed,
 * depending on the memory budget) and sum the counts over ranks. */
static sm_status scan_waveforms(sm_ctx *ctx, sm_catalog *cat, int64_t budget_bytes) {
  const sm_catalog_info *in = sm_catalog_get_info(cat);
  int64_t te = (int64_t)in->n_components * in->n_samples;
  sm_reader *rd = NULL;
  SM_TRY(ctx, sm_reader_create(cat, sm_catalog_shard(cat, ctx->rank, ctx->size), budget_bytes, &rd));
  int64_t counts[2] = {0, 0}; /* traces with non-finite samples, all-zero traces */
  double peak = 0;
  int64_t first, count;
  const float *t;
  sm_status st;
  while ((st = sm_reader_next(rd, &first, &count, &t)) == SM_OK && count > 0)
    for (int64_t i = 0; i < count; i++) {
      int bad = 0, nonzero = 0;
      for (int64_t k = 0; k < te; k++) {
        float x = t[i * te + k];
        bad |= !isfinite(x);
        nonzero |= x != 0.0f;
        if (isfinite(x) && fabs(x) > peak) peak = fabs(x);
      }
      counts[0] += bad;
      counts[1] += !nonzero;
    }
  int resident = sm_reader_resident(rd);
  sm_reader_destroy(&rd);
  SM_TRY(ctx, sm_ctx_agree(ctx, st));
  SM_MPI(ctx, MPI_Allreduce(MPI_IN_PLACE, counts, 2, MPI_INT64_T, MPI_SUM, ctx->comm));
  SM_MPI(ctx, MPI_Allreduce(MPI_IN_PLACE, &peak, 1, MPI_DOUBLE, MPI_MAX, ctx->comm));
  if (ctx->rank == 0)
    printf("waveforms    %lld trace(s) with NaN/Inf, %lld all-zero, largest |sample| %.6g (%s)\n",
           (long long)counts[0], (long long)counts[1], peak, resident ? "read once" : "streamed");
  return SM_OK;
}

static sm_status info_run(sm_ctx *ctx, const sm_config *cfg) {
  char path[4096];
  sm_config_input_path(cfg, "catalog", path, sizeof path);
  sm_catalog *cat = NULL;
  SM_TRY(ctx, sm_catalog_open(ctx, path, &cat));
  sm_status st = info_print(ctx, cat, (int)sm_config_int(cfg, "max_values"));
  if (st == SM_OK && sm_config_bool(cfg, "waveforms"))
    st = scan_waveforms(ctx, cat, cfg->memory_budget_mb * 1048576);
  sm_catalog_close(&cat);
  return st;
}

static sm_status info_plan(sm_ctx *ctx, const sm_config *cfg, char *out, size_t n) {
  char path[4096];
  sm_config_input_path(cfg, "catalog", path, sizeof path);
  snprintf(out, n, "reads the metadata of %s; summarises its own shard of every column", path);
  return SM_OK;
}

const sm_stage sm_stage_info = {"info", "describe a catalog: shape, time span, stations, columns, label and split balance",
                                info_keys, info_run, info_plan};
