/* Training data from a catalog: each rank loads its shard once, cuts a window around the P arrival
 * (with a margin for random time shifts), reads the target and split columns, and assembles
 * batches with augmentation and per-trace normalisation. Every random draw (time shift, amplitude
 * scale, noise, channel dropout, polarity flip) is a function of (seed, epoch, global trace
 * index) on the counter-based generator, so a sample looks the same whichever rank holds it.
 * Targets: a class index (from a string column through `classes`, or a numeric column) or the
 * numeric value of a column (regression). A missing or unknown value is an error naming the
 * trace. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "sisma/rng.h"
#include "sisma/shard.h"

static const char *const split_names[] = {"train", "dev", "test"};

int sm__nn_split_code(const char *v) {
  for (int i = 0; i < 3; i++)
    if (!strcmp(v, split_names[i])) return i;
  return -1;
}

/* Class index of `value` in the comma list `classes`, or -1. */
static int class_index(const char *classes, const char *value) {
  int i = 0;
  for (const char *p = classes; *p; i++) {
    size_t l = strcspn(p, ",");
    if (l == strlen(value) && !strncmp(p, value, l)) return i;
    p += l + (p[l] == ',');
  }
  return -1;
}

int sm__nn_class_count(const char *classes) {
  if (!*classes) return 0;
  int n = 1;
  for (const char *p = classes; *p; p++)
    n += *p == ',';
  return n;
}

static sm_status read_targets(sm_ctx *ctx, sm_catalog *cat, const sm__nn_data_conf *c, sm__nn_data *d) {
  sm_col_type type;
  int width = 0;
  SM_TRY(ctx, sm_catalog_column_info(cat, c->target, &type, &width));
  sm_status st = SM_OK;
  if (type == SM_COL_STR) {
    char *buf = NULL;
    SM_TRY(ctx, SM_ALLOC(ctx, buf, d->n * width + 1));
    st = sm_catalog_read_str(cat, c->target, d->first, d->n, buf);
    if (st == SM_OK && (!c->classify || !*c->classes))
      st = SM_ERR(ctx, SM_ERR_CONFIG, "target column `%s` holds text: set task: classify and classes: a,b,...",
                  c->target);
    for (int64_t i = 0; st == SM_OK && i < d->n; i++) {
      char v[256];
      sm_catalog_str_at(buf, width, i, v, sizeof v);
      int k = d->noise[i] ? 0 : class_index(c->classes, v);
      if (k < 0)
        st = SM_ERR(ctx, SM_ERR_DATA, "trace %lld: %s = \"%s\" is not one of the classes (%s)",
                    (long long)(d->first + i), c->target, v, c->classes);
      d->target[i] = (float)k;
    }
    free(buf);
    return st;
  }
  double *v = NULL;
  SM_TRY(ctx, SM_ALLOC(ctx, v, d->n + 1));
  st = sm_catalog_read_as_f64(cat, c->target, d->first, d->n, v);
  int nk = sm__nn_class_count(c->classes);
  for (int64_t i = 0; st == SM_OK && i < d->n; i++) {
    if (d->noise[i]) v[i] = 0;
    if (isnan(v[i]))
      st = SM_ERR(ctx, SM_ERR_DATA, "trace %lld: %s is missing (NaN)", (long long)(d->first + i), c->target);
    else if (c->classify && (v[i] != floor(v[i]) || v[i] < 0 || (nk && v[i] >= nk)))
      st = SM_ERR(ctx, SM_ERR_DATA, "trace %lld: %s = %g is not a class index", (long long)(d->first + i), c->target,
                  v[i]);
    d->target[i] = (float)v[i];
  }
  free(v);
  return st;
}

static sm_status read_split(sm_ctx *ctx, sm_catalog *cat, const sm__nn_data_conf *c, sm__nn_data *d) {
  if (!*c->split_column) { /* everything trains, except noise traces */
    for (int64_t i = 0; i < d->n; i++)
      d->split[i] = d->noise[i] ? -1 : 0;
    return SM_OK;
  }
  int width = 0;
  sm_col_type type;
  SM_TRY(ctx, sm_catalog_column_info(cat, c->split_column, &type, &width));
  SM_CHECK(ctx, type == SM_COL_STR, SM_ERR_CONFIG, "split column `%s` must hold text (train/dev/test)",
           c->split_column);
  char *buf = NULL;
  SM_TRY(ctx, SM_ALLOC(ctx, buf, d->n * width + 1));
  sm_status st = sm_catalog_read_str(cat, c->split_column, d->first, d->n, buf);
  for (int64_t i = 0; st == SM_OK && i < d->n; i++) {
    char v[64];
    sm_catalog_str_at(buf, width, i, v, sizeof v);
    d->split[i] = d->noise[i] ? -1 : (signed char)sm__nn_split_code(v);
  }
  free(buf);
  return st;
}

