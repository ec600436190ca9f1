/* The `preprocess` stage: every trace of a catalog through a processing chain (docs/signal.md),
 * bad traces handled by the declared policies, P/S picks and per-component SNR, written to a NEW
 * catalog (the input is only read).
 *
 * Work plan: rank r owns the chunk-aligned shard of sm_catalog_shard (the output keeps the input's
 * chunking, so its shards are the same traces). Traces arrive through the memory-budgeted shard
 * reader (reads overlapped with compute by its helper thread) and are processed in rounds of
 * `block` traces by a worker thread while the main thread writes the previous round (writes
 * overlapped with compute); within a round, GROUP traces at a time go through QC, the whole chain
 * and the analysis, so their float64 copies stay in cache; the number of rounds is global arithmetic (the largest shard
 * over the ranks), so every rank makes the same collective writes, empty ones included. Every per-trace result depends
 * on that trace alone, so the output catalog is the same bit for bit at any rank count; the run summary gathers the
 * per-trace values to rank 0 in trace order before computing any statistic. Start at preprocess_run. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "sisma/job.h"

#define EQT_CHAIN                                                                                                      \
  "demean,taper type=cosine max_percentage=0.05,bandpass freqmin=1 freqmax=45 corners=4 zerophase=true,"               \
  "resample rate=100,normalize type=peak mode=component"

static const sm_key pre_keys[] = {
    {"input", SM_KEY_PATH, NULL, 0, -1, NULL, "catalog to process (read only)"},
    {"output", SM_KEY_PATH, NULL, 0, -1, NULL, "new catalog to write (must differ from input)"},
    {"chain", SM_KEY_STR, EQT_CHAIN, 0, -1, NULL,
     "processing steps in order, a list or comma-separated: demean | detrend type=linear|constant|polynomial order=N | "
     "taper type=hann|cosine max_percentage=P max_length=S | bandpass freqmin=HZ freqmax=HZ corners=N zerophase=false|true|obspy | "
     "lowpass freq=HZ ... | highpass freq=HZ ... | resample rate=HZ method=poly|fourier | decimate factor=Q "
     "ftype=iir|fir | "
     "normalize type=peak|std mode=component|all (see docs/signal.md)"},
    {"nan_policy", SM_KEY_ENUM, "reject", 0, -1, "reject|zero|interpolate",
     "traces with NaN samples (gaps): reject, fill with zeros, or interpolate linearly across each gap"},
    {"inf_policy", SM_KEY_ENUM, "reject", 0, -1, "reject|zero", "traces with +-Inf samples: reject or zero them"},
    {"flat_policy", SM_KEY_ENUM, "reject", 0, -1, "reject|keep", "traces with a constant (dead) component"},
    {"rate_policy", SM_KEY_ENUM, "reject", 0, -1, "reject|ignore",
     "traces whose trace_sampling_rate_hz differs from the catalog rate"},
    {"picker", SM_KEY_ENUM, "recursive", 0, -1, "recursive|classic|none", "STA/LTA flavour for the P/S picks"},
    {"sta_s", SM_KEY_FLOAT, "0.5", 1e-3, 1e4, NULL, "short-term window, s"},
    {"lta_s", SM_KEY_FLOAT, "4", 1e-3, 1e5, NULL, "long-term window, s (> sta_s)"},
    {"trigger_on", SM_KEY_FLOAT, "4", 0, 1e9, NULL, "STA/LTA ratio that switches a trigger on"},
    {"trigger_off", SM_KEY_FLOAT, "1.5", 0, 1e9, NULL, "ratio below which it switches off"},
    {"aic_before_s", SM_KEY_FLOAT, "2", 0, 1e4, NULL, "AIC window before the trigger-on sample, s"},
    {"aic_after_s", SM_KEY_FLOAT, "1", 0, 1e4, NULL, "AIC window after it, s"},
    {"s_min_gap_s", SM_KEY_FLOAT, "1", 0, 1e4, NULL, "S is searched from the P pick + this, s"},
    {"snr_pick", SM_KEY_ENUM, "catalog", 0, -1, "catalog|picker",
     "P sample the SNR windows hang on: the catalog's trace_p_arrival_sample (the picker's pick where it is missing), "
     "or "
     "always the picker's"},
    {"snr_noise_s", SM_KEY_FLOAT, "3", 1e-3, 1e4, NULL, "noise window, s, ending snr_gap_s before the P pick"},
    {"snr_gap_s", SM_KEY_FLOAT, "0", 0, 1e4, NULL, "gap between the noise window and the pick, s"},
    {"snr_signal_s", SM_KEY_FLOAT, "3", 1e-3, 1e4, NULL, "signal window from the P pick, s"},
    {"pick_tolerance_s", SM_KEY_FLOAT, "0.5", 0, 1e4, NULL, "a pick within this of the catalog pick is a hit"},
    {"histogram_bins", SM_KEY_INT, "10", 0, 100, NULL, "bins of the SNR histogram in the run output"},
    SM_KEYS_END,
};

static const char *const own_columns[] = {"snr_db_", "norm_scale_", "pick_p_", "pick_s_", "preprocess_status", NULL};

typedef struct {
  sm_catalog *in, *out;
  sm_chain chain;
  sm__qc_policy qc;
  sm_pick_params pp;
  int64_t snr_noise, snr_gap, snr_signal; /* SNR windows, samples at the output rate */
  int picker, snr_from_catalog, C;
  double tol_s;
  int bins;
  sm_range mine;
  int64_t block, rounds;
  /* per trace of the shard */
  unsigned char *status; /* [count] sm__qc_reason */
  double *picks;         /* [4][count] p, p_conf, s, s_conf */
  double *snr;           /* [C][count] dB */
  double *scale;         /* [C][count] normalisation divisors (1: none) */
  double *cat_p, *cat_s; /* [count] catalog picks at the output rate (NaN: none) */
  double *rate;          /* [count] trace_sampling_rate_hz (NaN: no column) */
  sm__qc_counts counts;
} pre_run;