/* Noise traces: rows whose column COLUMN (text) equals VALUE in c->noise_select "COLUMN=VALUE". */
static sm_status read_noise(sm_ctx *ctx, sm_catalog *cat, const sm__nn_data_conf *c, sm__nn_data *d) {
  memset(d->noise, 0, (size_t)d->n + 1);
  if (!c->noise_select || !*c->noise_select) return SM_OK;
  const char *eq = strchr(c->noise_select, '=');
  SM_CHECK(ctx, eq && eq != c->noise_select, SM_ERR_CONFIG,
           "aug_noise_traces = \"%s\": expected COLUMN=VALUE, e.g. trace_category=noise", c->noise_select);
  char col[SM_COLUMN_NAME_MAX];
  snprintf(col, sizeof col, "%.*s", (int)(eq - c->noise_select), c->noise_select);
  sm_col_type type;
  int width = 0;
  SM_TRY(ctx, sm_catalog_column_info(cat, col, &type, &width));
  SM_CHECK(ctx, type == SM_COL_STR, SM_ERR_CONFIG, "aug_noise_traces: column `%s` must hold text", col);
  char *buf = NULL;
  SM_TRY(ctx, SM_ALLOC(ctx, buf, d->n * width + 1));
  sm_status st = sm_catalog_read_str(cat, col, d->first, d->n, buf);
  for (int64_t i = 0; st == SM_OK && i < d->n; i++) {
    char v[256];
    sm_catalog_str_at(buf, width, i, v, sizeof v);
    d->noise[i] = !strcmp(v, eq + 1);
  }
  free(buf);
  return st;
}

/* Every rank gets the noise windows of the whole catalog in trace order (one allgather), so a
 * draw "noise window k" means the same window on every rank. Collective. */
static sm_status gather_pool(sm_ctx *ctx, sm__nn_data *d) {
  int64_t m = d->C * d->W, mine = 0;
  for (int64_t i = 0; i < d->n; i++)
    mine += d->noise[i];
  SM_MPI(ctx, MPI_Allreduce(&mine, &d->n_pool, 1, MPI_INT64_T, MPI_SUM, ctx->comm));
  if (!d->n_pool) return SM_OK;
  SM_CHECK(ctx, d->n_pool * m <= INT32_MAX, SM_ERR_UNSUPPORTED,
           "aug_noise_traces: %lld noise windows of %lld samples exceed 2^31 floats", (long long)d->n_pool,
           (long long)m);
  float *local = NULL;
  int *counts = NULL, *displs = NULL;
  sm_status st = SM_ALLOC(ctx, local, mine * m + 1);
  if (st == SM_OK) st = SM_ALLOC(ctx, counts, ctx->size);
  if (st == SM_OK) st = SM_ALLOC(ctx, displs, ctx->size);
  if (st == SM_OK) st = SM_ALLOC(ctx, d->pool, d->n_pool * m);
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) {
    int64_t k = 0;
    for (int64_t i = 0; i < d->n; i++)
      if (d->noise[i])
        for (int64_t ch = 0; ch < d->C; ch++, k++)
          memcpy(local + k * d->W, d->x + (i * d->C + ch) * d->L, (size_t)d->W * sizeof *local);
    int cnt = (int)(mine * m);
    if (MPI_Allgather(&cnt, 1, MPI_INT, counts, 1, MPI_INT, ctx->comm) != MPI_SUCCESS)
      st = SM_ERR(ctx, SM_ERR_MPI, "MPI_Allgather of noise-window counts failed");
    for (int r = 0, off = 0; st == SM_OK && r < ctx->size; off += counts[r++])
      displs[r] = off;
    if (st == SM_OK &&
        MPI_Allgatherv(local, cnt, MPI_FLOAT, d->pool, counts, displs, MPI_FLOAT, ctx->comm) != MPI_SUCCESS)
      st = SM_ERR(ctx, SM_ERR_MPI, "MPI_Allgatherv of noise windows failed");
  }
  free(local), free(counts), free(displs);
  if (st == SM_OK) sm_debug(ctx, "nn data: %lld noise windows for augmentation", (long long)d->n_pool);
  return st;
}