/* Where key `name` got its value ("job.yaml:12:7", "--set", "default"). */
static const char *key_origin(const sm_config *cfg, const char *name) {
  for (int i = 0; i < cfg->nkeys; i++)
    if (!strcmp(cfg->keys[i].name, name)) return cfg->origin[i];
  return "?";
}

static sm_status read_keys(sm_ctx *ctx, const sm_config *cfg, pre_run *r) {
  const char *np = sm_config_str(cfg, "nan_policy");
  r->qc.nan_fill = !strcmp(np, "zero") ? 1 : !strcmp(np, "interpolate") ? 2 : 0;
  r->qc.inf_fill = !strcmp(sm_config_str(cfg, "inf_policy"), "zero");
  r->qc.keep_flat = !strcmp(sm_config_str(cfg, "flat_policy"), "keep");
  r->qc.rate_ignore = !strcmp(sm_config_str(cfg, "rate_policy"), "ignore");
  const char *pk = sm_config_str(cfg, "picker");
  r->picker = strcmp(pk, "none") != 0;
  r->snr_from_catalog = !strcmp(sm_config_str(cfg, "snr_pick"), "catalog");
  r->tol_s = sm_config_float(cfg, "pick_tolerance_s");
  r->bins = (int)sm_config_int(cfg, "histogram_bins");
  double fs = r->chain.fs_out;
  sm_pick_params *pp = &r->pp;
  pp->recursive = !strcmp(pk, "recursive");
  pp->nsta = (int64_t)llround(sm_config_float(cfg, "sta_s") * fs);
  pp->nlta = (int64_t)llround(sm_config_float(cfg, "lta_s") * fs);
  pp->thr_on = sm_config_float(cfg, "trigger_on"), pp->thr_off = sm_config_float(cfg, "trigger_off");
  pp->aic_before = (int64_t)llround(sm_config_float(cfg, "aic_before_s") * fs);
  pp->aic_after = (int64_t)llround(sm_config_float(cfg, "aic_after_s") * fs);
  pp->s_min_gap = (int64_t)llround(sm_config_float(cfg, "s_min_gap_s") * fs);
  r->snr_noise = (int64_t)llround(sm_config_float(cfg, "snr_noise_s") * fs);
  r->snr_gap = (int64_t)llround(sm_config_float(cfg, "snr_gap_s") * fs);
  r->snr_signal = (int64_t)llround(sm_config_float(cfg, "snr_signal_s") * fs);
  SM_CHECK(ctx, pp->nsta >= 1 && pp->nlta > pp->nsta, SM_ERR_CONFIG,
           "%s: preprocess.sta_s / lta_s give %lld and %lld samples at %g Hz; need 1 <= sta < lta (lta_s from %s)",
           key_origin(cfg, "sta_s"), (long long)pp->nsta, (long long)pp->nlta, fs, key_origin(cfg, "lta_s"));
  SM_CHECK(ctx, r->snr_noise >= 1 && r->snr_signal >= 1, SM_ERR_CONFIG,
           "preprocess: snr_noise_s and snr_signal_s must cover at least one sample at %g Hz", fs);
  const char *order = sm_catalog_get_info(r->in)->component_order;
  const char *z = strchr(order, 'Z');
  pp->z = z ? (int)(z - order) : 0;
  return SM_OK;
}

/* Traces per round: whole chunks, as many as fit in 32 MiB (or half the budget if smaller) for the
 * two float32 output blocks (the float64 working copies hold only GROUP traces). */
static void plan_rounds(sm_ctx *ctx, pre_run *r, int64_t budget) {
  const sm_catalog_info *in = sm_catalog_get_info(r->in);
  int64_t chunk = in->chunk_traces, per = (int64_t)r->C * 2 * r->chain.n_out * 4; /* two float32 output blocks */
  int64_t target = (int64_t)32 << 20; /* 16 MiB rounds: enough of them to pipeline, big collective writes */
  target = budget > 0 && budget / 2 < target ? budget / 2 : target;
  int64_t k = target / (chunk * per);
  r->block = chunk * (k > 1 ? k : 1);
  int64_t big = 0;
  for (int q = 0; q < ctx->size; q++) {
    int64_t c = sm_shard_range(in->n_traces, chunk, q, ctx->size).count;
    big = c > big ? c : big;
  }
  r->rounds = (big + r->block - 1) / r->block;
}

static sm_status alloc_shard(sm_ctx *ctx, pre_run *r) {
  int64_t n = r->mine.count ? r->mine.count : 1;
  SM_TRY(ctx, SM_ALLOC(ctx, r->status, n));
  SM_TRY(ctx, SM_ALLOC(ctx, r->picks, 4 * n));
  SM_TRY(ctx, SM_ALLOC(ctx, r->snr, (int64_t)r->C * n));
  SM_TRY(ctx, SM_ALLOC(ctx, r->scale, (int64_t)r->C * n));
  SM_TRY(ctx, SM_ALLOC(ctx, r->cat_p, 3 * n));
  r->cat_s = r->cat_p + n, r->rate = r->cat_s + n;
  return SM_OK;
}

/* Read a numeric column of the shard as float64, or fill NaN when the catalog has none. */
static sm_status read_opt(sm_catalog *cat, const char *name, sm_range m, double scale, double *v) {
  if (!sm_catalog_has_column(cat, name)) {
    for (int64_t i = 0; i < m.count; i++)
      v[i] = NAN;
    return SM_OK;
  }
  SM_TRY(sm_catalog_ctx(cat), sm_catalog_read_as_f64(cat, name, m.first, m.count, v));
  for (int64_t i = 0; i < m.count; i++)
    v[i] *= scale;
  return SM_OK;
}

/* Per-trace analysis of a processed trace x [C][stride]: picks and SNR (index i in the shard). */
static sm_status analyse(sm_ctx *ctx, pre_run *r, int64_t i, const double *x, double *cf, double *tmp) {
  int64_t n = r->chain.n_out, cnt = r->mine.count;
  sm_picks pk = {NAN, NAN, NAN, NAN};
  if (r->picker) SM_TRY(ctx, sm_pick_trace(ctx, &r->pp, x, r->C, r->chain.max_len, n, cf, tmp, &pk));
  r->picks[i] = pk.p, r->picks[cnt + i] = pk.p_conf, r->picks[2 * cnt + i] = pk.s, r->picks[3 * cnt + i] = pk.s_conf;
  double p = r->snr_from_catalog && isfinite(r->cat_p[i]) ? r->cat_p[i] : pk.p;
  for (int c = 0; c < r->C; c++)
    r->snr[c * cnt + i] = isfinite(p) ? sm_snr_db(x + c * r->chain.max_len, n, (int64_t)llround(p), r->snr_noise,
                                                  r->snr_gap, r->snr_signal)
                                      : NAN;
  return SM_OK;
}

typedef struct {
  sm_reader *rd;
  int64_t first, count, pos; /* current reader block and the next trace in it */
  const float *t;
} feed;

/* The float32 trace with global index g (the reader hands out the shard in order). */
static sm_status next_trace(sm_ctx *ctx, feed *f, int64_t g, const float **t, int64_t te) {
  while (f->pos >= f->count) {
    SM_TRY(ctx, sm_reader_next(f->rd, &f->first, &f->count, &f->t));
    f->pos = 0;
    SM_CHECK(ctx, f->count > 0, SM_ERR_INTERNAL, "preprocess: reader ended before trace %lld", (long long)g);
  }
  SM_CHECK(ctx, f->first + f->pos == g, SM_ERR_INTERNAL, "preprocess: reader at trace %lld, wanted %lld",
           (long long)(f->first + f->pos), (long long)g);
  *t = f->t + f->pos++ * te;
  return SM_OK;
}