/* Window starts (first sample of the stored window, margin included) from the P column. */
static sm_status read_starts(sm_ctx *ctx, sm_catalog *cat, const sm__nn_data_conf *c, sm__nn_data *d, int64_t *start) {
  if (!c->window) {
    for (int64_t i = 0; i < d->n; i++)
      start[i] = -d->S;
    return SM_OK;
  }
  double *p = NULL;
  SM_TRY(ctx, SM_ALLOC(ctx, p, d->n + 1));
  sm_status st = sm_catalog_read_as_f64(cat, "trace_p_arrival_sample", d->first, d->n, p);
  for (int64_t i = 0; st == SM_OK && i < d->n; i++) {
    if (d->noise[i]) { /* a noise trace: its first window */
      start[i] = 0;
      continue;
    }
    if (isnan(p[i]))
      st = SM_ERR(ctx, SM_ERR_DATA, "trace %lld: trace_p_arrival_sample is missing; a window around P needs it",
                  (long long)(d->first + i));
    start[i] = (int64_t)llround(p[i]) - c->p_offset - d->S;
  }
  free(p);
  return st;
}

sm_status sm__nn_data_load(sm_ctx *ctx, sm_catalog *cat, const sm__nn_data_conf *c, int64_t budget, sm__nn_data *d) {
  memset(d, 0, sizeof *d);
  const sm_catalog_info *info = sm_catalog_get_info(cat);
  sm_range r = sm_catalog_shard(cat, ctx->rank, ctx->size);
  d->first = r.first, d->n = r.count, d->n_total = info->n_traces, d->chunk = info->chunk_traces;
  d->C = info->n_components, d->T = info->n_samples;
  d->W = c->window ? c->window : info->n_samples, d->S = c->shift, d->L = d->W + 2 * d->S;
  sm_status st = SM_OK;
  if (c->window > info->n_samples)
    st = SM_ERR(ctx, SM_ERR_CONFIG, "window = %lld samples is longer than the catalog's traces (%lld)",
                (long long)c->window, (long long)info->n_samples);
  int64_t *start = NULL;
  if (st == SM_OK) st = SM_ALLOC(ctx, d->x, d->n * d->C * d->L + 1);
  if (st == SM_OK) st = SM_ALLOC(ctx, d->target, d->n + 1);
  if (st == SM_OK) st = SM_ALLOC(ctx, d->split, d->n + 1);
  if (st == SM_OK) st = SM_ALLOC(ctx, d->noise, d->n + 1);
  if (st == SM_OK) st = SM_ALLOC(ctx, start, d->n + 1);
  d->inputs = c->inputs && c->inputs->n ? c->inputs : NULL;
  if (st == SM_OK && d->inputs) st = SM_ALLOC(ctx, d->feat, d->n * d->inputs->ncol + 1);
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) st = sm_ctx_agree(ctx, read_noise(ctx, cat, c, d));
  if (st == SM_OK && c->target && *c->target) st = sm_ctx_agree(ctx, read_targets(ctx, cat, c, d));
  if (st == SM_OK) st = sm_ctx_agree(ctx, read_split(ctx, cat, c, d));
  if (st == SM_OK) st = sm_ctx_agree(ctx, read_starts(ctx, cat, c, d, start));
  if (st == SM_OK && d->inputs) st = sm__nn_inputs_read(ctx, cat, d);
  sm_reader *rd = NULL;
  if (st == SM_OK) st = sm_reader_create(cat, r, budget, &rd);
  if (st == SM_OK)
    sm_debug(ctx, "nn data: %lld traces [%lld, +%lld) %s", (long long)d->n, (long long)d->first, (long long)d->n,
             sm_reader_resident(rd) ? "read at once" : "streamed within memory_budget_mb");
  for (;;) { /* crop each block of traces into the windows, zero outside the record */
    int64_t f = 0, cnt = 0;
    const float *tr = NULL;
    if (st != SM_OK || (st = sm_reader_next(rd, &f, &cnt, &tr)) != SM_OK || cnt == 0) break;
    for (int64_t i = 0; i < cnt; i++) {
      int64_t row = f + i - d->first, s0 = start[row];
      for (int64_t ch = 0; ch < d->C; ch++) {
        const float *src = tr + (i * d->C + ch) * d->T;
        float *dst = d->x + (row * d->C + ch) * d->L;
        for (int64_t t = 0; t < d->L; t++)
          dst[t] = s0 + t >= 0 && s0 + t < d->T ? src[s0 + t] : 0.f;
        for (int64_t t = 0; t < d->L && st == SM_OK; t++)
          if (!isfinite(dst[t]))
            st = SM_ERR(ctx, SM_ERR_DATA, "trace %lld: non-finite sample (%g) at component %lld, sample %lld",
                        (long long)(f + i), dst[t], (long long)ch, (long long)(s0 + t));
      }
    }
  }
  sm_reader_destroy(&rd);
  free(start);
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) st = gather_pool(ctx, d);
  if (st != SM_OK) sm__nn_data_free(d);
  return st;
}