#define GROUP 8 /* traces through QC, the chain and the analysis together: ~200 KB, cache-resident */

/* Traces [first, first + cnt) of the shard (cnt <= GROUP) through QC, the chain and the analysis;
 * float32 output rows into o [cnt][C][n_out]. Local. */
static sm_status group_local(sm_ctx *ctx, pre_run *r, feed *f, int64_t first, int64_t cnt, double *a, double *b,
                             double *work, float *o, double *cf, double *tmp, double *sc) {
  const sm_catalog_info *in = sm_catalog_get_info(r->in);
  int64_t T = in->n_samples, te = r->C * T, L = r->chain.max_len, no = r->chain.n_out, m = r->mine.count;
  for (int64_t k = 0; k < cnt; k++) {
    const float *t = NULL;
    int64_t i = first + k - r->mine.first;
    SM_TRY(ctx, next_trace(ctx, f, first + k, &t, te));
    double *x = a + k * r->C * L;
    r->status[i] = (unsigned char)sm__qc_trace(&r->qc, t, r->C, T, r->rate[i], in->sampling_rate_hz, x, L, &r->counts);
    if (r->status[i] != SM__QC_OK) memset(x, 0, sizeof(double) * (size_t)(r->C * L));
  }
  double *y = NULL;
  SM_TRY(ctx, sm_chain_apply(ctx, &r->chain, cnt, r->C, a, b, work, &y, sc));
  for (int64_t k = 0; k < cnt; k++) {
    int64_t i = first + k - r->mine.first;
    int ok = r->status[i] == SM__QC_OK;
    const double *x = y + k * r->C * L;
    for (int c = 0; c < r->C; c++)
      r->scale[c * m + i] = ok ? sc[k * r->C + c] : NAN;
    if (ok)
      SM_TRY(ctx, analyse(ctx, r, i, x, cf, tmp));
    else {
      for (int j = 0; j < 4; j++)
        r->picks[j * m + i] = NAN;
      for (int c = 0; c < r->C; c++)
        r->snr[c * m + i] = NAN;
    }
    for (int c = 0; c < r->C; c++)
      for (int64_t s = 0; s < no; s++)
        o[(k * r->C + c) * no + s] = ok ? (float)x[c * L + s] : 0.0f;
  }
  return SM_OK;
}

/* One round: traces [first, first + cnt) in groups of GROUP traces into o [cnt][C][n_out]. Local. */
static sm_status round_local(sm_ctx *ctx, pre_run *r, feed *f, int64_t first, int64_t cnt, double *a, double *b,
                             double *work, float *o, double *cf, double *tmp, double *sc) {
  for (int64_t g = 0; g < cnt; g += GROUP) {
    int64_t n = cnt - g < GROUP ? cnt - g : GROUP;
    SM_TRY(ctx, group_local(ctx, r, f, first + g, n, a, b, work, o + g * r->C * r->chain.n_out, cf, tmp, sc));
  }
  return SM_OK;
}

/* One round of local work, run in a helper thread while the main thread writes the previous round
 * (HDF5 and MPI stay on the main thread, as with the shard reader's thread). The worker records
 * errors in its own copy of the context, copied back after the join; it never calls MPI. The
 * reader it pulls from may record a read error in the catalog's context, which the main thread
 * touches only when its own write fails: then the round fails either way. */
typedef struct {
  sm_ctx ctx; /* private error record */
  pre_run *r;
  feed *f;
  int64_t first, cnt;
  double *a, *b, *work, *cf, *sc;
  float *o;
  sm_status st;
  double secs;
} round_job;

static void *round_worker(void *p) {
  round_job *j = p;
  double t0 = sm_wtime();
  j->st = sm_fault_point(&j->ctx, "preprocess");
  if (j->st == SM_OK && j->cnt > 0)
    j->st = round_local(&j->ctx, j->r, j->f, j->first, j->cnt, j->a, j->b, j->work, j->o, j->cf,
                        j->cf + j->r->chain.max_len, j->sc);
  j->secs = sm_wtime() - t0;
  return NULL;
}

/* Rounds in a two-stage pipeline: compute round k in the worker while round k-1 is written
 * (collectively). Every rank makes `rounds` writes and `rounds` agreements, in the same order. */
static sm_status pipeline(sm_ctx *ctx, pre_run *r, round_job *j, float *o[2]) {
  sm_status st = SM_OK;
  int64_t wfirst = 0, wcnt = 0, have = 0;
  double t_cpu = 0, t_write = 0, t_wait = 0;
  for (int64_t k = 0; st == SM_OK && k < r->rounds; k++) {
    int64_t first = r->mine.first + k * r->block, cnt = r->mine.first + r->mine.count - first;
    j->first = first, j->cnt = cnt < 0 ? 0 : cnt > r->block ? r->block : cnt, j->o = o[k % 2];
    sm_ctx_clear_error(&j->ctx);
    pthread_t th;
    int threaded = pthread_create(&th, NULL, round_worker, j) == 0;
    double t0 = sm_wtime();
    if (have) st = sm_catalog_write_traces(r->out, wcnt ? wfirst : 0, wcnt, o[(k - 1) % 2]);
    double t1 = sm_wtime();
    if (threaded)
      pthread_join(th, NULL);
    else
      round_worker(j);
    t_write += t1 - t0, t_wait += sm_wtime() - t1, t_cpu += j->secs;
    if (st != SM_OK) break; /* the write is collective: every rank stops here */
    if (j->st != SM_OK) {
      ctx->err_code = j->ctx.err_code, ctx->err_ntrace = j->ctx.err_ntrace;
      memcpy(ctx->err_msg, j->ctx.err_msg, sizeof ctx->err_msg);
      memcpy(ctx->err_trace, j->ctx.err_trace, sizeof ctx->err_trace);
    }
    st = sm_ctx_agree(ctx, j->st);
    wfirst = j->first, wcnt = j->cnt, have = 1;
  }
  if (st == SM_OK && have) st = sm_catalog_write_traces(r->out, wcnt ? wfirst : 0, wcnt, o[(r->rounds - 1) % 2]);
  sm_debug(ctx,
           "preprocess: rank %d: %lld traces in %lld round(s): read+process %.2f s, write %.2f s (overlapped), "
           "waiting for the worker %.2f s",
           ctx->rank, (long long)r->mine.count, (long long)r->rounds, t_cpu, t_write, t_wait);
  return st;
}

static sm_status process_shard(sm_ctx *ctx, pre_run *r, int64_t budget) {
  int64_t L = r->chain.max_len, B = r->block, per = (int64_t)r->C * L;
  round_job j;
  memset(&j, 0, sizeof j);
  j.ctx = *ctx, j.r = r;
  float *o[2] = {NULL, NULL};
  feed f = {0};
  j.f = &f;
  sm_status st = SM_ALLOC(ctx, j.a, GROUP * per);
  if (st == SM_OK) st = SM_ALLOC(ctx, j.b, GROUP * per);
  if (st == SM_OK) st = SM_ALLOC(ctx, j.work, r->chain.work > 0 ? r->chain.work : 1);
  if (st == SM_OK) st = SM_ALLOC(ctx, j.cf, 2 * L);
  if (st == SM_OK) st = SM_ALLOC(ctx, o[0], B * r->C * r->chain.n_out);
  if (st == SM_OK) st = SM_ALLOC(ctx, o[1], B * r->C * r->chain.n_out);
  if (st == SM_OK) st = SM_ALLOC(ctx, j.sc, GROUP * r->C);
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) st = sm_reader_create(r->in, r->mine, budget / 2, &f.rd);
  if (st == SM_OK) st = pipeline(ctx, r, &j, o);
  sm_reader_destroy(&f.rd);
  free(j.a), free(j.b), free(j.work), free(j.cf), free(o[0]), free(o[1]), free(j.sc);
  return st;
}

static sm_status write_columns(sm_ctx *ctx, pre_run *r) {
  const sm_catalog_info *in = sm_catalog_get_info(r->in);
  sm_range m = r->mine;
  SM_TRY(ctx, sm__copy_columns(r->in, r->out, m, r->chain.fs_out / r->chain.fs_in, r->chain.fs_out, own_columns));
  static const char *const pick_names[4] = {"pick_p_sample", "pick_p_confidence", "pick_s_sample", "pick_s_confidence"};
  for (int j = 0; j < 4; j++) {
    SM_TRY(ctx, sm_catalog_column_create(r->out, pick_names[j], SM_COL_F64, 0));
    SM_TRY(ctx, sm_catalog_write_f64(r->out, pick_names[j], m.first, m.count, r->picks + j * m.count));
  }
  for (int c = 0; c < r->C; c++) {
    char name[32];
    snprintf(name, sizeof name, "snr_db_%c", in->component_order[c]);
    SM_TRY(ctx, sm_catalog_column_create(r->out, name, SM_COL_F64, 0));
    SM_TRY(ctx, sm_catalog_write_f64(r->out, name, m.first, m.count, r->snr + c * m.count));
    snprintf(name, sizeof name, "norm_scale_%c", in->component_order[c]);
    SM_TRY(ctx, sm_catalog_column_create(r->out, name, SM_COL_F64, 0));
    SM_TRY(ctx, sm_catalog_write_f64(r->out, name, m.first, m.count, r->scale + c * m.count));
  }
  const char **strs = NULL;
  sm_status st = sm_ctx_agree(ctx, SM_ALLOC(ctx, strs, m.count ? m.count : 1));
  if (st != SM_OK) return st;
  for (int64_t i = 0; i < m.count; i++)
    strs[i] = sm__qc_text[r->status[i]];
  st = sm_catalog_put_strings(r->out, "preprocess_status", m.first, m.count, strs);
  free(strs);
  return st;
}