void sm__nn_data_free(sm__nn_data *d) {
  free(d->x), free(d->target), free(d->split), free(d->noise), free(d->pool), free(d->feat);
  memset(d, 0, sizeof *d);
}

/* The scale that normalisation divides v [n] by: its standard deviation (`std`, *mean gets the
 * mean) or its peak |v| (otherwise, *mean = 0). Also each component's scale for log10_scale. */
static double scale_of(const float *v, int64_t n, int normalize, double *mean) {
  double s = 0;
  *mean = 0;
  if (normalize != SM_NN_NORM_STD) {
    for (int64_t i = 0; i < n; i++)
      s = fmax(s, fabs(v[i]));
    return s;
  }
  for (int64_t i = 0; i < n; i++)
    *mean += v[i];
  *mean /= (double)n;
  for (int64_t i = 0; i < n; i++)
    s += (v[i] - *mean) * (v[i] - *mean);
  return sqrt(s / (double)n);
}

/* One sample into out [C][W]: augmentation (train only), then normalisation; comp [C] (may be
 * NULL) gets the component scales before normalisation. */
static void make_sample(const sm__nn_data *d, const sm__nn_aug *a, int64_t row, uint64_t seed, uint64_t epoch,
                        int train, float *out, double *comp) {
  const float *src = d->x + row * d->C * d->L;
  sm_rng r;
  sm_rng_init(&r, seed ^ (UINT64_C(0xA5A5A5A5) + epoch * UINT64_C(0x9E3779B97F4A7C15)), (uint64_t)(d->first + row));
  int aug = train && a->on;
  int64_t shift = aug && d->S ? (int64_t)sm_rng_below(&r, (uint64_t)(2 * d->S + 1)) : d->S;
  float scale = 1.f, flip = 1.f;
  if (aug && a->amplitude > 0) scale = (float)exp(a->amplitude * (2 * sm_rng_uniform(&r) - 1));
  if (aug && a->polarity > 0 && sm_rng_uniform(&r) < a->polarity) flip = -1.f;
  for (int64_t ch = 0; ch < d->C; ch++) {
    float keep = aug && a->channel_dropout > 0 && sm_rng_uniform(&r) < a->channel_dropout ? 0.f : 1.f;
    const float *s = src + ch * d->L + shift;
    for (int64_t t = 0; t < d->W; t++)
      out[ch * d->W + t] = s[t] * scale * flip * keep;
  }
  int64_t m = d->C * d->W;
  if (aug && a->noise > 0) { /* additive white noise, std = noise x the sample's std */
    double ss = 0;
    for (int64_t i = 0; i < m; i++)
      ss += (double)out[i] * out[i];
    float sd = (float)(a->noise * sqrt(ss / (double)m));
    for (int64_t i = 0; i < m; i++)
      out[i] += sd * (float)sm_rng_normal(&r);
  }
  if (aug && d->n_pool) { /* a noise window of the catalog at a random SNR (power ratio, dB) */
    const float *nz = d->pool + (int64_t)sm_rng_below(&r, (uint64_t)d->n_pool) * m;
    double snr = a->snr_min + (a->snr_max - a->snr_min) * sm_rng_uniform(&r), ps = 0, pn = 0;
    for (int64_t i = 0; i < m; i++)
      ps += (double)out[i] * out[i], pn += (double)nz[i] * nz[i];
    float k = pn > 0 ? (float)sqrt(ps / (pn * pow(10.0, snr / 10))) : 0.f;
    for (int64_t i = 0; i < m; i++)
      out[i] += k * nz[i];
  }
  double mean = 0;
  for (int64_t ch = 0; comp && ch < d->C; ch++)
    comp[ch] = scale_of(out + ch * d->W, d->W, a->normalize, &mean);
  if (a->normalize == SM_NN_NORM_NONE) return;
  double v = scale_of(out, m, a->normalize, &mean);
  float inv = v > 0 ? (float)(1.0 / v) : 0.f;
  for (int64_t i = 0; i < m; i++)
    out[i] = (float)(out[i] - mean) * inv;
}

void sm__nn_data_batch(const sm__nn_data *d, const sm__nn_aug *a, const int64_t *rows, int64_t nb, uint64_t seed,
                       uint64_t epoch, int train, float *x, float *target, float *const *xin) {
  double scale[64];
  int scales = d->inputs && sm__nn_inputs_scales(d->inputs) && d->C <= 64;
  for (int64_t i = 0; i < nb; i++) {
    make_sample(d, a, rows[i], seed, epoch, train, x + i * d->C * d->W, scales ? scale : NULL);
    target[i] = d->target[rows[i]];
    if (d->inputs) sm__nn_inputs_sample(d->inputs, d->feat + rows[i] * d->inputs->ncol, scale, xin, i);
  }
}