#define SUMMARY_MAX 16384

/* Append the description of v [count] gathered over ranks (rank 0 writes into s). */
static sm_status describe_all(sm_ctx *ctx, const double *v, int64_t count, const char *name, const char *unit, int bins,
                              char *s) {
  double *all = NULL;
  int64_t n = 0;
  SM_TRY(ctx, sm__gather_f64(ctx, v, count, &all, &n));
  if (ctx->rank == 0) {
    size_t l = strlen(s);
    sm__describe(all, n, name, unit, bins, s + l, SUMMARY_MAX - l);
  }
  free(all);
  return SM_OK;
}

/* Pick evaluation against the catalog picks (traces kept by QC only): residuals in s, and
 * counts of picks made, catalog picks and hits within the tolerance. */
static sm_status evaluate(sm_ctx *ctx, pre_run *r, int phase, char *s) {
  int64_t m = r->mine.count, c[3] = {0, 0, 0}; /* picks, catalog, hits */
  const double *pick = r->picks + 2 * phase * m, *cat = phase ? r->cat_s : r->cat_p;
  double fs = r->chain.fs_out, *res = NULL;
  SM_TRY(ctx, sm_ctx_agree(ctx, SM_ALLOC(ctx, res, m ? m : 1)));
  for (int64_t i = 0; i < m; i++) {
    int ok = r->status[i] == SM__QC_OK, hp = ok && isfinite(pick[i]), hc = ok && isfinite(cat[i]);
    res[i] = hp && hc ? (pick[i] - cat[i]) / fs : NAN;
    c[0] += hp, c[1] += hc, c[2] += hp && hc && fabs(res[i]) <= r->tol_s;
  }
  sm_status st = sm_ctx_agree(ctx, SM_OK);
  if (st == SM_OK) {
    int rc = MPI_Allreduce(MPI_IN_PLACE, c, 3, MPI_INT64_T, MPI_SUM, ctx->comm);
    if (rc != MPI_SUCCESS) st = sm__mpi_error(ctx, rc, "MPI_Allreduce", __FILE__, __LINE__);
  }
  char name[96];
  snprintf(name, sizeof name, "%s residual (pick - catalog)", phase ? "S" : "P");
  if (st == SM_OK) st = describe_all(ctx, res, m, name, "s", 0, s);
  if (st == SM_OK && ctx->rank == 0) {
    size_t l = strlen(s);
    snprintf(s + l, SUMMARY_MAX - l,
             "%s picks: %lld made, %lld in the catalog, %lld within %.3g s: precision %.4f, recall %.4f\n",
             phase ? "S" : "P", (long long)c[0], (long long)c[1], (long long)c[2], r->tol_s,
             c[0] ? (double)c[2] / (double)c[0] : NAN, c[1] ? (double)c[2] / (double)c[1] : NAN);
  }
  if (st == SM_OK) { /* MAE over the gathered |residuals| */
    for (int64_t i = 0; i < m; i++)
      res[i] = fabs(res[i]);
    snprintf(name, sizeof name, "%s |residual|", phase ? "S" : "P");
    st = describe_all(ctx, res, m, name, "s (mean = MAE)", 0, s);
  }
  free(res);
  return st;
}

static sm_status summarise(sm_ctx *ctx, pre_run *r, char *s) {
  sm__qc_counts t = r->counts;
  SM_MPI(ctx, MPI_Allreduce(MPI_IN_PLACE, &t, (int)(sizeof t / sizeof(int64_t)), MPI_INT64_T, MPI_SUM, ctx->comm));
  s[0] = '\0';
  if (ctx->rank == 0) {
    size_t l = (size_t)snprintf(s, SUMMARY_MAX, "traces: %lld kept", (long long)t.rejected[SM__QC_OK]);
    for (int q = 1; q < SM__QC_COUNT; q++)
      l += (size_t)snprintf(s + l, SUMMARY_MAX - l, ", %lld rejected (%s)", (long long)t.rejected[q], sm__qc_text[q]);
    snprintf(s + l, SUMMARY_MAX - l,
             "\nbad samples: %lld trace(s) with NaN, %lld with Inf; %lld gap(s) and %lld sample(s) filled by policy\n",
             (long long)t.with_nan, (long long)t.with_inf, (long long)t.gaps, (long long)t.filled_samples);
  }
  const sm_catalog_info *in = sm_catalog_get_info(r->in);
  for (int c = 0; c < r->C; c++) {
    char name[32];
    snprintf(name, sizeof name, "SNR %c", in->component_order[c]);
    SM_TRY(ctx, describe_all(ctx, r->snr + c * r->mine.count, r->mine.count, name, "dB", r->bins, s));
  }
  if (r->picker)
    for (int ph = 0; ph < 2; ph++)
      SM_TRY(ctx, evaluate(ctx, r, ph, s));
  int len = ctx->rank == 0 ? (int)strlen(s) + 1 : 0;
  SM_MPI(ctx, MPI_Bcast(&len, 1, MPI_INT, 0, ctx->comm));
  SM_MPI(ctx, MPI_Bcast(s, len, MPI_CHAR, 0, ctx->comm));
  return SM_OK;
}

static sm_status open_and_plan(sm_ctx *ctx, const sm_config *cfg, pre_run *r, char *out_path, size_t n) {
  char in_path[4096];
  sm_config_input_path(cfg, "input", in_path, sizeof in_path);
  sm_config_output_path(cfg, "output", out_path, n);
  SM_CHECK(ctx, !sm_path_same(in_path, out_path) && strcmp(in_path, out_path), SM_ERR_CONFIG,
           "preprocess: output %s is the input catalog; write a new catalog (the input is never modified)", out_path);
  SM_TRY(ctx, sm_catalog_open(ctx, in_path, &r->in));
  const sm_catalog_info *in = sm_catalog_get_info(r->in);
  r->C = in->n_components;
  char what[256];
  snprintf(what, sizeof what, "%s: preprocess.chain", key_origin(cfg, "chain"));
  SM_TRY(ctx, sm_chain_parse(ctx, what, sm_config_str(cfg, "chain"), in->n_samples, in->sampling_rate_hz, &r->chain));
  return read_keys(ctx, cfg, r);
}

static sm_status run_body(sm_ctx *ctx, const sm_config *cfg, pre_run *r, const char *out_path) {
  const sm_catalog_info *in = sm_catalog_get_info(r->in);
  int64_t budget = cfg->memory_budget_mb * 1048576;
  r->mine = sm_catalog_shard(r->in, ctx->rank, ctx->size);
  plan_rounds(ctx, r, budget);
  SM_TRY(ctx, sm_ctx_agree(ctx, alloc_shard(ctx, r)));
  double scale = r->chain.fs_out / r->chain.fs_in;
  SM_TRY(ctx, read_opt(r->in, "trace_p_arrival_sample", r->mine, scale, r->cat_p));
  SM_TRY(ctx, read_opt(r->in, "trace_s_arrival_sample", r->mine, scale, r->cat_s));
  SM_TRY(ctx, read_opt(r->in, "trace_sampling_rate_hz", r->mine, 1, r->rate));
  sm_catalog_info oi = *in;
  oi.n_samples = r->chain.n_out, oi.sampling_rate_hz = r->chain.fs_out;
  SM_TRY(ctx, sm_catalog_create(ctx, out_path, &oi, &r->out));
  double t0 = sm_wtime();
  SM_TRY(ctx, process_shard(ctx, r, budget));
  double t1 = sm_wtime();
  SM_TRY(ctx, write_columns(ctx, r));
  char *s = NULL;
  SM_TRY(ctx, sm_ctx_agree(ctx, SM_ALLOC(ctx, s, SUMMARY_MAX)));
  sm_status st = summarise(ctx, r, s);
  if (st == SM_OK) st = sm_catalog_set_attr(r->out, "preprocess_chain", sm_config_str(cfg, "chain"));
  if (st == SM_OK) st = sm_catalog_set_attr(r->out, "preprocess_input", sm_catalog_path(r->in));
  if (st == SM_OK) st = sm_catalog_set_attr(r->out, "preprocess_summary", s);
  if (st == SM_OK) st = sm_catalog_set_provenance(r->out, "sisma preprocess", cfg->job_yaml);
  if (st == SM_OK) st = sm_catalog_commit(&r->out);
  if (st == SM_OK && ctx->rank == 0) {
    double mb = (double)in->n_traces * r->C * (double)in->n_samples * 4 / 1e6;
    printf("preprocess: %lld traces, %g Hz x %lld -> %g Hz x %lld samples, %d step(s); %.2f s (%.1f MB/s in)\n%s",
           (long long)in->n_traces, in->sampling_rate_hz, (long long)in->n_samples, r->chain.fs_out,
           (long long)r->chain.n_out, r->chain.n_steps, t1 - t0, mb / fmax(t1 - t0, 1e-9), s);
    fflush(stdout);
  }
  free(s);
  return st;
}

/* `sisma run --resume`: an output at its final path is complete (it is renamed there only on
 * success); if it was made from the same input with the same chain, the stage is not run again. */
static sm_status resume_done(sm_ctx *ctx, const sm_config *cfg, int *done) {
  char in_path[4096], out_path[4096], chain[SM_CONFIG_VALUE_MAX], input[4096];
  *done = 0;
  sm_config_input_path(cfg, "input", in_path, sizeof in_path);
  sm_config_output_path(cfg, "output", out_path, sizeof out_path);
  if (!cfg->resume) return SM_OK;
  int exists = access(out_path, F_OK) == 0;
  SM_MPI(ctx, MPI_Allreduce(MPI_IN_PLACE, &exists, 1, MPI_INT, MPI_MIN, ctx->comm));
  if (!exists) return SM_OK;
  sm_catalog *c = NULL;
  if (sm_catalog_open(ctx, out_path, &c) != SM_OK) { /* not a catalog: run again (it will be replaced) */
    sm_ctx_clear_error(ctx);
    return SM_OK;
  }
  sm_status st = sm_catalog_get_attr(c, "preprocess_chain", chain, sizeof chain);
  if (st == SM_OK) st = sm_catalog_get_attr(c, "preprocess_input", input, sizeof input);
  sm_catalog_close(&c);
  SM_TRY(ctx, sm_ctx_agree(ctx, st));
  *done = !strcmp(chain, sm_config_str(cfg, "chain")) && !strcmp(input, in_path);
  if (ctx->rank == 0) {
    printf(*done ? "preprocess: --resume: %s is complete (same input and chain), not run again\n"
                 : "preprocess: --resume: %s was made from another input or chain; processing again\n",
           out_path);
    fflush(stdout);
  }
  return SM_OK;
}

static sm_status preprocess_run(sm_ctx *ctx, const sm_config *cfg) {
  int done = 0;
  SM_TRY(ctx, resume_done(ctx, cfg, &done));
  if (done) return SM_OK;
  pre_run r;
  memset(&r, 0, sizeof r);
  char out_path[4096];
  sm_status st = open_and_plan(ctx, cfg, &r, out_path, sizeof out_path);
  st = sm_ctx_agree(ctx, st);
  if (st == SM_OK) st = run_body(ctx, cfg, &r, out_path);
  sm_catalog_close(&r.out);
  sm_catalog_close(&r.in);
  free(r.status), free(r.picks), free(r.snr), free(r.scale), free(r.cat_p);
  return st;
}

static sm_status preprocess_plan(sm_ctx *ctx, const sm_config *cfg, char *out, size_t n) {
  char in_path[4096];
  sm_config_input_path(cfg, "input", in_path, sizeof in_path);
  if (access(in_path, F_OK) != 0) { /* written by an earlier stage of the job */
    snprintf(out, n, "reads %s (not written yet); chain: %s", in_path, sm_config_str(cfg, "chain"));
    return SM_OK;
  }
  pre_run r;
  memset(&r, 0, sizeof r);
  char out_path[4096];
  sm_status st = sm_ctx_agree(ctx, open_and_plan(ctx, cfg, &r, out_path, sizeof out_path));
  if (st == SM_OK) {
    sm_range m = sm_catalog_shard(r.in, ctx->rank, ctx->size);
    snprintf(out, n, "traces [%lld, %lld): %d step(s), %g Hz x %lld -> %g Hz x %lld samples, into %s",
             (long long)m.first, (long long)(m.first + m.count), r.chain.n_steps, r.chain.fs_in,
             (long long)r.chain.n_in, r.chain.fs_out, (long long)r.chain.n_out, out_path);
  }
  sm_catalog_close(&r.in);
  return st;
}

const sm_stage sm_stage_preprocess = {"preprocess",
                                      "filter, resample, normalise every trace into a new catalog; QC policies, "
                                      "SNR, STA/LTA+AIC picks and their evaluation",
                                      pre_keys, preprocess_run, preprocess_plan};
